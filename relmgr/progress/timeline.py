"""A release's timeline and an honest estimate of its finish, from its tree and earlier releases.

Pure, no I/O: it takes the `ReleaseHierarchy` and release list the reader already produces.

How the finish is estimated. Clusters of a wave run in parallel, waves one after another, and
a cluster's time grows with its apps; so the unit of pace is *seconds per app* of a cluster. Each
cluster of this release that succeeded gives one sample (its duration over its apps); each earlier
release of the same shape (waves, clusters and apps) that succeeded gives one more (its duration
over the release's critical path, the sum of its waves' largest clusters). The remaining critical
path of this release is its running wave's slowest remainder plus every later wave's largest
cluster. Times that path by the median pace for the estimate, by the fastest and slowest pace for
the range; with fewer than three samples the range is widened by a quarter on each side, since two
samples say little about the spread. The in-flight app counts in full: an estimate errs late.

No estimate is made when there is nothing honest to say: a release that finished, failed or was
cancelled; one waiting for approval or paused (its finish depends on a person); one whose wave or
cluster failed (the workflow stops once the wave ends); and one with no finished cluster and no
earlier release of its shape ("no estimate yet").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from relmgr.models import (
    Cluster,
    Entity,
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    ReleaseQuery,
    ReleaseSort,
    ReleaseSummary,
    StateCounts,
    TreeNode,
    Wave,
    duration_seconds,
)

# The earlier releases an estimate may learn from: the newest that succeeded, one list page.
HISTORY_QUERY = ReleaseQuery(
    state=EntityState.SUCCEEDED, page_size=200, sort=ReleaseSort.STARTED_AT, descending=True
)
# Below this many pace samples the range is widened by `_FEW_SAMPLES_MARGIN` on each side.
FEW_SAMPLES = 3
_FEW_SAMPLES_MARGIN = 0.25
# States added by other features (approval gates, pauses), matched by name so that this module
# works with or without them in `EntityState`.
_TERMINAL_NAMES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_WAITING_STATES = {"AWAITING_APPROVAL": "waiting for approval", "PAUSED": "paused"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EstimateStatus(StrEnum):
    """Why the release has (or has no) finish estimate."""

    ESTIMATED = "estimated"
    FINISHED = "finished"
    STOPPED = "stopped"  # failed or cancelled
    FAILING = "failing"  # running, but a wave or cluster failed
    WAITING = "waiting"  # waiting for approval, or paused
    NO_ESTIMATE_YET = "no_estimate_yet"


class TimelineBar(_Frozen):
    """One entity on the timeline: its real times, and estimated ones while it is unfinished."""

    id: str
    kind: EntityKind
    name: str
    # A plain string only for a state this version of `EntityState` does not know yet.
    state: EntityState | str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Only where both a start and a finish exist.
    duration_seconds: float | None = None
    estimated_start_at: datetime | None = None
    estimated_finish_at: datetime | None = None
    apps: StateCounts = StateCounts()
    percent_complete: float = 0.0


class ClusterBar(TimelineBar):
    """A cluster, with its bundle's times and its apps by state."""

    wave: int
    bundle: TimelineBar


class WaveBar(TimelineBar):
    """A wave (1-based `number`) and its clusters."""

    number: int
    clusters: tuple[ClusterBar, ...] = ()


class ReleaseTimeline(_Frozen):
    """A release's timeline: the release, its waves and clusters, and its finish estimate."""

    release: TimelineBar
    waves: tuple[WaveBar, ...]
    waves_total: int
    # The first wave that has not finished (1-based), None once all have.
    current_wave: int | None = None
    estimate: EstimateStatus
    # The middle estimate and its range; all None unless `estimate` is ESTIMATED.
    estimated_finish_at: datetime | None = None
    estimated_finish_low: datetime | None = None
    estimated_finish_high: datetime | None = None
    # How the estimate was made, or why there is none, in one sentence.
    estimate_basis: str
    pace_samples: int = 0
    similar_releases: int = 0
    now: datetime
    read_at: datetime
    revision: str = ""


# ---------------------------------------------------------------------------------------------
# Small helpers.


def state_name(state: object) -> str:
    """A state's name whether it is an `EntityState` member or a plain string."""
    return str(getattr(state, "value", state))


def is_terminal(state: object) -> bool:
    """True for a finished state, whether an `EntityState` member or a plain string."""
    return state_name(state) in _TERMINAL_NAMES


def plan_shape(waves: int, clusters: int, apps: int) -> str:
    """The shape by which releases are compared: its waves, and its clusters and apps over all
    waves."""
    return f"{waves} waves x {clusters} clusters x {apps} apps"


def summary_shape(summary: ReleaseSummary) -> tuple[int, int, int]:
    """A release's (waves, clusters, apps), as the release list gives them."""
    return summary.waves_total, summary.clusters_total, summary.apps.total


