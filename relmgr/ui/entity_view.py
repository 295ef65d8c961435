"""One entity of any kind: state, times, attempt, last error, breadcrumbs, children, live detail.

The page reads `get_entity` (visibility, via the reader's cache) on every refresh. The "live
detail" button asks the entity's running workflow itself (`get_live_state`, a Temporal query);
its answer is kept in the session, with its time, until the page shows another entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from relmgr import ids
from relmgr.errors import (
    InvalidIdError,
    LiveStateUnavailableError,
    NotFoundError,
    TemporalUnavailableError,
)
from relmgr.models import Breadcrumb, Entity, EntityDetail, EntityKind
from relmgr.ui.bridge import SyncReader
from relmgr.ui.freshness import load, render_status
from relmgr.ui.links import anchor, entity_table, render_picker, temporal_link
from relmgr.ui.present import (
    ENTITY_PARAM,
    KIND_TITLES,
    MISSING,
    RELEASES_PAGE,
    age_seconds,
    attempt_text,
    badge,
    entity_href,
    format_duration,
    format_seconds,
    format_time,
    md_escape,
    next_retry_text,
    ratio,
    release_href,
    scheduled_text,
)
from relmgr.ui.release_tree import counts_markdown
from relmgr.ui.runtime import get_reader
from relmgr.ui.tables import SHOW_SEGMENT

CHILDREN_KEY = "children-table"
LIVE_BUTTON_KEY = "entity-live"
_LIVE = "relmgr-live-detail"
_CHILD_COLUMNS = ("Entity", "Kind", "State", "Attempt", "Last changed", "Last error")


@dataclass(frozen=True, slots=True)
class LiveDetail:
    """The answer of one live query: the entity, or why there is none."""

    entity_id: str
    asked_at: datetime
    entity: Entity | None = None
    # Why there is no answer, as Markdown (foreign text already escaped).
    unavailable: str | None = None


def crumb_href(crumb: Breadcrumb) -> str:
    """The URL a breadcrumb links to (a release links to its own release page)."""
    if crumb.kind is EntityKind.RELEASE:
        return release_href(crumb.id)
    return entity_href(crumb.id)


def crumb_label(crumb: Breadcrumb) -> str:
    """`Release rel-x`, `Wave 1`, `Cluster eu-1`, `Bundle core` (plain text)."""
    if crumb.kind is EntityKind.RELEASE:
        return f"Release {crumb.id}"
    return f"{KIND_TITLES[crumb.kind]} {ids.parse_entity_id(crumb.id).name}"


def breadcrumbs_html(detail: EntityDetail) -> str:
    """Links up the tree, all releases first; a release links to its own release page too."""
    entity = detail.entity
    parts = [anchor("Releases", "./")]
    parts += [anchor(crumb_label(crumb), crumb_href(crumb)) for crumb in detail.breadcrumbs]
    if entity.kind is EntityKind.RELEASE:
        parts.append(anchor(f"Release page of {entity.id}", release_href(entity.id)))
    trail = " › ".join(parts)
    temporal = temporal_link(entity.id)
    return trail + (f" &nbsp;·&nbsp; {temporal}" if temporal else "")


def render_breadcrumbs(detail: EntityDetail) -> None:
    """The breadcrumb trail, each one a plain link to its own URL, and the Temporal UI link."""
    st.markdown(breadcrumbs_html(detail), unsafe_allow_html=True)


def render_summary(detail: EntityDetail) -> None:
    """State, attempt, times and last error of the entity."""
    entity = detail.entity
    attempt = f" · attempt {attempt_text(entity)}" if entity.attempt else ""
    later = next_retry_text(entity) or scheduled_text(entity)
    attempt += f" · {later}" if later else ""
    st.markdown(
        f"{badge(entity.state)} &nbsp; {KIND_TITLES[entity.kind].lower()}{attempt}"
        + ("" if entity.started else " · :gray[planned, no workflow yet]")
    )
    finished = format_time(entity.finished_at) if entity.state.is_terminal else MISSING
    times = (
        ("Started", format_time(entity.started_at)),
        ("Last change", format_time(entity.last_changed_at)),
        ("Finished", finished),
        ("Running time", format_duration(entity)),
    )
    for column, (label, value) in zip(st.columns(len(times)), times, strict=True):
        column.markdown(f"**{label}**  \n{value}")
    if entity.last_error:
        st.markdown("**Last error**")
        st.code(entity.last_error, language=None, wrap_lines=True)


def render_children(detail: EntityDetail) -> None:
    """A summary line of what is below, and the direct children; a selected row opens its page."""
    children = detail.children
    if detail.entity.kind is EntityKind.APP:
        return
    st.subheader(f"Children ({len(children)})", anchor=False)
    apps = detail.rollup.apps
    st.markdown(f"Apps below: {ratio(apps)} succeeded · {counts_markdown(apps)}")
    if not children:
        st.caption("No children yet.")
        return
    entity_table(children, key=CHILDREN_KEY, show=SHOW_SEGMENT, columns=_CHILD_COLUMNS, max_rows=20)


def ask_live(reader: SyncReader, entity_id: str) -> LiveDetail:
    """One live query, its failure turned into the reason shown."""
    now = datetime.now(UTC)
    try:
        return LiveDetail(
            entity_id=entity_id, asked_at=now, entity=reader.get_live_state(entity_id)
        )
    except LiveStateUnavailableError:
        return LiveDetail(
            entity_id=entity_id,
            asked_at=now,
            unavailable=(
                "no running workflow answered the live query (it finished, or no worker runs)"
            ),
        )
    except TemporalUnavailableError as exc:
        return LiveDetail(entity_id=entity_id, asked_at=now, unavailable=md_escape(exc.message))


def render_live(reader: SyncReader, entity_id: str) -> None:
    """The live-detail button and its last answer for this entity."""
    if st.button(
        "Live detail",
        key=LIVE_BUTTON_KEY,
        icon=":material/sensors:",
        help="Ask the running workflow itself (a Temporal query), not the visibility index",
    ):
        st.session_state[_LIVE] = ask_live(reader, entity_id)
    live = st.session_state.get(_LIVE)
    if not isinstance(live, LiveDetail) or live.entity_id != entity_id:
        return
    asked = format_seconds(age_seconds(live.asked_at))
    if live.entity is None:
        st.info(
            f"Live detail unavailable: {live.unavailable or 'no answer'}.",
            icon=":material/sensors_off:",
        )
        return
    entity = live.entity
    error = f" · last error: {md_escape(entity.last_error)}" if entity.last_error else ""
    st.success(
        f"Live state (asked {asked} ago): {badge(entity.state)} · "
        + (f"attempt {entity.attempt} · " if entity.attempt else "")
        + f"last change {format_time(entity.last_changed_at)}{error}",
        icon=":material/sensors:",
    )


def render_entity(entity_id: str, *, interval: float | None) -> None:
    """The data region of the entity page."""
    reader = get_reader()
    try:
        snapshot = load("entity", entity_id, EntityDetail, lambda: reader.get_entity(entity_id))
    except InvalidIdError as exc:
        st.error(md_escape(exc.message), icon=":material/error:")
        render_picker(param=ENTITY_PARAM, key="entity-picker-not-found")
        return
    except NotFoundError:
        kind = ids.parse_entity_id(entity_id).kind
        st.warning(
            f"{KIND_TITLES[kind]} {md_escape(entity_id)} was not found: no workflow has this ID "
            "(a typo, or a release this Temporal namespace does not keep any more). "
            "Pick a release instead:",
            icon=":material/search_off:",
        )
        render_picker(param=ENTITY_PARAM, key="entity-picker-not-found")
        st.page_link(RELEASES_PAGE, label="Back to all releases", icon=":material/arrow_back:")
        return
    render_status(snapshot, view="entity", interval=interval)
    detail = snapshot.value
    if detail is None:
        return
    render_breadcrumbs(detail)
    render_summary(detail)
    render_live(reader, entity_id)
    render_children(detail)
