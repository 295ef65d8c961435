"""CSV exports of the release list and of one release tree, shared by the dashboard and the API.

Both are plain RFC 4180 CSV (comma, CRLF, quotes only where needed) with a header row. Times are
UTC in the form every spreadsheet parses as a date, `2026-11-26 12:00:00` (whole seconds), and
their columns say so (`started_at_utc`); empty when unknown. `duration_seconds` is whole seconds
from start to finish, or to the time the data was read for what is still running; empty for what
has not started. Every state has its own count column (`apps_<state>`). Any text cell that a
spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
return) is prefixed with a single quote, so an error message from a deploy can never run in
someone's Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from relmgr import ids
from relmgr.models import Entity, EntityKind, EntityState, ReleaseHierarchy, ReleaseSummary

# One column per state, in `EntityState` order, so a new state gets its column.
APP_COUNT_COLUMNS: tuple[str, ...] = tuple(f"apps_{s.value.lower()}" for s in EntityState)

RELEASE_COLUMNS: tuple[str, ...] = (
    "id",
    "state",
    "percent_complete",
    "apps_total",
    *APP_COUNT_COLUMNS,
    "current_wave",
    "waves_total",
    "started_at_utc",
    "last_changed_at_utc",
    "finished_at_utc",
    "duration_seconds",
    "last_error",
)

HIERARCHY_COLUMNS: tuple[str, ...] = (
    "kind",
    "id",
    "parent_id",
    "wave",
    "cluster",
    "bundle",
    "app",
    "state",
    "started_at_utc",
    "last_changed_at_utc",
    "finished_at_utc",
    "duration_seconds",
    "attempt",
    "last_error",
    "apps_total",
    *APP_COUNT_COLUMNS,
)

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

Cell = str | int | float | datetime | None


def csv_time(value: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC (whole seconds), or empty; naive times are taken as UTC."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime(_TIME_FORMAT)


def duration_seconds(entity: Entity, *, as_of: datetime) -> int | None:
    """Whole seconds from start to finish (to `as_of` if still running); None if not started."""
    if not entity.started or entity.started_at is None or entity.state is EntityState.PENDING:
        return None
    end = (entity.finished_at or entity.last_changed_at) if entity.state.is_terminal else as_of
    if end is None:
        return None
    return max(0, int((end - entity.started_at).total_seconds()))


def safe_text(value: str) -> str:
    """The text itself, or prefixed with `'` if a spreadsheet would evaluate it as a formula."""
    if value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return csv_time(value)
    if isinstance(value, bool):  # bool is an int; never expected here, but never print True
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return safe_text(value)


def _write(columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def releases_csv(items: Iterable[ReleaseSummary], *, as_of: datetime) -> str:
    """The release list as CSV, one row per release in the order given.

    Every app count is its own column (`apps_retrying`, `apps_cancelled` too), and they add up to
    `apps_total`; `as_of` is when the data was read (the duration of running releases ends there).
    """
    return _write(
        RELEASE_COLUMNS,
        (
            (
                r.id,
                r.state.value,
                r.percent_complete,
                r.apps.total,
                *r.apps.by_state().values(),
                r.current_wave,
                r.waves_total,
                r.started_at,
                r.last_changed_at,
                r.finished_at,
                duration_seconds(r, as_of=as_of),
                r.last_error,
            )
            for r in items
        ),
    )


def _names(entity: Entity) -> tuple[str | None, str | None, str | None, str | None]:
    """The wave number and the cluster, bundle and app names of an entity and its ancestors."""
    found: dict[EntityKind, str] = {}
    ref = ids.parse_entity_id(entity.id)
    for level in (*ref.ancestors(), ref):
        found[level.kind] = level.name
    return (
        found.get(EntityKind.WAVE),
        found.get(EntityKind.CLUSTER),
        found.get(EntityKind.BUNDLE),
        found.get(EntityKind.APP),
    )


def hierarchy_csv(h: ReleaseHierarchy) -> str:
    """A whole release tree as CSV, one row per entity, depth first (parents before children).

    Each row names its wave, cluster, bundle and app (as far down as it goes) and counts the
    apps at or below it by state; durations of running entities end at the tree's `read_at`.
    """
    return _write(
        HIERARCHY_COLUMNS,
        (
            (
                node.kind.value,
                node.id,
                node.parent_id,
                *_names(node),
                node.state.value,
                node.started_at,
                node.last_changed_at,
                node.finished_at,
                duration_seconds(node, as_of=h.read_at),
                node.attempt,
                node.last_error,
                node.rollup.apps.total,
                *node.rollup.apps.by_state().values(),
            )
            for node in h.entities()
        ),
    )
