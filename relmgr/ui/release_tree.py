"""One release: header, needs-attention list, the lazy nested tree, change highlights and CSV.

The tree is nested expanders, Release -> Wave -> Cluster -> Bundle, with the apps of a bundle
as one compact table, each label carrying the state badge and N/M roll-ups. It stays fast for
the 1,206-entity release because it is lazy: an expander tracks its state (`on_change`), and the
children of a closed one are not rendered at all, so a refresh draws the open branches only.

Streamlit derives an expander's identity from its label, so a label that changes (a roll-up
moved on) would come back closed. The open/closed state of every node is therefore read before
it is drawn, kept in session state by ID, and given back as `expanded`: it survives refreshes,
label changes, and a parent being closed and opened again.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from relmgr import ids
from relmgr.errors import InvalidIdError, NotFoundError, TemporalUnavailableError
from relmgr.models import (
    Bundle,
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    StateCounts,
    TreeNode,
    children_of,
)
from relmgr.ui import controls
from relmgr.ui.bridge import SyncReader
from relmgr.ui.freshness import load, render_status
from relmgr.ui.links import anchor, follow_selection, render_picker, temporal_link
from relmgr.ui.present import (
    KIND_TITLES,
    MISSING,
    RELEASE_PARAM,
    RELEASES_PAGE,
    STATE_COLORS,
    STATE_ICONS,
    attempt_text,
    badge,
    entity_href,
    format_duration,
    format_time,
    md_escape,
    next_retry_text,
    node_label,
    node_title,
    ratio,
    scheduled_text,
    state_html,
)
from relmgr.ui.runtime import get_reader
from relmgr.ui.tables import SHOW_SEGMENT, entity_columns, entity_rows, table_height

# How long an entity stays highlighted after its state changed: a few refreshes, so the eye
# can catch it, rather than exactly one.
HIGHLIGHT_SECONDS = 10.0
OPEN_KEY = "relmgr-tree-open"
CSV_KEY = "hierarchy-csv"
CHANGED_ICON = ":material/bolt:"
CONTAINS_CHANGES_ICON = ":material/update:"
_TRACKER_KEY = "relmgr-change-tracker"
# The change mark leads, right after the (pinned) link: at 1400 px it is in view.
_APP_TABLE_COLUMNS = (
    "Entity",
    "Changed",
    "State",
    "Attempt",
    "Started",
    "Last changed",
    "Last error",
)


# ---------------------------------------------------------------------------------------------
# What changed since the previous refresh.


@dataclass(frozen=True, slots=True)
class Changes:
    """Entities whose state changed lately, and every entity with such a change at or below it."""

    changed: frozenset[str] = frozenset()
    containing: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Tracker:
    release_id: str
    states: dict[str, EntityState]
    marked: dict[str, float] = field(default_factory=dict)


def _with_ancestors(entity_ids: frozenset[str]) -> frozenset[str]:
    # An ID's ancestors are its dot-separated prefixes (see relmgr.ids).
    found: set[str] = set()
    for entity_id in entity_ids:
        parts = entity_id.split(".")
        found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return frozenset(found)


def track_changes(hierarchy: ReleaseHierarchy, *, now: float | None = None) -> Changes:
    """Compare with the tree this session showed last; mark entities whose state changed."""
    clock = time.monotonic() if now is None else now
    states = {node.id: node.state for node in hierarchy.entities()}
    previous = st.session_state.get(_TRACKER_KEY)
    marked: dict[str, float] = {}
    if isinstance(previous, _Tracker) and previous.release_id == hierarchy.release.id:
        marked = {i: t for i, t in previous.marked.items() if clock - t < HIGHLIGHT_SECONDS}
        for entity_id, state in states.items():
            before = previous.states.get(entity_id)
            if before is not None and before is not state:
                marked[entity_id] = clock
    st.session_state[_TRACKER_KEY] = _Tracker(hierarchy.release.id, states, marked)
    changed = frozenset(marked)
    return Changes(changed=changed, containing=_with_ancestors(changed))


# ---------------------------------------------------------------------------------------------
# Header and needs-attention list.


def counts_markdown(counts: StateCounts) -> str:
    """One badge per state that has any, with its count (Streamlit Markdown)."""
    shown = [
        f":{STATE_COLORS[s]}-badge[{s.value} {counts.get(s)}]" for s in EntityState if counts.get(s)
    ]
    return " ".join(shown) if shown else ":gray-badge[no apps]"


def attention_leaves(hierarchy: ReleaseHierarchy) -> list[TreeNode]:
    """The root causes: failed or retrying entities with no failed or retrying entity below
    them (the app, or the deepest entity that carries the error), in tree order."""
    items = hierarchy.needs_attention()
    flagged = {node.id for node in items}
    return [
        node
        for node in items
        if not any(other.startswith(node.id + ".") for other in flagged if other != node.id)
    ]


def root_cause_text(node: TreeNode) -> str:
    """`app checkout on cluster eu-west-1 failed: <error>` (plain text)."""
    ref = ids.parse_entity_id(node.id)
    where = ""
    cluster = next((a for a in ref.ancestors() if a.kind is EntityKind.CLUSTER), None)
    if cluster is not None and node.kind is not EntityKind.CLUSTER:
        where = f" on cluster {cluster.name}"
    verb = "is retrying" if node.state is EntityState.RETRYING else node.state.value.lower()
    error = f": {node.last_error}" if node.last_error else ""
    return f"{KIND_TITLES[node.kind].lower()} {ref.name}{where} {verb}{error}"


def render_header(hierarchy: ReleaseHierarchy) -> None:
    """State, progress bar, app counts by state, timing, and the root cause of a failure."""
    release = hierarchy.release
    apps = release.rollup.apps
    waves = release.rollup.children
    st.markdown(f"{badge(release.state)} &nbsp; waves {ratio(waves)} · apps {ratio(apps)}")
    percent = release.rollup.percent_complete
    st.progress(
        min(1.0, percent / 100.0),
        text=f"{percent:.1f}% of apps deployed ({apps.succeeded} of {apps.total})",
    )
    st.markdown(counts_markdown(apps))
    st.caption(timing_text(hierarchy))
    causes = attention_leaves(hierarchy)
    if causes:
        more = f" (and {len(causes) - 1} more below)" if len(causes) > 1 else ""
        cause = root_cause_text(causes[0])
        text = md_escape(cause[:1].upper() + cause[1:])
        if causes[0].state is EntityState.FAILED:
            st.error(text + more, icon=":material/error:")
        else:
            st.warning(text + more, icon=":material/replay:")


def timing_text(hierarchy: ReleaseHierarchy) -> str:
    """When the release started, last changed and finished, and how long it ran (plain text).

    A release that has not begun (scheduled, or waiting for a worker) has no running time."""
    release = hierarchy.release
    if release.state is EntityState.PENDING:
        scheduled = scheduled_text(release)
        return (
            f"Not begun yet: {scheduled or 'waiting for a worker'} · created "
            f"{format_time(release.started_at)}"
        )
    finished = format_time(release.finished_at) if release.state.is_terminal else MISSING
    return (
        f"Started {format_time(release.started_at)} · last change "
        f"{format_time(hierarchy.last_changed_at())} · finished {finished} · "
        f"running time {format_duration(release)}"
    )


def attention_html(leaves: list[TreeNode]) -> str:
    """The needs-attention table: one row per root cause, its place in the tree as columns,
    the whole error wrapped, and links to its page and to Temporal's UI (HTML)."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Entity", "State", "Wave", "Cluster", "Attempt", "Last error", "Last changed")
    )
    rows = []
    for node in leaves:
        ref = ids.parse_entity_id(node.id)
        parents = {a.kind: a.name for a in ref.ancestors()}
        temporal = temporal_link(node.id)
        entity = anchor(f"{KIND_TITLES[node.kind]} {ref.name}", entity_href(node.id))
        if temporal:
            entity += f"<br><small>{temporal}</small>"
        cells = (
            entity,
            state_html(node.state),
            html.escape(parents.get(EntityKind.WAVE, MISSING)),
            html.escape(parents.get(EntityKind.CLUSTER, MISSING)),
            html.escape(" · ".join(t for t in (attempt_text(node), next_retry_text(node)) if t)),
            f'<span class="relmgr-error">{html.escape(node.last_error or MISSING)}</span>',
            html.escape(format_time(node.last_changed_at)),
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<div class="relmgr-attention"><table><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def render_attention(hierarchy: ReleaseHierarchy) -> None:
    """One row per failed or retrying root cause (not its ancestors), whole errors shown."""
    leaves = attention_leaves(hierarchy)
    st.subheader(f"Needs attention ({len(leaves)})", anchor=False)
    if not leaves:
        st.caption("Nothing has failed and nothing is retrying.")
        return
    st.markdown(attention_html(leaves), unsafe_allow_html=True)
    failed_apps = [
        n.id for n in leaves if n.kind is EntityKind.APP and n.state is EntityState.FAILED
    ]
    controls.render_attention_controls(hierarchy.release.id, failed_apps)
    if temporal_link(hierarchy.release.id) is not None:
        st.caption(
            "Every attempt of an entity, with its error, is in its workflow's event history: "
            "follow its Temporal UI link."
        )


# ---------------------------------------------------------------------------------------------
# The tree.


def tree_key(entity_id: str) -> str:
    """The widget key of a node's expander ('.' is not in the ID alphabet's CSS-friendly part)."""
    return "tree-" + entity_id.replace(".", "_")


def default_open(node: TreeNode) -> bool:
    """The release itself, and a cluster's one bundle, start open; everything else closed."""
    return node.kind in (EntityKind.RELEASE, EntityKind.BUNDLE)


def _icon(node: TreeNode, changes: Changes) -> str:
    if node.id in changes.changed:
        return CHANGED_ICON
    if node.id in changes.containing:
        return CONTAINS_CHANGES_ICON
    return STATE_ICONS[node.state]


def node_links_html(node: TreeNode) -> str:
    """The node's own page (not for the release: this is its page) and its Temporal UI (HTML)."""
    parts = []
    if node.kind is not EntityKind.RELEASE:
        parts.append(anchor(f"Open {node_title(node).lower()}", entity_href(node.id)))
    temporal = temporal_link(node.id)
    if temporal:
        parts.append(temporal)
    return " &nbsp;·&nbsp; ".join(parts)


def _render_node(node: TreeNode, changes: Changes) -> None:
    key = tree_key(node.id)
    remembered: dict[str, bool] = st.session_state.setdefault(OPEN_KEY, {})
    # The expander's own state when it was drawn last run (or the click that caused this run),
    # else what was remembered when it was last drawn, else the default.
    current = st.session_state.get(key)
    is_open = current if isinstance(current, bool) else remembered.get(node.id, default_open(node))
    remembered[node.id] = is_open
    expander = st.expander(
        node_label(node, changed=node.id in changes.changed),
        expanded=is_open,
        key=key,
        icon=_icon(node, changes),
        on_change="rerun",
    )
    with expander:
        if not expander.open:
            return  # lazy: nothing below a closed node is drawn
        links = node_links_html(node)
        if links:
            st.caption(links, unsafe_allow_html=True)
        if isinstance(node, Bundle):
            table_key = f"apps-{key}"
            rows = entity_rows(node.apps, changed=changes.changed)
            event = st.dataframe(
                rows,
                column_config=entity_columns(show=SHOW_SEGMENT),
                column_order=_APP_TABLE_COLUMNS,
                hide_index=True,
                key=table_key,
                on_select="rerun",
                selection_mode="single-row",
                height=table_height(len(node.apps), max_rows=25),
            )
            follow_selection(table_key, event, rows["Entity"])
            return
        for child in children_of(node):
            _render_node(child, changes)


def render_tree(hierarchy: ReleaseHierarchy, changes: Changes) -> None:
    """Release -> Wave -> Cluster -> Bundle -> App, drawn only where it is open."""
    st.subheader("Hierarchy", anchor=False)
    st.caption(
        "N/M = succeeded of total. "
        f"{CHANGED_ICON} :orange-badge[changed] marks a state change in the last "
        f"{HIGHLIGHT_SECONDS:g} s; {CONTAINS_CHANGES_ICON} marks a branch with one inside."
    )
    _render_node(hierarchy.release, changes)


# ---------------------------------------------------------------------------------------------
# The page's data region.


def hierarchy_csv_of(hierarchy: ReleaseHierarchy) -> str:
    """The whole tree as CSV, one row per entity."""
    from relmgr.export import hierarchy_csv

    return hierarchy_csv(hierarchy)


def current_hierarchy_csv(reader: SyncReader, release_id: str) -> Callable[[], str]:
    """The hierarchy CSV's data, read when the button is clicked; while Temporal is unavailable,
    the last tree the reader knows (the same one the stale page shows)."""

    def build() -> str:
        try:
            hierarchy = read_release(reader, release_id)
        except TemporalUnavailableError as exc:
            if not isinstance(exc.last_known, ReleaseHierarchy):
                raise
            hierarchy = exc.last_known
        return hierarchy_csv_of(hierarchy)

    return build


def render_download(release_id: str) -> None:
    """ "Download hierarchy CSV", drawn in the page body, outside the auto-refreshing fragment:
    each drawing of a download button replaces its server-side registration, so inside the
    fragment a click landing on a refresh fetched nothing."""
    try:
        ids.validate_release_id(release_id)
    except InvalidIdError:
        return  # the data region names the expected format
    st.download_button(
        "Download hierarchy CSV",
        data=current_hierarchy_csv(get_reader(), release_id),
        file_name=f"{release_id}.csv",
        mime="text/csv",
        key=CSV_KEY,
        on_click="ignore",
        icon=":material/download:",
        help="Every entity of this release: kind, ID, parent, state, times",
    )


def read_release(reader: SyncReader, release_id: str) -> ReleaseHierarchy:
    """One read of the whole tree (a function so tests can name what the page reads)."""
    return reader.get_release_hierarchy(release_id)


def render_release(release_id: str, *, interval: float | None) -> None:
    """The data region of the release page."""
    reader = get_reader()
    try:
        snapshot = load(
            "release", release_id, ReleaseHierarchy, lambda: read_release(reader, release_id)
        )
    except InvalidIdError as exc:
        st.error(md_escape(exc.message), icon=":material/error:")
        render_picker(param=RELEASE_PARAM, key="release-picker-not-found")
        return
    except NotFoundError:
        st.warning(
            f"Release {md_escape(release_id)} was not found: no release workflow has this ID "
            "(a typo, or a release this Temporal namespace does not keep any more). "
            "Pick one instead:",
            icon=":material/search_off:",
        )
        render_picker(param=RELEASE_PARAM, key="release-picker-not-found")
        st.page_link(RELEASES_PAGE, label="Back to all releases", icon=":material/arrow_back:")
        return
    render_status(snapshot, view="release", interval=interval)
    hierarchy = snapshot.value
    if hierarchy is None:
        return
    changes = track_changes(hierarchy) if not snapshot.stale else Changes()
    render_header(hierarchy)
    render_attention(hierarchy)
    render_tree(hierarchy, changes)