def tree_shape(tree: ReleaseHierarchy) -> tuple[int, int, int]:
    """A release's (waves, clusters, apps), from its tree."""
    release = tree.release
    return len(release.waves), release.clusters_total, release.rollup.apps.total


def _apps_of(cluster: Cluster) -> int:
    return max(1, cluster.rollup.apps.total or len(cluster.bundle.apps))


def _remaining_apps(cluster: Cluster) -> int:
    if is_terminal(cluster.state):
        return 0
    apps = cluster.rollup.apps
    return _apps_of(cluster) if apps.total == 0 else apps.total - apps.finished


def critical_path_apps(waves: Iterable[Wave]) -> int:
    """Apps along the critical path: the sum of every wave's largest cluster."""
    return sum(max((_apps_of(c) for c in w.clusters), default=0) for w in waves)


def _waiting(node: Entity) -> str | None:
    return _WAITING_STATES.get(state_name(node.state))


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "an unknown time"


# ---------------------------------------------------------------------------------------------
# Pace samples.


def cluster_paces(tree: ReleaseHierarchy) -> list[float]:
    """Seconds per app of every cluster of this release that succeeded."""
    paces: list[float] = []
    for wave in tree.release.waves:
        for cluster in wave.clusters:
            seconds = duration_seconds(cluster.started_at, cluster.finished_at)
            if cluster.state is EntityState.SUCCEEDED and seconds is not None:
                paces.append(max(0.0, seconds) / _apps_of(cluster))
    return paces


def similar_releases(
    tree: ReleaseHierarchy, history: Iterable[ReleaseSummary]
) -> list[ReleaseSummary]:
    """Earlier releases that succeeded with the same number of waves, clusters and apps as
    this one."""
    shape = tree_shape(tree)
    return [
        r
        for r in history
        if r.id != tree.release.id
        and r.state is EntityState.SUCCEEDED
        and summary_shape(r) == shape
        and duration_seconds(r.started_at, r.finished_at) is not None
    ]


def history_paces(tree: ReleaseHierarchy, similar: Iterable[ReleaseSummary]) -> list[float]:
    """Seconds per critical-path app of each similar release."""
    path = critical_path_apps(tree.release.waves)
    if path == 0:
        return []
    paces = []
    for summary in similar:
        seconds = duration_seconds(summary.started_at, summary.finished_at)
        if seconds is not None:
            paces.append(max(0.0, seconds) / path)
    return paces


def pace_range(paces: Sequence[float]) -> tuple[float, float, float]:
    """(fastest, median, slowest) seconds per app; widened when there are few samples."""
    low, middle, high = min(paces), statistics.median(paces), max(paces)
    if len(paces) < FEW_SAMPLES:
        low, high = low * (1 - _FEW_SAMPLES_MARGIN), high * (1 + _FEW_SAMPLES_MARGIN)
    return low, middle, high


# ---------------------------------------------------------------------------------------------
# The timeline.


def _bar_fields(node: TreeNode) -> dict[str, object]:
    rollup = getattr(node, "rollup", None)
    apps = rollup.apps if rollup is not None else StateCounts()
    return {
        "id": node.id,
        "kind": node.kind,
        "name": node.name,
        "state": node.state,
        "started_at": node.started_at if node.started else None,
        "finished_at": node.finished_at if node.started else None,
        "duration_seconds": (
            duration_seconds(node.started_at, node.finished_at) if node.started else None
        ),
        "apps": apps,
        "percent_complete": rollup.percent_complete if rollup is not None else 0.0,
    }


def _cluster_bar(
    cluster: Cluster, wave: int, start: datetime | None, pace: float | None, now: datetime
) -> ClusterBar:
    estimated_start = estimated_finish = None
    if pace is not None and not is_terminal(cluster.state):
        if cluster.started and cluster.started_at is not None:
            estimated_finish = now + timedelta(seconds=_remaining_apps(cluster) * pace)
        elif start is not None:
            estimated_start = start
            estimated_finish = start + timedelta(seconds=_apps_of(cluster) * pace)
    return ClusterBar(
        **_bar_fields(cluster),
        estimated_start_at=estimated_start,
        estimated_finish_at=estimated_finish,
        wave=wave,
        bundle=TimelineBar(**_bar_fields(cluster.bundle)),
    )


def _wave_bars(
    waves: Sequence[Wave], pace: float | None, now: datetime
) -> tuple[tuple[WaveBar, ...], datetime | None]:
    """The wave bars, and when (by `pace`) the last of them finishes."""
    bars: list[WaveBar] = []
    cursor: datetime | None = now  # when the next unstarted wave can start
    last_finish: datetime | None = None
    for number, wave in enumerate(waves, start=1):
        running = wave.started and wave.started_at is not None and not is_terminal(wave.state)
        if is_terminal(wave.state):
            start = None
        elif running:
            start = now
        else:
            start = cursor
        clusters = tuple(
            _cluster_bar(c, number, start if pace is not None else None, pace, now)
            for c in wave.clusters
        )
        estimated_start = estimated_finish = None
        if pace is not None and not is_terminal(wave.state):
            finishes = [c.estimated_finish_at for c in clusters if c.estimated_finish_at]
            estimated_finish = max(finishes, default=start)
            estimated_start = None if running else start
            cursor = estimated_finish
            last_finish = estimated_finish
        bars.append(
            WaveBar(
                **_bar_fields(wave),
                estimated_start_at=estimated_start,
                estimated_finish_at=estimated_finish,
                number=number,
                clusters=clusters,
            )
        )
    return tuple(bars), last_finish


