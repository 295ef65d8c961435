"""Releases over time: durations, outcomes, statistics by shape, the slowest waves and clusters.

Pure, no I/O: it takes the release list (and, for the slowest waves and clusters, release trees)
the reader already produces. A release's shape is its waves, clusters and apps (clusters and apps
over all waves), the three numbers the release list carries for every release.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from relmgr.models import (
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    ReleaseSummary,
    duration_seconds,
)
from relmgr.progress.timeline import plan_shape, summary_shape

# "This release vs the median of the last N" compares with this many releases of its shape.
COMPARE_LAST = 10
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryRow(_Frozen):
    """One release in the history: when it started, how long it took, how it ended."""

    id: str
    state: EntityState
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    waves: int
    clusters: int
    apps: int
    shape: str


class ShapeStats(_Frozen):
    """Durations and failure rate of the finished releases of one shape."""

    shape: str
    releases: int
    succeeded: int
    failed: int
    median_seconds: float | None = None
    p90_seconds: float | None = None
    failure_rate: float


class SlowEntity(_Frozen):
    """A wave or cluster of a recent release, and how long it took."""

    release_id: str
    id: str
    kind: EntityKind
    name: str
    state: EntityState
    duration_seconds: float


def history_rows(summaries: Iterable[ReleaseSummary]) -> list[HistoryRow]:
    """One row per release, newest start first (releases not started yet last)."""
    rows = [
        HistoryRow(
            id=s.id,
            state=s.state,
            started_at=s.started_at,
            finished_at=s.finished_at,
            duration_seconds=duration_seconds(s.started_at, s.finished_at),
            waves=s.waves_total,
            clusters=s.clusters_total,
            apps=s.apps.total,
            shape=plan_shape(*summary_shape(s)),
        )
        for s in summaries
    ]
    rows.sort(key=lambda r: r.id)  # equal starts in ID order (the sort below is stable)
    rows.sort(key=lambda r: (r.started_at is not None, r.started_at or _EARLIEST), reverse=True)
    return rows


def filter_rows(
    rows: Iterable[HistoryRow],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    states: Iterable[EntityState] = (),
) -> list[HistoryRow]:
    """The rows that started within [since, until) and are in one of `states` (all if empty)."""
    wanted = set(states)
    return [
        r
        for r in rows
        if (not wanted or r.state in wanted)
        and (since is None or (r.started_at is not None and r.started_at >= since))
        and (until is None or (r.started_at is not None and r.started_at < until))
    ]


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0-1) of non-empty `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def shape_stats(rows: Iterable[HistoryRow]) -> list[ShapeStats]:
    """Per shape, over its finished releases: median and p90 duration of those that succeeded,
    and the share that failed or were cancelled; most releases first."""
    by_shape: dict[str, list[HistoryRow]] = defaultdict(list)
    for row in rows:
        if row.state.is_terminal:
            by_shape[row.shape].append(row)
    stats = []
    for shape, finished in by_shape.items():
        durations = [
            r.duration_seconds
            for r in finished
            if r.state is EntityState.SUCCEEDED and r.duration_seconds is not None
        ]
        succeeded = sum(1 for r in finished if r.state is EntityState.SUCCEEDED)
        stats.append(
            ShapeStats(
                shape=shape,
                releases=len(finished),
                succeeded=succeeded,
                failed=len(finished) - succeeded,
                median_seconds=statistics.median(durations) if durations else None,
                p90_seconds=percentile(durations, 0.9) if durations else None,
                failure_rate=round((len(finished) - succeeded) / len(finished), 3),
            )
        )
    stats.sort(key=lambda s: (-s.releases, s.shape))
    return stats


def slowest(
    trees: Iterable[ReleaseHierarchy], *, kind: EntityKind, limit: int = 10
) -> list[SlowEntity]:
    """The waves (or clusters) that took longest across `trees`, slowest first."""
    found: list[SlowEntity] = []
    for tree in trees:
        for wave in tree.release.waves:
            nodes = (wave,) if kind is EntityKind.WAVE else wave.clusters
            for node in nodes:
                seconds = duration_seconds(node.started_at, node.finished_at)
                if node.started and seconds is not None:
                    found.append(
                        SlowEntity(
                            release_id=tree.release.id,
                            id=node.id,
                            kind=node.kind,
                            name=node.name,
                            state=node.state,
                            duration_seconds=seconds,
                        )
                    )
    found.sort(key=lambda e: (-e.duration_seconds, e.id))
    return found[:limit]


def compare_with_median(
    release: ReleaseSummary,
    history: Iterable[ReleaseSummary],
    *,
    now: datetime,
    last: int = COMPARE_LAST,
) -> str | None:
    """One sentence: this release's duration (or time so far) against the median of the last
    `last` releases of its shape that succeeded; None if there are none."""
    shape = summary_shape(release)
    durations = [
        seconds
        for row in history_rows(history)
        if row.id != release.id
        and row.state is EntityState.SUCCEEDED
        and (row.waves, row.clusters, row.apps) == shape
        and (seconds := row.duration_seconds) is not None
    ][:last]
    if not durations or release.started_at is None:
        return None
    median = statistics.median(durations)
    took = ((release.finished_at or now) - release.started_at).total_seconds()
    n = len(durations)
    against = (
        f"the median of the last {n} release{'s' if n != 1 else ''} of its shape "
        f"({plan_shape(*shape)}) is {_minutes(median)}"
    )
    if release.finished_at is None:
        # In whole minutes: the sentence (drawn with the chart) changes once a minute, not on
        # every refresh, so the chart is redrawn in place rather than rebuilt.
        return f"This release has run for {int(took // 60)} min so far; {against}."
    ratio = took / median if median > 0 else math.inf
    return f"This release took {_minutes(took)}; {against} ({ratio:.0%} of it)."


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
