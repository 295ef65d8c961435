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
from tests.factories import T0, make_hierarchy


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_release_columns_are_the_documented_ones() -> None:
    """The header row names the 13 columns the dashboard and the API promise, in order."""
    assert _rows(releases_csv([]))[0] == [
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
    ]
    assert tuple(_rows(releases_csv([]))[0]) == RELEASE_COLUMNS


def test_release_row_holds_counts_and_utc_times() -> None:
    """A running release: counts by state (retrying counts as in progress), empty finished_at."""
    summary = ReleaseSummary(
        id="rel-x",
        kind="release",
        release_id="rel-x",
        state=EntityState.IN_PROGRESS,
        started_at=datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1))),
        last_changed_at=datetime(2026, 11, 26, 12, 30, 15, tzinfo=UTC),
        waves_total=3,
        current_wave=2,
        apps=StateCounts(succeeded=3, failed=1, in_progress=1, retrying=2, pending=1, cancelled=0),
    )
    assert _rows(releases_csv([summary]))[1] == [
        "rel-x",
        "IN_PROGRESS",
        "37.5",
        "8",
        "3",
        "1",
        "3",
        "1",
        "2",
        "3",
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:30:15Z",
        "",
    ]


def test_release_rows_keep_the_given_order_and_end_in_crlf() -> None:
    """One row per release in input order; RFC 4180 line endings."""
    trees = [make_hierarchy("b"), make_hierarchy("a", waves=1, clusters=1, apps=1)]
    text = releases_csv(summary_of(t) for t in trees)
    assert [r[0] for r in _rows(text)[1:]] == ["rel-b", "rel-a"]
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 3


def test_hierarchy_has_one_row_per_entity_depth_first() -> None:
    """1 release, 1 wave, 1 cluster, 1 bundle, 2 apps: six rows, parents before their children."""
    tree = make_hierarchy("h", waves=1, clusters=1, apps=2)
    rows = _rows(hierarchy_csv(tree))
    assert tuple(rows[0]) == HIERARCHY_COLUMNS
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("release", "rel-h", ""),
        ("wave", "rel-h.wave-1", "rel-h"),
        ("cluster", "rel-h.wave-1.cluster-c1", "rel-h.wave-1"),
        ("bundle", "rel-h.wave-1.cluster-c1.bundle-core", "rel-h.wave-1.cluster-c1"),
        (
            "app",
            "rel-h.wave-1.cluster-c1.bundle-core.app-a1",
            "rel-h.wave-1.cluster-c1.bundle-core",
        ),
        (
            "app",
            "rel-h.wave-1.cluster-c1.bundle-core.app-a2",
            "rel-h.wave-1.cluster-c1.bundle-core",
        ),
    ]


def test_hierarchy_row_carries_state_times_attempt_and_error() -> None:
    """A failed app's row: state, started/changed/finished in UTC, attempt and last error."""
    app = "rel-h.wave-1.cluster-c1.bundle-core.app-a1"
    tree = make_hierarchy(
        "h", waves=1, clusters=1, apps=1, states={app: EntityState.FAILED}, errors={app: "boom"}
    )
    assert _rows(hierarchy_csv(tree))[5] == [
        "app",
        app,
        "rel-h.wave-1.cluster-c1.bundle-core",
        "FAILED",
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:04Z",
        "2026-11-26T12:00:04Z",
        "2",
        "boom",
    ]


def test_planned_entities_have_empty_times() -> None:
    """An entity that has not started yet has no times: empty cells, never 'None'."""
    tree = make_hierarchy("p", waves=1, clusters=1, apps=1, default=None)
    rows = _rows(hierarchy_csv(tree))
    assert rows[1] == ["release", "rel-p", "", "PENDING", "", "", "", "0", ""]
    assert "None" not in hierarchy_csv(tree)


@pytest.mark.parametrize(
    "message", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", '=HYPERLINK("http://e")']
)
def test_formula_like_errors_are_defused(message: str) -> None:
    """An error text a spreadsheet would run as a formula is prefixed with a quote."""
    app = "rel-f.wave-1.cluster-c1.bundle-core.app-a1"
    tree = make_hierarchy("f", waves=1, clusters=1, apps=1, errors={app: message})
    assert _rows(hierarchy_csv(tree))[5][8] == "'" + message


def test_commas_quotes_and_newlines_survive_a_round_trip() -> None:
    """Free text with CSV metacharacters comes back unchanged from a CSV reader."""
    app = "rel-q.wave-1.cluster-c1.bundle-core.app-a1"
    message = 'timeout, "eu-1"\nsecond line'
    tree = make_hierarchy("q", waves=1, clusters=1, apps=1, errors={app: message})
    assert _rows(hierarchy_csv(tree))[5][8] == message


def test_csv_time_converts_to_utc_and_treats_naive_as_utc() -> None:
    """Aware times are converted to UTC with a Z; naive ones are taken as UTC; None is empty."""
    assert csv_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-2)))) == (
        "2026-01-02T05:04:05Z"
    )
    assert csv_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive on purpose
    assert csv_time(T0.replace(microsecond=250)) == "2026-11-26T12:00:00.000250Z"
    assert csv_time(None) == ""


def test_safe_text_leaves_ordinary_text_alone() -> None:
    """Text that is not formula-like is not changed."""
    assert safe_text("rel-2026-11-payments") == "rel-2026-11-payments"
    assert safe_text("a=b") == "a=b"
