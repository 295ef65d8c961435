"""The releases page: state tiles, the table, filter, search, sort, paging, opening a release,
CSV, the unavailable banner, and the age of the data."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from relmgr.models import EntityState, ReleaseQuery
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui import runtime
from relmgr.ui.links import NAVIGATING_TO
from relmgr.ui.release_list import ListControls, build_query, matching_releases, releases_csv_of

STATE_TILES = [
    "All releases",
    "Pending",
    "In progress",
    "Retrying",
    "Awaiting approval",
    "Paused",
    "Succeeded",
    "Failed",
    "Cancelled",
]


_TILE = re.compile(r"^(?::\w+\[\S+ )?([A-Za-z ]+?)\]? · \*\*(\d+)\*\*$")


def tiles(at: AppTest) -> dict[str, str]:
    """The tiles (buttons keyed `tile-<state>`) as title -> count."""
    found = {}
    for button in at.button:
        if button.key and button.key.startswith("tile-"):
            match = _TILE.match(button.label)
            assert match is not None, button.label
            found[match.group(1)] = match.group(2)
    return found


def table_ids(at: AppTest) -> list[str]:
    """The release IDs the table shows, in order (the link column's targets)."""
    links = at.dataframe(key="releases-table").value["Release"].tolist()
    assert all(link.startswith("release?release=") for link in links)
    return [link.removeprefix("release?release=") for link in links]


def add_bulk(fake: FakeReader, count: int) -> None:
    """`count` one-app releases started a minute apart (bulk-000 first)."""
    for number in range(count):
        fake.put(
            make_hierarchy(
                f"bulk-{number:03d}",
                waves=1,
                clusters=1,
                apps=1,
                started_at=T0 + timedelta(minutes=number + 1),
            )
        )


def test_tiles_count_releases_per_state(app: AppTest) -> None:
    """One tile per state plus all, with exact counts."""
    at = app.run()
    assert not at.exception
    assert list(tiles(at)) == STATE_TILES
    assert at.button(key="tile-FAILED").label == ":red[✖ Failed] · **1**"
    assert tiles(at) == {
        "All releases": "3",
        "Pending": "0",
        "In progress": "1",
        "Retrying": "0",
        "Awaiting approval": "0",
        "Paused": "0",
        "Succeeded": "1",
        "Failed": "1",
        "Cancelled": "0",
    }


def test_table_rows_show_state_progress_counts_wave_and_times(app: AppTest) -> None:
    """Each row: link, state tag, percent, apps N/M, counts per state, current wave, times."""
    at = app.run()
    frame = at.dataframe(key="releases-table").value
    assert table_ids(at) == ["rel-done-two", "rel-done-one", "rel-demo"]
    demo = frame.iloc[2]
    assert list(demo["State"]) == ["IN_PROGRESS"]
    assert demo["Complete"] == 62.5
    assert demo["Apps"] == "5/8"
    assert (demo["Failed"], demo["Retrying"], demo["In progress"], demo["Pending"]) == (1, 1, 0, 1)
    assert demo["Wave"] == "2/2"
    assert demo["Started"].to_pydatetime() == T0
    assert list(frame.iloc[0]["State"]) == ["FAILED"]
    assert frame.iloc[0]["Complete"] == 0.0
    assert frame.iloc[1]["Apps"] == "8/8"


def test_filter_by_state_from_the_url(app: AppTest) -> None:
    """`?state=FAILED` shows failed releases only; the tiles still count all of them."""
    app.query_params["state"] = "FAILED"
    at = app.run()
    assert not at.exception
    assert table_ids(at) == ["rel-done-two"]
    assert at.selectbox(key="state").value == "FAILED"
    assert tiles(at)["All releases"] == "3"


def test_filter_by_state_with_the_select(app: AppTest) -> None:
    """Choosing a state in the select filters the table and puts it in the URL."""
    at = app.run()
    at.selectbox(key="state").set_value("SUCCEEDED").run()
    assert table_ids(at) == ["rel-done-one"]


def test_a_tile_filters_the_list_by_its_state(app: AppTest) -> None:
    """Clicking the Failed tile filters the list (and the State select) to failed releases;
    All releases clears the filter."""
    at = app.run()
    at.button(key="tile-FAILED").click().run()
    assert not at.exception
    assert at.selectbox(key="state").value == "FAILED"
    assert table_ids(at) == ["rel-done-two"]
    assert at.button(key="tile-FAILED").proto.type == "primary"
    at.button(key="tile-All").click().run()
    assert at.selectbox(key="state").value == "All"
    assert len(table_ids(at)) == 3


def test_search_by_id_fragment(app: AppTest) -> None:
    """A valid search keeps the releases whose ID contains it."""
    at = app.run()
    at.text_input(key="q").set_value("done").run()
    assert not at.exception
    assert table_ids(at) == ["rel-done-two", "rel-done-one"]


@pytest.mark.parametrize(
    ("typed", "searched"),
    [(" Done ", "done"), ("DONE!", "done"), ("rel_done", "rel-done"), ("'Done-Two'", "done-two")],
)
def test_a_search_is_normalised_and_says_what_was_searched(
    app: AppTest, fake: FakeReader, typed: str, searched: str
) -> None:
    """Case and stray punctuation do not turn the list into an error: the search is normalised,
    the reader gets the normalised text, and the page says what was searched."""
    at = app.run()
    at.text_input(key="q").set_value(typed).run()
    assert not at.exception
    assert len(at.error) == 0
    assert all("done" in i for i in table_ids(at))
    assert len(table_ids(at)) == (1 if "two" in searched else 2)
    note = [c.value for c in at.caption if c.value.startswith("Searched for")]
    if typed.strip() == searched:
        assert note == []
    else:
        assert note == [
            f"Searched for “{searched}”: IDs are lowercase letters, "
            "digits, '-' and '.', so the search was lowercased and other characters dropped."
        ]


def test_a_search_that_matches_nothing_says_so_and_keeps_the_filters(app: AppTest) -> None:
    """No match: a message, the controls still there with the search in them."""
    at = app.run()
    at.text_input(key="q").set_value("x' OR '1'='1").run()
    assert not at.exception
    assert table_ids(at) == []
    assert [i.value for i in at.info] == [
        "No releases match these filters; change or clear them above."
    ]
    assert at.text_input(key="q").value == "x' OR '1'='1"


def test_a_search_too_long_names_the_rule(app: AppTest, fake: FakeReader) -> None:
    """Past 64 characters the search is refused with the rule, and nothing is read."""
    at = app.run()
    reads = len(fake.calls)
    at.text_input(key="q").set_value("a" * 65).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "expected 1-64 of lowercase letters, digits, '-', '.'" in at.error[0].value.replace(
        "\\", ""
    )
    assert len(at.dataframe) == 0
    assert len(fake.calls) == reads


def test_server_side_sort_by_id_ascending(app: AppTest) -> None:
    """The sort select and order reach the reader (the table is one page of its answer)."""
    at = app.run()
    at.selectbox(key="sort").set_value("id")
    at.selectbox(key="order").set_value("asc").run()
    assert table_ids(at) == ["rel-demo", "rel-done-one", "rel-done-two"]


def test_every_control_can_come_from_a_shared_url(app: AppTest, fake: FakeReader) -> None:
    """A link carries state, search, sort, order, page size and page."""
    add_bulk(fake, 60)
    app.query_params.update(
        {
            "state": "SUCCEEDED",
            "q": "bulk-0",
            "sort": "Release ID",
            "order": "Ascending",
            "size": "25",
            "page": "2",
        }
    )
    at = app.run()
    assert not at.exception
    assert table_ids(at) == [f"rel-bulk-{n:03d}" for n in range(25, 50)]
    assert (at.selectbox(key="sort").value, at.selectbox(key="order").value) == ("id", "asc")
    assert at.text_input(key="q").value == "bulk-0"


def test_paging_reads_one_page_at_a_time(app: AppTest, fake: FakeReader) -> None:
    """60 releases at 25 a page: three pages, page 2 holds the 26th-50th newest."""
    add_bulk(fake, 60)
    app.query_params["size"] = "25"
    at = app.run()
    assert len(table_ids(at)) == 25
    assert table_ids(at)[0] == "rel-bulk-059"
    pager = at.pagination(key="page")
    assert pager.num_pages == 3
    pager.select(2).run()
    assert not at.exception
    ids = table_ids(at)
    assert ids == [f"rel-bulk-{n:03d}" for n in range(34, 9, -1)]
    assert (
        "Releases 26–50 of 63 · page 2 of 3 · a header click sorts this page; Sort by sorts all 63"
    ) in [c.value for c in at.caption]


def test_a_page_past_the_end_shows_the_last_page(app: AppTest, fake: FakeReader) -> None:
    """A shared link to page 9 of a list that shrank shows its last page instead."""
    add_bulk(fake, 30)
    app.query_params["size"] = "25"
    app.query_params["page"] = "9"
    at = app.run()
    assert not at.exception
    assert len(table_ids(at)) == 8
    assert at.pagination(key="page").value == 2


def test_a_new_filter_starts_again_at_page_one(app: AppTest, fake: FakeReader) -> None:
    """Changing the filter while on page 3 shows page 1 of the new list."""
    add_bulk(fake, 60)
    app.query_params["size"] = "25"
    app.query_params["page"] = "3"
    at = app.run()
    assert len(table_ids(at)) == 13
    at.selectbox(key="state").set_value("SUCCEEDED").run()
    assert table_ids(at)[0] == "rel-bulk-059"
    assert len(table_ids(at)) == 25


def test_selecting_a_row_sends_the_browser_to_its_release(app: AppTest) -> None:
    """Selecting a row navigates the browser to that row's release URL (a full navigation, so
    Back returns to this list's URL with its filters and sort); the list's URL is untouched."""
    at = app.run()
    at.query_params["q"] = "rel"
    at.run()
    at.session_state["releases-table"] = {"selection": {"rows": [2], "columns": []}}
    at.run()
    assert not at.exception
    assert at.session_state[NAVIGATING_TO] == "release?release=rel-demo"
    assert at.query_params["q"] == "rel"
    assert "release" not in at.query_params


def test_fresh_data_says_how_old_it_is(app: AppTest) -> None:
    """Every refresh captions the age of the data and the refresh interval."""
    at = app.run()
    assert at.caption[0].value == "Updated 0 s ago · refreshing every 3 s"


def test_temporal_unavailable_keeps_the_last_data_with_a_banner(
    app: AppTest, fake: FakeReader
) -> None:
    """Temporal going away: a banner with the data's age, the old rows, a retry; then recovery."""
    at = app.run()
    fake.available = False
    at.run()
    assert not at.exception
    # The age is a second or so when the machine is busy: any single digit is this read's.
    [warning] = [w.value for w in at.warning]
    assert re.fullmatch(r"Temporal is unavailable — showing data from \d s ago\.", warning)
    assert table_ids(at) == ["rel-done-two", "rel-done-one", "rel-demo"]
    assert at.button(key="releases-retry").label == "Retry now"
    assert ":orange-badge[stale]" in at.caption[0].value
    at.button(key="releases-retry").click().run()
    assert len(at.warning) == 1
    fake.available = True
    at.run()
    assert len(at.warning) == 0
    assert at.caption[0].value.startswith("Updated 0 s ago")


def test_temporal_unavailable_from_the_start_says_there_is_no_data(
    app: AppTest, fake: FakeReader
) -> None:
    """Without any earlier data: an error banner and a retry, no table, no traceback."""
    fake.available = False
    at = app.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Temporal is unavailable — no data has been read yet."]
    assert len(at.dataframe) == 0
    assert at.button(key="releases-retry").label == "Retry now"


def test_csv_button_exports_every_matching_release(app: AppTest, fake: FakeReader) -> None:
    """The CSV holds every release the filters match, across pages, in the list's order."""
    add_bulk(fake, 30)
    app.query_params["size"] = "25"
    at = app.run()
    assert at.download_button(key="releases-csv").label == "Download CSV"
    controls = ListControls(state="SUCCEEDED", page_size=25)
    text = releases_csv_of(runtime.get_reader(), build_query(controls))()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 31
    assert rows[0]["id"] == "rel-bulk-029"
    assert rows[-1]["id"] == "rel-done-one"
    assert {r["state"] for r in rows} == {"SUCCEEDED"}
    assert rows[-1]["percent_complete"] == "100.0"


def test_export_reads_all_pages_but_stops_at_its_limit(fake: FakeReader) -> None:
    """matching_releases pages through the reader and cuts at the limit."""
    add_bulk(fake, 30)
    reader = runtime.get_reader()
    assert len(matching_releases(reader, ReleaseQuery(page_size=10))) == 33
    assert [r.id for r in matching_releases(reader, ReleaseQuery(), limit=2)] == [
        "rel-bulk-029",
        "rel-bulk-028",
    ]
    assert matching_releases(reader, ReleaseQuery(state=EntityState.CANCELLED)) == []
