"""Moving between pages: opening a selected table row, and asking for an ID when none is given.

Links in tables (`LinkColumn`) and in Markdown open a new browser tab, hence a new session; these
helpers navigate inside the session with `st.switch_page`, keeping the page's URL shareable
through its query parameters, and make the switch in a full run of the app, never in a rerun of
an auto-refreshing fragment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from relmgr.models import Entity
from relmgr.ui.present import ENTITY_PAGE, ENTITY_PARAM, RELEASE_PAGE, RELEASE_PARAM
from relmgr.ui.tables import entity_columns, entity_rows, table_height

_SHOWN = "relmgr-rows-shown"
_PENDING_SWITCH = "relmgr-pending-switch"
# Long enough for the browser to learn that a full run started (and drop its refresh timers),
# short enough not to be noticed after a click.
SWITCH_SETTLE_SECONDS = 0.25


def remember_rows(table_key: str, entity_ids: Sequence[str]) -> None:
    """Remember which IDs a selectable table showed, in display order, for the next run."""
    st.session_state.setdefault(_SHOWN, {})[table_key] = tuple(entity_ids)


def selected_id(table_key: str, event: Any) -> str | None:
    """The ID of the row selected in `event`, as the table showed it when it was clicked.

    The selection arrives in the rerun after the click, whose fresh read may have reordered the
    rows, so the index is looked up among the rows the previous run showed.
    """
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    shown = st.session_state.get(_SHOWN, {}).get(table_key, ())
    if not rows or not 0 <= rows[0] < len(shown):
        return None
    return str(shown[rows[0]])


def open_release(release_id: str) -> None:
    """Open a release's page (this ends the current run; see `follow_pending_switch`)."""
    _switch_soon(RELEASE_PAGE, {RELEASE_PARAM: release_id})


def open_entity(entity_id: str) -> None:
    """Open an entity's page (this ends the current run; see `follow_pending_switch`)."""
    _switch_soon(ENTITY_PAGE, {ENTITY_PARAM: entity_id})


def _switch_soon(page: str, query_params: dict[str, str]) -> None:
    # A row's selection arrives in a rerun of the auto-refreshing fragment. Switching pages
    # right there raced with the fragment's refresh timer in the browser: a refresh requested
    # while the switch was under way sometimes left a blank page ("Bad delta path index", 3-4 in
    # 15 selections at a 1 s refresh). So the switch is only noted here and made in a full run.
    st.session_state[_PENDING_SWITCH] = (page, query_params)
    st.rerun(scope="app")


def follow_pending_switch() -> None:
    """Make the page switch a table row asked for, if any (called by the frame each full run).

    The browser drops every fragment's refresh timer when a full run starts; waiting a moment
    first lets that happen, and lets a refresh already on its way arrive, before the switch.
    """
    pending = st.session_state.pop(_PENDING_SWITCH, None)
    if pending is None:
        return
    page, query_params = pending
    time.sleep(SWITCH_SETTLE_SECONDS)
    st.switch_page(page, query_params=query_params)


def id_prompt(*, param: str, label: str, placeholder: str, key: str, button: str) -> None:
    """A small form that puts an ID into the page's query parameter (the page then shows it)."""
    with st.form(key, border=False):
        value = st.text_input(label, placeholder=placeholder, key=f"{key}-value")
        if st.form_submit_button(button, icon=":material/open_in_new:") and value.strip():
            st.query_params[param] = value.strip()
            st.rerun()


def requested_id(
    *, param: str, title: str, label: str, placeholder: str, key: str, button: str
) -> str:
    """The ID in the page's query parameter `param`; without one, the page's title and a prompt
    for it, and the run ends there."""
    value = st.query_params.get(param, "").strip()
    if value:
        return value
    st.title(title, anchor=False)
    id_prompt(param=param, label=label, placeholder=placeholder, key=key, button=button)
    st.stop()


def entity_table(
    entities: Sequence[Entity],
    *,
    key: str,
    show: str,
    columns: Sequence[str],
    max_rows: int,
) -> None:
    """A table of entities in which selecting a row opens that entity's page."""
    event = st.dataframe(
        entity_rows(entities),
        column_config=entity_columns(show=show),
        column_order=columns,
        hide_index=True,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        height=table_height(len(entities), max_rows=max_rows),
    )
    chosen = selected_id(key, event)
    remember_rows(key, [e.id for e in entities])
    if chosen is not None:
        open_entity(chosen)
