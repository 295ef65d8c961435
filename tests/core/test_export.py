"""CSV exports: exact columns and rows, UTC times, empty cells for none, no formula injection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relmgr.export import (
    HIERARCHY_COLUMNS,
    RELEASE_COLUMNS,
    csv_time,
    hierarchy_csv,
    releases_csv,
    safe_text,
)
from relmgr.models import EntityState, ReleaseSummary, StateCounts
from relmgr.reader.listing import summary_of
from relmgr.testing.factories import T0, make_hierarchy


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


AS_OF = datetime(2026, 11, 26, 12, 45, 30, 900000, tzinfo=UTC)


def test_release_columns_are_the_documented_ones() -> None:
    """The header row names the 17 columns the dashboard and the API promise, in order."""
    assert _rows(releases_csv([], as_of=AS_OF))[0] == [
        "id",
        "state",
        "percent_complete",
        "apps_total",
        "apps_pending",
        "apps_in_progress",
        "apps_retrying",
        "apps_awaiting_approval",
        "apps_paused",
        "apps_succeeded",
        "apps_failed",
        "apps_cancelled",
        "current_wave",
        "waves_total",
        "started_at_utc",
        "last_changed_at_utc",
        "finished_at_utc",
        "duration_seconds",
        "last_error",
    ]
    assert tuple(_rows(releases_csv([], as_of=AS_OF))[0]) == RELEASE_COLUMNS


def test_release_row_holds_every_count_and_spreadsheet_times() -> None:
    """A running release: one count per state, UTC times to the second, duration up to `as_of`."""
    summary = ReleaseSummary(
        id="rel-x",
        kind="release",
        release_id="rel-x",
        state=EntityState.IN_PROGRESS,
        started_at=datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1))),
        last_changed_at=datetime(2026, 11, 26, 12, 30, 15, 999999, tzinfo=UTC),
        waves_total=3,
        current_wave=2,
        last_error="cluster eu-1 failed",
        apps=StateCounts(succeeded=3, failed=1, in_progress=1, retrying=2, pending=1, cancelled=4),
    )
    assert _rows(releases_csv([summary], as_of=AS_OF))[1] == [
        "rel-x",
        "IN_PROGRESS",
        "25.0",
        "12",
        "1",
        "1",
        "2",
        "0",
        "0",
        "3",
        "1",
        "4",
        "2",
        "3",
        "2026-11-26 12:00:00",
        "2026-11-26 12:30:15",
        "",
        "2730",
        "cluster eu-1 failed",
    ]


def test_a_closed_release_lasts_from_start_to_finish_and_a_pending_one_has_no_duration() -> None:
    """duration_seconds: finish minus start once closed; empty before the release has started."""
    done = ReleaseSummary(
        id="rel-done",
        kind="release",
        release_id="rel-done",
        state=EntityState.CANCELLED,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=2, seconds=5, microseconds=700000),
        apps=StateCounts(succeeded=12, failed=3, cancelled=15),
    )
    waiting = done.model_copy(
        update={"id": "rel-wait", "state": EntityState.PENDING, "finished_at": None}
    )
    rows = _rows(releases_csv([done, waiting], as_of=AS_OF))
    by_column = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(r["id"], r["duration_seconds"]) for r in by_column] == [
        ("rel-done", "125"),
        ("rel-wait", ""),
    ]
    assert [by_column[0][c] for c in ("apps_succeeded", "apps_failed", "apps_cancelled")] == [
        "12",
        "3",
        "15",
    ]
    assert by_column[0]["apps_total"] == "30"


def test_release_rows_keep_the_given_order_and_end_in_crlf() -> None:
    """One row per release in input order; RFC 4180 line endings."""
    trees = [make_hierarchy("b"), make_hierarchy("a", waves=1, clusters=1, apps=1)]
    text = releases_csv((summary_of(t) for t in trees), as_of=AS_OF)
    assert [r[0] for r in _rows(text)[1:]] == ["rel-b", "rel-a"]
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 3


def test_hierarchy_columns_are_the_documented_ones() -> None:
    """The hierarchy header: identity, level names, state, UTC times, duration, counts."""
    tree = make_hierarchy("h", waves=1, clusters=1, apps=1)
    assert _rows(hierarchy_csv(tree))[0] == [
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
        "apps_pending",
        "apps_in_progress",
        "apps_retrying",
        "apps_awaiting_approval",
        "apps_paused",
        "apps_succeeded",
        "apps_failed",
        "apps_cancelled",
    ]
    assert tuple(_rows(hierarchy_csv(tree))[0]) == HIERARCHY_COLUMNS


def test_hierarchy_has_one_row_per_entity_depth_first_with_level_names() -> None:
    """1 release, 1 wave, 1 cluster, 1 bundle, 2 apps: six rows, parents first, levels named."""
    tree = make_hierarchy("h", waves=1, clusters=1, apps=2)
    rows = _rows(hierarchy_csv(tree))
    assert [tuple(r[:7]) for r in rows[1:]] == [
        ("release", "rel-h", "", "", "", "", ""),
        ("wave", "rel-h.wave-1", "rel-h", "1", "", "", ""),
        ("cluster", "rel-h.wave-1.cluster-c1", "rel-h.wave-1", "1", "c1", "", ""),
        (
            "bundle",
            "rel-h.wave-1.cluster-c1.bundle-core",
            "rel-h.wave-1.cluster-c1",
            "1",
            "c1",
            "core",
            "",
        ),
        (
            "app",
            "rel-h.wave-1.cluster-c1.bundle-core.app-a1",
            "rel-h.wave-1.cluster-c1.bundle-core",
            "1",
            "c1",
            "core",
            "a1",
        ),
        (
            "app",
            "rel-h.wave-1.cluster-c1.bundle-core.app-a2",
            "rel-h.wave-1.cluster-c1.bundle-core",
            "1",
            "c1",
            "core",
            "a2",
        ),
    ]


def test_hierarchy_row_carries_state_times_duration_attempt_error_and_counts() -> None:
    """A failed app's row: state, UTC times, duration, attempt, last error, its own count."""
    app = "rel-h.wave-1.cluster-c1.bundle-core.app-a1"
    tree = make_hierarchy(
        "h", waves=1, clusters=1, apps=1, states={app: EntityState.FAILED}, errors={app: "boom"}
    )
    assert _rows(hierarchy_csv(tree))[5] == [
        "app",
        app,
        "rel-h.wave-1.cluster-c1.bundle-core",
        "1",
        "c1",
        "core",
        "a1",
        "FAILED",
        "2026-11-26 12:00:00",
        "2026-11-26 12:00:04",
        "2026-11-26 12:00:04",
        "4",
        "2",
        "boom",
        "1",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "1",
        "0",
    ]


