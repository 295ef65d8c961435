"""The dashboard's tables: columns of plain values (dict of lists) and their `column_config`.

Every table is built here from models, column by column, so tests can check the values without a
browser and so `st.dataframe` gets typed columns it can sort by clicking a header: links sort by
ID, progress as a number, the release list's times as times (entity tables show times and
attempts as text, so that a missing one is an em dash, not the grid's `None`; they still sort).
States are one-element lists shown as coloured tags (a `MultiselectColumn` in a read-only
dataframe is Streamlit's coloured-label column).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import streamlit as st

from relmgr.models import (
    App,
    Bundle,
    Cluster,
    Entity,
    EntityState,
    Release,
    ReleaseSummary,
    TreeNode,
    Wave,
)
from relmgr.ui.present import (
    KIND_TITLES,
    MISSING,
    STATE_COLORS,
    as_utc,
    attempt_text,
    current_wave_text,
    entity_href,
    ratio,
    release_href,
    rollup_text,
)

Columns = dict[str, list[Any]]
ColumnConfig = dict[str, Any]

TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"
CHANGED_TAG = "changed"
# Row height (px) Streamlit draws and the header; used to size tables to their rows.
_ROW_PX = 35
# Wide enough for the longest state tag, AWAITING_APPROVAL.
_STATE_PX = 170


def _state_column(label: str = "State") -> Any:
    states = [s.value for s in EntityState]
    return st.column_config.MultiselectColumn(
        label, options=states, color=[STATE_COLORS[s] for s in EntityState], width=_STATE_PX
    )


def _time_column(label: str) -> Any:
    return st.column_config.DatetimeColumn(label, format=TIME_FORMAT, timezone="UTC")


def table_time(moment: datetime | None) -> str:
    """`2026-11-26 12:00:05` (UTC, said in the column's title), or an em dash when unknown."""
    return MISSING if moment is None else as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


def table_height(rows: int, *, max_rows: int = 15) -> int:
    """A height that shows up to `max_rows` rows without inner scrolling, header included."""
    return _ROW_PX * (min(max(rows, 1), max_rows) + 1) + 3


# ---------------------------------------------------------------------------------------------
# The release list.

# The ID, state and times first: at 1400 px they show without scrolling sideways; the counts
# follow (the ID column stays pinned when the table scrolls).
RELEASE_COLUMNS: tuple[str, ...] = (
    "Release",
    "State",
    "Complete",
    "Last changed",
    "Started",
    "Apps",
    "Failed",
    "Retrying",
    "In progress",
    "Pending",
    "Wave",
)


def release_rows(items: Sequence[ReleaseSummary]) -> Columns:
    """One row per release, in the order given (the reader's sort)."""
    return {
        "Release": [release_href(r.id) for r in items],
        "State": [[r.state.value] for r in items],
        "Complete": [r.percent_complete for r in items],
        "Apps": [ratio(r.apps) for r in items],
        "Failed": [r.apps.failed for r in items],
        "Retrying": [r.apps.retrying for r in items],
        "In progress": [r.apps.in_progress for r in items],
        "Pending": [r.apps.pending for r in items],
        "Wave": [current_wave_text(r.current_wave, r.waves_total) for r in items],
        "Started": [r.started_at for r in items],
        "Last changed": [r.last_changed_at for r in items],
    }


def release_columns() -> ColumnConfig:
    """How the release list shows each column."""
    return {
        "Release": st.column_config.LinkColumn(
            "Release",
            display_text=r"release=(.+)$",
            help="Opens the release in a new tab; select a row to open it here.",
            width="medium",
            pinned=True,
        ),
        "State": _state_column(),
        "Complete": st.column_config.ProgressColumn(
            "Complete", format="%.1f%%", min_value=0, max_value=100, width="small"
        ),
        "Apps": st.column_config.TextColumn(
            "Apps", help="Apps deployed / apps planned", width="small"
        ),
        "Failed": st.column_config.NumberColumn("Failed", help="Apps that failed", width="small"),
        "Retrying": st.column_config.NumberColumn(
            "Retrying", help="Apps waiting to retry", width="small"
        ),
        "In progress": st.column_config.NumberColumn(
            "In progress", help="Apps deploying now", width="small"
        ),
        "Pending": st.column_config.NumberColumn(
            "Pending", help="Apps not started yet", width="small"
        ),
        "Wave": st.column_config.TextColumn("Wave", help="Current wave / waves", width="small"),
        "Started": _time_column("Started"),
        "Last changed": _time_column("Last changed"),
    }


# ---------------------------------------------------------------------------------------------
# Entities: apps of a bundle, children of an entity, the needs-attention list.

ENTITY_COLUMNS: tuple[str, ...] = (
    "Entity",
    "Kind",
    "State",
    "Roll-up",
    "Attempt",
    "Started",
    "Last changed",
    "Last error",
    "Changed",
)
# What an entity link shows: its whole ID; its path below the release (`wave-1.cluster-eu-1`),
# enough on a page about that release; or only its last segment (`app-checkout`), enough inside
# a tree that already names the parents.
SHOW_ID = r"id=(.+)$"
SHOW_PATH = r"id=(?:rel-[^.]+\.)?(.+)$"
SHOW_SEGMENT = r"id=(?:.*\.)?([^.]+)$"


def entity_rows(
    entities: Iterable[Entity | TreeNode], *, changed: frozenset[str] = frozenset()
) -> Columns:
    """One row per entity: a link to its page, kind, state, roll-up (tree nodes only), attempt,
    times, last error, and a `changed` tag for the entities whose state just changed."""
    rows = list(entities)
    return {
        "Entity": [entity_href(e.id) for e in rows],
        "Kind": [KIND_TITLES[e.kind] for e in rows],
        "State": [[e.state.value] for e in rows],
        "Roll-up": [rollup_text(e) if isinstance(e, _TREE_NODES) else "" for e in rows],
        # Text, not numbers and times: a missing value is an em dash, where the grid would
        # print `None`; the times still sort right (`YYYY-MM-DD HH:MM:SS`).
        "Attempt": [attempt_text(e) for e in rows],
        "Started": [table_time(e.started_at) for e in rows],
        "Last changed": [table_time(e.last_changed_at) for e in rows],
        "Last error": [e.last_error or MISSING for e in rows],
        "Changed": [[CHANGED_TAG] if e.id in changed else [] for e in rows],
    }


_TREE_NODES = (Release, Wave, Cluster, Bundle, App)


def entity_columns(*, show: str = SHOW_ID) -> ColumnConfig:
    """How entity tables show each column; `show` picks what the link displays."""
    return {
        "Entity": st.column_config.LinkColumn(
            "Entity",
            display_text=show,
            help="Opens the entity's page in a new tab; select a row to open it here",
            width="large" if show == SHOW_ID else "medium",
            pinned=True,
        ),
        "Kind": st.column_config.TextColumn("Kind", width="small"),
        "State": _state_column(),
        "Roll-up": st.column_config.TextColumn("Roll-up", help="Succeeded / total below it"),
        "Attempt": st.column_config.TextColumn("Attempt", width="small"),
        "Started": st.column_config.TextColumn("Started (UTC)", width="medium"),
        "Last changed": st.column_config.TextColumn("Last changed (UTC)", width="medium"),
        "Last error": st.column_config.TextColumn("Last error", width="large"),
        "Changed": st.column_config.MultiselectColumn(
            "Changed", options=[CHANGED_TAG], color="orange", width="small"
        ),
    }
