"""Moving between pages: real links, opening a selected table row, and the release picker.

Every move to another entity is a full browser navigation to that entity's own URL: a plain
`<a href>` (HTML, `target="_self"`), or, for a row selected in a table, the browser sent to the
row's link. So the address bar always names what is shown, a copied link opens the same view,
and Back/Forward are the browser's own (the list's filters and sort are in its URL).

Why not `st.switch_page` or `st.page_link` (Streamlit 1.67): `switch_page` with query parameters
first announces the new parameters on the old page's path and then the new path, leaving a broken
history entry (`/release?id=...app-x`, `/?release=...`); a `page_link` to the same page with other
parameters (breadcrumb to a cluster, from an app) leaves the address bar on the old entity. And a
page switch made in a rerun of an auto-refreshing fragment raced its refresh timer (blank pages);
a browser navigation leaves that page and its timers behind altogether. A new page costs one
script run, the session cookie signs it in at once (`relmgr.ui.login`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import streamlit as st

from relmgr import ids
from relmgr.errors import InvalidIdError, RelmgrError
from relmgr.models import Entity, ReleaseQuery, ReleaseSort, ReleaseSummary
from relmgr.settings import get_settings
from relmgr.ui.present import STATE_TITLES, md_escape, temporal_workflow_url
from relmgr.ui.runtime import get_reader
from relmgr.ui.tables import entity_columns, entity_rows, table_height

_SHOWN = "relmgr-rows-shown"
# Where this session last sent the browser (tests read it; the browser leaves the page).
NAVIGATING_TO = "relmgr-navigating-to"
# How many releases the picker offers: the most recently changed first.
PICKER_SIZE = 200

# Our own code, run in the app page (components v2 are not sandboxed): one navigation to the
# link it is given, relative to the page's URL (so it works under any base URL path).
_NAVIGATE_JS = """
export default function (component) {
  const { data } = component;
  if (data && data.href) {
    window.location.assign(new URL(data.href, window.location.href).toString());
  }
}
"""

_navigator = st.components.v2.component("relmgr_navigate", js=_NAVIGATE_JS)


def anchor(label: str, href: str, *, tooltip: str | None = None, new_tab: bool = False) -> str:
    """An HTML link (for `st.markdown(..., unsafe_allow_html=True)`); label and href escaped.

    `target="_self"`: Streamlit opens Markdown links without a target in a new tab.
    """
    target = ' target="_blank" rel="noopener noreferrer"' if new_tab else ' target="_self"'
    title = f' title="{html.escape(tooltip)}"' if tooltip else ""
    return f'<a href="{html.escape(href)}"{target}{title}>{html.escape(label)}</a>'


def temporal_link(entity_id: str) -> str | None:
    """An HTML link to the entity's workflow in Temporal's Web UI; None when not configured."""
    settings = get_settings()
    url = temporal_workflow_url(settings.temporal_ui_url, settings.temporal_namespace, entity_id)
    if url is None:
        return None
    return anchor(
        "Temporal UI ↗",
        url,
        tooltip="This workflow in Temporal's Web UI: its event history and every attempt",
        new_tab=True,
    )


def go_to(href: str) -> None:
    """Send the browser to `href` (a full navigation, one history entry) and end this run."""
    st.session_state[NAVIGATING_TO] = href
    _navigator(key=f"navigate-{href}", data={"href": href}, height=0)
    st.stop()


def remember_rows(table_key: str, hrefs: Sequence[str]) -> None:
    """Remember the links of the rows a selectable table showed, in display order."""
    st.session_state.setdefault(_SHOWN, {})[table_key] = tuple(hrefs)


def selected_href(table_key: str, event: Any) -> str | None:
    """The link of the row selected in `event`, as the table showed it when it was clicked.

    The selection arrives in the rerun after the click, whose fresh read may have reordered the
    rows, so the index is looked up among the rows the previous run showed.
    """
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    shown = st.session_state.get(_SHOWN, {}).get(table_key, ())
    if not rows or not 0 <= rows[0] < len(shown):
        return None
    return str(shown[rows[0]])


def follow_selection(table_key: str, event: Any, hrefs: Sequence[str]) -> None:
    """Open the selected row's link, if a row was selected; remember these rows for next time."""
    chosen = selected_href(table_key, event)
    remember_rows(table_key, hrefs)
    if chosen is not None:
        go_to(chosen)


# ---------------------------------------------------------------------------------------------
# The release picker of the Release and Entity pages.


def _picker_options() -> tuple[list[str], dict[str, str], str | None]:
    """Release IDs, most recently changed first, their labels, and why there are none."""
    try:
        page = get_reader().list_releases(
            ReleaseQuery(page_size=PICKER_SIZE, sort=ReleaseSort.LAST_CHANGED_AT)
        )
    except RelmgrError as exc:
        return [], {}, exc.message
    items: list[ReleaseSummary] = sorted(page.items, key=lambda r: r.state.is_terminal)
    labels = {r.id: f"{r.id} · {STATE_TITLES[r.state].lower()}" for r in items}
    return [r.id for r in items], labels, None


def render_picker(*, param: str, key: str, label: str = "Release") -> None:
    """A searchable select of recent releases (running first); its choice goes into the page's
    query parameter `param`, so the address bar names it. Another ID can be typed in."""
    options, labels, problem = _picker_options()
    if problem is not None:
        st.caption(f"The list of releases is unavailable ({problem}); type an ID instead.")
    chosen = st.selectbox(
        label,
        options,
        index=None,
        key=key,
        format_func=lambda value: labels.get(value, value),
        placeholder="Type to search releases, or paste any ID",
        accept_new_options=True,
        help="Running releases first, then the most recently changed; any ID can be typed in",
    )
    if chosen:
        st.query_params.clear()
        st.query_params[param] = str(chosen).strip()
        st.rerun(scope="app")


def requested_id(*, param: str, title: str, key: str, validate: Any) -> str:
    """The ID in the page's query parameter `param`, once `validate` accepts it; without one, or
    with a malformed one, the page's title, what was wrong, and the picker; the run ends there."""
    value = st.query_params.get(param, "").strip()
    problem = None
    if value:
        try:
            validate(value)
            return value
        except InvalidIdError as exc:
            problem = exc.message
    st.title(title, anchor=False)
    if problem is not None:
        st.error(md_escape(problem), icon=":material/error:")
    render_picker(param=param, key=key)
    st.stop()


def validate_entity_id(value: str) -> None:
    """InvalidIdError unless `value` is the ID of a release, wave, cluster, bundle or app."""
    ids.parse_entity_id(value)


def entity_table(
    entities: Sequence[Entity],
    *,
    key: str,
    show: str,
    columns: Sequence[str],
    max_rows: int,
) -> None:
    """A table of entities in which selecting a row opens that entity's page."""
    rows = entity_rows(entities)
    event = st.dataframe(
        rows,
        column_config=entity_columns(show=show),
        column_order=columns,
        hide_index=True,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        height=table_height(len(entities), max_rows=max_rows),
    )
    follow_selection(key, event, rows["Entity"])