def test_a_running_entity_lasts_until_the_tree_was_read() -> None:
    """A running app's duration ends at the tree's read_at; the release row counts every state."""
    app = "rel-r.wave-1.cluster-c1.bundle-core.app-a1"
    tree = make_hierarchy(
        "r",
        waves=1,
        clusters=1,
        apps=2,
        default=EntityState.IN_PROGRESS,
        states={app: EntityState.RETRYING},
        read_at=T0 + timedelta(seconds=90, microseconds=500),
    )
    rows = _rows(hierarchy_csv(tree))
    by_column = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert by_column[4]["duration_seconds"] == "90"
    release = by_column[0]
    assert [release[c] for c in ("apps_total", "apps_in_progress", "apps_retrying")] == [
        "2",
        "1",
        "1",
    ]


def test_planned_entities_have_empty_times() -> None:
    """An entity that has not started yet has no times: empty cells, never 'None'."""
    tree = make_hierarchy("p", waves=1, clusters=1, apps=1, default=None)
    rows = _rows(hierarchy_csv(tree))
    assert rows[1] == [
        "release",
        "rel-p",
        *[""] * 5,
        "PENDING",
        *[""] * 4,
        "0",
        "",
        "1",
        "1",
        *["0"] * 7,
    ]
    assert "None" not in hierarchy_csv(tree)


@pytest.mark.parametrize(
    "message", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", '=HYPERLINK("http://e")']
)
def test_formula_like_errors_are_defused(message: str) -> None:
    """An error text a spreadsheet would run as a formula is prefixed with a quote."""
    app = "rel-f.wave-1.cluster-c1.bundle-core.app-a1"
    tree = make_hierarchy("f", waves=1, clusters=1, apps=1, errors={app: message})
    assert _rows(hierarchy_csv(tree))[5][13] == "'" + message


def test_commas_quotes_and_newlines_survive_a_round_trip() -> None:
    """Free text with CSV metacharacters comes back unchanged from a CSV reader."""
    app = "rel-q.wave-1.cluster-c1.bundle-core.app-a1"
    message = 'timeout, "eu-1"\nsecond line'
    tree = make_hierarchy("q", waves=1, clusters=1, apps=1, errors={app: message})
    assert _rows(hierarchy_csv(tree))[5][13] == message


def test_csv_time_is_utc_to_the_second_in_a_spreadsheet_form() -> None:
    """Aware times go to UTC, naive ones are taken as UTC, fractions are cut, None is empty."""
    assert csv_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-2)))) == (
        "2026-01-02 05:04:05"
    )
    assert csv_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"  # naive on purpose
    assert csv_time(T0.replace(microsecond=999999)) == "2026-11-26 12:00:00"
    assert csv_time(None) == ""


def test_safe_text_leaves_ordinary_text_alone() -> None:
    """Text that is not formula-like is not changed."""
    assert safe_text("rel-2026-11-payments") == "rel-2026-11-payments"
    assert safe_text("a=b") == "a=b"
