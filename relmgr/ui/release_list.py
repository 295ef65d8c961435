"""The release list: the query its controls describe, state tiles, the table, paging and CSV.

The controls are bound to the URL (`?state=FAILED&q=2026&sort=Release+ID&order=Ascending&size=25
&page=2`; a select is bound by the text it shows), so every view of the list is a link that can
be shared. Paging happens in the reader: one page
of `ReleaseQuery` is read per refresh, never the whole list; the CSV alone reads every page
that matches, and only when its button is clicked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from relmgr import ids
from relmgr.errors import InvalidIdError
from relmgr.models import (
    EntityState,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSort,
    ReleaseSummary,
    StateCounts,
)
from relmgr.reader.matching import MAX_EXPORT_ROWS
from relmgr.ui.bridge import SyncReader
from relmgr.ui.freshness import load, render_status
from relmgr.ui.links import follow_selection
from relmgr.ui.present import STATE_STYLES, STATE_TITLES, md_escape, release_href
from relmgr.ui.runtime import get_reader
from relmgr.ui.tables import RELEASE_COLUMNS, release_columns, release_rows, table_height

STATE_KEY = "state"
SEARCH_KEY = "q"
SORT_KEY = "sort"
ORDER_KEY = "order"
SIZE_KEY = "size"
PAGE_KEY = "page"
TABLE_KEY = "releases-table"
CSV_KEY = "releases-csv"
ANY_STATE = "All"
PAGE_SIZES: tuple[int, ...] = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# The CSV reads every matching page; past this many rows the export is cut (and says so).
EXPORT_LIMIT = MAX_EXPORT_ROWS
SORT_TITLES: dict[str, str] = {
    ReleaseSort.STARTED_AT.value: "Started",
    ReleaseSort.LAST_CHANGED_AT.value: "Last changed",
    ReleaseSort.ID.value: "Release ID",
    ReleaseSort.STATE.value: "State",
    ReleaseSort.PERCENT_COMPLETE.value: "Percent complete",
}
ORDER_TITLES: dict[str, str] = {"desc": "Descending", "asc": "Ascending"}
_SEPARATORS = re.compile(r"[\s_]+")
_OUTSIDE_ALPHABET = re.compile(r"[^a-z0-9.-]")


@dataclass(frozen=True, slots=True)
class ListControls:
    """What the controls ask for, as the widgets return it (not validated yet)."""

    state: str = ANY_STATE
    search: str = ""
    sort: str = ReleaseSort.STARTED_AT.value
    order: str = "desc"
    page_size: int = DEFAULT_PAGE_SIZE


def _first_page() -> None:
    # A new filter, search or page size changes which rows page N holds; start again at 1.
    st.session_state[PAGE_KEY] = 1


def render_controls() -> ListControls:
    """The filter, search, sort and page-size controls, in one row, bound to the URL."""
    state_col, search_col, sort_col, order_col, size_col = st.container(
        key="list-controls"
    ).columns([2, 3, 2, 2, 1], vertical_alignment="bottom")
    state = state_col.selectbox(
        "State",
        [ANY_STATE, *(s.value for s in EntityState)],
        key=STATE_KEY,
        bind="query-params",
        on_change=_first_page,
        help="Show only releases in this state",
    )
    search = search_col.text_input(
        "Search by ID",
        key=SEARCH_KEY,
        bind="query-params",
        placeholder="part of a release ID, e.g. 2026-11",
        help="Part of a release ID (up to 64 characters); case and punctuation are ignored",
        on_change=_first_page,
    )
    sort = sort_col.selectbox(
        "Sort by",
        list(SORT_TITLES),
        key=SORT_KEY,
        bind="query-params",
        format_func=SORT_TITLES.__getitem__,
        on_change=_first_page,
    )
    order = order_col.selectbox(
        "Order",
        list(ORDER_TITLES),
        key=ORDER_KEY,
        bind="query-params",
        format_func=ORDER_TITLES.__getitem__,
        on_change=_first_page,
    )
    size = size_col.selectbox(
        "Rows",
        PAGE_SIZES,
        index=PAGE_SIZES.index(DEFAULT_PAGE_SIZE),
        key=SIZE_KEY,
        bind="query-params",
        on_change=_first_page,
    )
    return ListControls(
        state=str(state or ANY_STATE),
        search=search or "",
        sort=str(sort or ReleaseSort.STARTED_AT.value),
        order=str(order or "desc"),
        page_size=int(size or DEFAULT_PAGE_SIZE),
    )


def normalize_search(text: str) -> str:
    """The search as IDs are written: lowercase, spaces and '_' as '-', any other character
    outside the ID alphabet dropped, no '-' or '.' at either end (`" Rel_Demo! "` -> `rel-demo`)."""
    lowered = _SEPARATORS.sub("-", text.strip().lower())
    return _OUTSIDE_ALPHABET.sub("", lowered).strip("-.")


def build_query(controls: ListControls, page: int = 1) -> ReleaseQuery:
    """The reader query for the controls (search normalised); InvalidIdError for a search that
    stays malformed (too long)."""
    search = normalize_search(controls.search)
    if search:
        ids.validate_search(search)
    return ReleaseQuery(
        page=max(1, page),
        page_size=controls.page_size,
        state=None if controls.state == ANY_STATE else EntityState(controls.state),
        search=search or None,
        sort=ReleaseSort(controls.sort),
        descending=controls.order != "asc",
    )


def requested_page() -> int:
    """The page the pager (or the URL, before the pager is drawn) asks for."""
    value = st.session_state.get(PAGE_KEY)
    if value is None:
        value = st.query_params.get(PAGE_KEY)
    try:
        return max(1, int(value)) if value is not None else 1
    except (TypeError, ValueError):
        return 1


def matching_releases(
    reader: SyncReader, query: ReleaseQuery, limit: int = EXPORT_LIMIT
) -> list[ReleaseSummary]:
    """Every release the query matches (all pages, in its order), up to `limit`: the reader's
    one implementation (`relmgr.reader.matching`), which the API's CSV uses too."""
    return list(reader.matching_releases(query, limit=limit).items)