def remaining_path_apps(waves: Sequence[Wave]) -> int:
    """Apps left along the critical path: the running wave's slowest remainder, then every later
    wave's largest cluster."""
    total = 0
    for wave in waves:
        if is_terminal(wave.state):
            continue
        if wave.started:
            total += max((_remaining_apps(c) for c in wave.clusters), default=0)
        else:
            total += max((_apps_of(c) for c in wave.clusters), default=0)
    return total


def _no_estimate(tree: ReleaseHierarchy, now: datetime) -> tuple[EstimateStatus, str] | None:
    """Why this release gets no estimate, or None if it may get one."""
    release = tree.release
    name = state_name(release.state)
    if release.state is EntityState.SUCCEEDED:
        return EstimateStatus.FINISHED, f"finished at {_stamp(release.finished_at)}"
    if name in ("FAILED", "CANCELLED"):
        verb = "failed" if name == "FAILED" else "was cancelled"
        return EstimateStatus.STOPPED, f"the release {verb} at {_stamp(release.finished_at)}"
    for node in (release, *release.waves, *(c for w in release.waves for c in w.clusters)):
        waiting = _waiting(node)
        if waiting is not None:
            what = "the release" if node is release else f"{node.kind.value} {node.name}"
            since = _stamp(node.last_changed_at)
            return EstimateStatus.WAITING, f"{waiting} since {since} ({what}); no finish estimate"
    for wave in release.waves:
        for node in (wave, *wave.clusters):
            if state_name(node.state) == "FAILED":
                return (
                    EstimateStatus.FAILING,
                    f"{node.kind.value} {node.name} failed: the release stops once wave "
                    f"{wave.name} ends; no finish estimate",
                )
    if not release.started:
        return EstimateStatus.NO_ESTIMATE_YET, "no estimate yet: the release has not started"
    return None


def build_timeline(
    tree: ReleaseHierarchy,
    history: Iterable[ReleaseSummary] = (),
    *,
    now: datetime | None = None,
) -> ReleaseTimeline:
    """The timeline of `tree` at `now` (default: when the tree was read), with its estimate."""
    now = now if now is not None else tree.read_at
    release = tree.release
    similar = similar_releases(tree, history)
    own = cluster_paces(tree)
    earlier = history_paces(tree, similar)
    refusal = _no_estimate(tree, now)
    paces = own + earlier
    if refusal is None and not paces:
        refusal = (
            EstimateStatus.NO_ESTIMATE_YET,
            "no estimate yet: no cluster has finished and no earlier release has this shape",
        )

    low_at = middle_at = high_at = None
    pace: float | None = None
    if refusal is None:
        low, pace, high = pace_range(paces)
        left = remaining_path_apps(release.waves)
        low_at = now + timedelta(seconds=left * low)
        middle_at = now + timedelta(seconds=left * pace)
        high_at = now + timedelta(seconds=left * high)
        status, basis = EstimateStatus.ESTIMATED, _basis(len(own), len(earlier), left, tree)
    else:
        status, basis = refusal
    waves, _ = _wave_bars(release.waves, pace, now)
    current = next((b.number for b in waves if not is_terminal(b.state)), None)
    return ReleaseTimeline(
        release=TimelineBar(
            **_bar_fields(release),
            estimated_finish_at=middle_at,
        ),
        waves=waves,
        waves_total=len(waves),
        current_wave=current,
        estimate=status,
        estimated_finish_at=middle_at,
        estimated_finish_low=low_at,
        estimated_finish_high=high_at,
        estimate_basis=basis,
        pace_samples=len(own),
        similar_releases=len(earlier),
        now=now,
        read_at=tree.read_at,
        revision=tree.revision,
    )


def _basis(own: int, earlier: int, left: int, tree: ReleaseHierarchy) -> str:
    parts = []
    if own:
        parts.append(f"{own} finished cluster{'s' if own != 1 else ''} of this release")
    if earlier:
        shape = plan_shape(*tree_shape(tree))
        parts.append(f"{earlier} earlier release{'s' if earlier != 1 else ''} of {shape}")
    samples = own + earlier
    spread = "fastest-slowest pace" if samples >= FEW_SAMPLES else "pace widened 25 % (few samples)"
    return (
        f"{left} apps left on the critical path at the median pace of {' and '.join(parts)}; "
        f"range: {spread}"
    )
