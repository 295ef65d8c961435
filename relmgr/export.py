"""CSV exports of the release list and of one release tree, shared by the dashboard and the API.

Both are plain RFC 4180 CSV (comma, CRLF, quotes only where needed) with a header row. Times are
ISO-8601 in UTC (`2026-11-26T12:00:00Z`), empty when unknown. Any text cell that a spreadsheet
would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) is
prefixed with a single quote, so an error message from a deploy can never run in someone's Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from relmgr.models import ReleaseHierarchy, ReleaseSummary

RELEASE_COLUMNS: tuple[str, ...] = (
    "id",
    "state",
    "percent_complete",
    "apps_total",
    "apps_succeeded",
    "apps_failed",
    "apps_in_progress",
    "apps_pending",
    "current_wave",
    "waves_total",
    "started_at",
    "last_changed_at",
    "finished_at",
)

HIERARCHY_COLUMNS: tuple[str, ...] = (
    "kind",
    "id",
    "parent_id",
    "state",
    "started_at",
    "last_changed_at",
    "finished_at",
    "attempt",
    "last_error",
)

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | datetime | None


def csv_time(value: datetime | None) -> str:
    """ISO-8601 in UTC with a `Z`, or empty; naive times are taken to be UTC already."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


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


def releases_csv(items: Iterable[ReleaseSummary]) -> str:
    """The release list as CSV, one row per release in the order given.

    `apps_in_progress` counts IN_PROGRESS and RETRYING apps (a retrying app is still being
    deployed); cancelled apps appear only in `apps_total`.
    """
    return _write(
        RELEASE_COLUMNS,
        (
            (
                r.id,
                r.state.value,
                r.percent_complete,
                r.apps.total,
                r.apps.succeeded,
                r.apps.failed,
                r.apps.in_progress + r.apps.retrying,
                r.apps.pending,
                r.current_wave,
                r.waves_total,
                r.started_at,
                r.last_changed_at,
                r.finished_at,
            )
            for r in items
        ),
    )


def hierarchy_csv(h: ReleaseHierarchy) -> str:
    """A whole release tree as CSV, one row per entity, depth first (parents before children)."""
    return _write(
        HIERARCHY_COLUMNS,
        (
            (
                node.kind.value,
                node.id,
                node.parent_id,
                node.state.value,
                node.started_at,
                node.last_changed_at,
                node.finished_at,
                node.attempt,
                node.last_error,
            )
            for node in h.entities()
        ),
    )