def releases_csv_of(reader: SyncReader, query: ReleaseQuery) -> Callable[[], str]:
    """The CSV download's data: built when the button is clicked, not on every refresh."""

    def build() -> str:
        from relmgr.export import releases_csv

        found = reader.matching_releases(query, limit=EXPORT_LIMIT)
        return releases_csv(found.items, as_of=found.read_at)

    return build


def tile_label(title: str, count: int, state: EntityState | None) -> str:
    """A tile's label (Streamlit Markdown): symbol and title in the state's colour, the count
    in bold; `All releases` plain."""
    if state is None:
        return f"{title} · **{count}**"
    style = STATE_STYLES[state]
    return f":{style.color}[{style.symbol} {title}] · **{count}**"


def _filter_by(state: str) -> None:
    # A callback, run before the next run: the state select (outside the data fragment) may
    # still be given its new value, and the list starts again at page 1.
    st.session_state[STATE_KEY] = state
    st.session_state[PAGE_KEY] = 1


def render_tiles(counts: StateCounts, active: str) -> None:
    """One tile per state with how many releases are in it, and one with all of them; a tile
    is a button that filters the list by its state (the chosen one is highlighted)."""
    tiles: list[tuple[str, str, int, EntityState | None]] = [
        (ANY_STATE, "All releases", counts.total, None),
        *((s.value, STATE_TITLES[s], counts.get(s), s) for s in EntityState),
    ]
    clicked = False
    with st.container(key="state-tiles"):
        columns = st.columns(len(tiles))
        for column, (value, title, count, state) in zip(columns, tiles, strict=True):
            clicked |= column.button(
                tile_label(title, count, state),
                key=f"tile-{value}",
                on_click=_filter_by,
                args=(value,),
                type="primary" if value == active else "secondary",
                width="stretch",
                help=f"Show {'all releases' if state is None else title.lower() + ' releases'}",
            )
    if clicked:
        st.rerun(scope="app")  # the controls above the data region show the new filter


def render_table(page: ReleaseListPage) -> None:
    """The page of releases; selecting a row opens its release page."""
    event = st.dataframe(
        release_rows(page.items),
        column_config=release_columns(),
        column_order=RELEASE_COLUMNS,
        hide_index=True,
        key=TABLE_KEY,
        on_select="rerun",
        selection_mode="single-row",
        height=table_height(len(page.items), max_rows=20),
    )
    follow_selection(TABLE_KEY, event, [release_href(r.id) for r in page.items])


def render_pager(page: ReleaseListPage) -> None:
    """Which rows are shown, and the page buttons when there is more than one page."""
    first = (page.page - 1) * page.page_size + 1 if page.items else 0
    last = first + len(page.items) - 1 if page.items else 0
    shown = f"Releases {first}–{last} of {page.total} · page {page.page} of {page.pages}"
    if page.pages > 1:
        # The table's own header sort runs in the browser, on the rows it holds: this page.
        shown += f" · a header click sorts this page; Sort by sorts all {page.total}"
    st.caption(shown)
    if page.pages > 1:
        st.pagination(
            page.pages, default=min(page.page, page.pages), key=PAGE_KEY, bind="query-params"
        )


def render_list(controls: ListControls, *, interval: float | None) -> None:
    """The data region of the releases page: status, tiles, table and pager."""
    try:
        query = build_query(controls, requested_page())
    except InvalidIdError as exc:
        st.error(md_escape(exc.message), icon=":material/search_off:")
        return
    reader = get_reader()
    snapshot = load(
        "releases", query.model_dump_json(), ReleaseListPage, lambda: reader.list_releases(query)
    )
    page = snapshot.value
    if page is not None and not snapshot.stale and page.total and query.page > page.pages:
        # The page asked for is past the end (the list shrank): show the last one instead.
        query = query.model_copy(update={"page": page.pages})
        st.session_state[PAGE_KEY] = page.pages
        snapshot = load(
            "releases",
            query.model_dump_json(),
            ReleaseListPage,
            lambda: reader.list_releases(query),
        )
        page = snapshot.value
    render_status(snapshot, view="releases", interval=interval)
    if page is None:
        return
    render_tiles(page.counts, controls.state)
    typed = controls.search.strip()
    if typed and typed != (query.search or ""):
        searched = f"“{md_escape(query.search)}”" if query.search else "nothing (every release)"
        st.caption(
            f"Searched for {searched}: IDs are lowercase letters, digits, '-' and '.', "
            "so the search was lowercased and other characters dropped."
        )
    if not page.items:
        st.info(
            "No releases match these filters; change or clear them above.",
            icon=":material/filter_alt_off:",
        )
    render_table(page)
    render_pager(page)


def render_download(controls: ListControls) -> None:
    """ "Download CSV" of every release the controls match (as filtered and sorted).

    Drawn in the page body, outside the auto-refreshing fragment: a download button registers its
    data with the server each time it is drawn and drops the previous registration, so inside the
    fragment a click landing just as a refresh redrew the button fetched nothing. Its data is read
    when it is clicked, so it is as fresh as the table (or fresher).
    """
    try:
        query = build_query(controls)
    except InvalidIdError:
        return  # the data region says what is wrong with the search
    st.download_button(
        "Download CSV",
        data=releases_csv_of(get_reader(), query),
        file_name="releases.csv",
        mime="text/csv",
        key=CSV_KEY,
        on_click="ignore",
        icon=":material/download:",
        help=f"Every release that matches the filters (up to {EXPORT_LIMIT:,}), as CSV",
    )
