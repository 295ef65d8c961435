"""Pure formatting for the dashboard: state badges, roll-up labels, times, ages, links, escaping.

Nothing here calls Streamlit; every function returns text (Streamlit Markdown where it says so),
so tests can check labels exactly. Any text that did not come from this module (an ID, an error
message, a name from Temporal) goes through `md_escape` before it is put into Markdown.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from relmgr import ids
from relmgr.errors import InvalidIdError
from relmgr.models import (
    App,
    Entity,
    EntityKind,
    EntityState,
    Release,
    StateCounts,
    TreeNode,
)

BadgeColor = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "primary"]


@dataclass(frozen=True, slots=True)
class StateStyle:
    """How one state is shown: a colour by meaning, and an icon and a word, so that it reads
    without colour too."""

    color: BadgeColor
    icon: str  # a Material icon, for Streamlit elements
    symbol: str  # a text symbol, for HTML and table cells
    title: str


# The one table of how states look, keyed by value so that a state added to EntityState later
# (AWAITING_APPROVAL, PAUSED) picks up its style here; any other gets a neutral one.
# Colours are Streamlit's palette names, which adapt to the light and the dark theme. Symbols
# are plain text from blocks every UI font has (an emoji such as ✋ shows as a box without one).
_STATE_STYLES: dict[str, StateStyle] = {
    "PENDING": StateStyle("gray", ":material/schedule:", "◌", "Pending"),
    "IN_PROGRESS": StateStyle("blue", ":material/autorenew:", "▶", "In progress"),
    "RETRYING": StateStyle("orange", ":material/replay:", "↻", "Retrying"),
    "SUCCEEDED": StateStyle("green", ":material/check_circle:", "✔", "Succeeded"),
    "FAILED": StateStyle("red", ":material/error:", "✖", "Failed"),
    "CANCELLED": StateStyle("violet", ":material/cancel:", "⊘", "Cancelled"),
    "AWAITING_APPROVAL": StateStyle("yellow", ":material/approval:", "◔", "Awaiting approval"),
    "PAUSED": StateStyle("yellow", ":material/pause_circle:", "‖", "Paused"),
}


def state_style(state: EntityState) -> StateStyle:
    """The style of a state; a state this table does not know gets a neutral one."""
    known = _STATE_STYLES.get(state.value)
    if known is not None:
        return known
    return StateStyle("gray", ":material/help:", "•", state.value.replace("_", " ").capitalize())


STATE_STYLES: dict[EntityState, StateStyle] = {s: state_style(s) for s in EntityState}
STATE_COLORS: dict[EntityState, BadgeColor] = {s: v.color for s, v in STATE_STYLES.items()}
STATE_ICONS: dict[EntityState, str] = {s: v.icon for s, v in STATE_STYLES.items()}
STATE_TITLES: dict[EntityState, str] = {s: v.title for s, v in STATE_STYLES.items()}
KIND_TITLES: dict[EntityKind, str] = {
    EntityKind.RELEASE: "Release",
    EntityKind.WAVE: "Wave",
    EntityKind.CLUSTER: "Cluster",
    EntityKind.BUNDLE: "Bundle",
    EntityKind.APP: "App",
}
_CHILD_NOUNS: dict[EntityKind, str] = {
    EntityKind.RELEASE: "waves",
    EntityKind.WAVE: "clusters",
    EntityKind.CLUSTER: "bundle",
    EntityKind.BUNDLE: "apps",
}
CHANGED_BADGE = ":orange-badge[changed]"
MISSING = "—"

# The pages, as `st.navigation` declares them (see streamlit_app.py) and links point at them.
RELEASES_PAGE = "pages/releases.py"
RELEASE_PAGE = "pages/release.py"
ENTITY_PAGE = "pages/entity.py"
RELEASE_URL_PATH = "release"
ENTITY_URL_PATH = "entity"
RELEASE_PARAM = "release"
ENTITY_PARAM = "id"

# Characters that start Markdown syntax or a Streamlit directive (`:red[...]`, `:material/x:`).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|:~$=])")


def md_escape(text: str) -> str:
    """Text that Streamlit Markdown shows literally (no links, emphasis, directives or HTML)."""
    flat = " ".join(text.split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def badge(state: EntityState) -> str:
    """A coloured Markdown badge naming the state."""
    return f":{STATE_COLORS[state]}-badge[{state.value}]"


def state_html(state: EntityState) -> str:
    """A coloured tag with symbol and word, for HTML tables (`relmgr.ui.styles` colours it)."""
    style = STATE_STYLES[state]
    return (
        f'<span class="relmgr-state relmgr-{style.color}">'
        f"{style.symbol} {html.escape(style.title)}</span>"
    )


def node_title(entity: Entity) -> str:
    """`Release rel-x`, `Wave 2`, `Cluster eu-1`, `Bundle core` or `App web` (plain text)."""
    if entity.kind is EntityKind.RELEASE:
        return f"Release {entity.id}"
    return f"{KIND_TITLES[entity.kind]} {entity.name}"


def title_for_id(entity_id: str) -> str:
    """`App checkout` for an app's ID, `Release rel-x` for a release's; `Entity` if malformed."""
    try:
        ref = ids.parse_entity_id(entity_id)
    except InvalidIdError:
        return "Entity"
    if ref.kind is EntityKind.RELEASE:
        return f"Release {ref.id}"
    return f"{KIND_TITLES[ref.kind]} {ref.name}"


def ratio(counts: StateCounts) -> str:
    """`succeeded/total` of a set of counts."""
    return f"{counts.succeeded}/{counts.total}"


def rollup_text(node: TreeNode) -> str:
    """The N/M roll-ups of a node: its direct children, then its apps, succeeded of total.

    A cluster has exactly one bundle, so its child roll-up would only repeat the bundle's state;
    bundles and clusters show apps only.
    """
    if isinstance(node, App):
        return ""
    apps = f"apps {ratio(node.rollup.apps)}"
    if node.kind in (EntityKind.CLUSTER, EntityKind.BUNDLE):
        return apps
    return f"{_CHILD_NOUNS[node.kind]} {ratio(node.rollup.children)} · {apps}"


def node_label(node: TreeNode, *, changed: bool = False) -> str:
    """An expander label (Streamlit Markdown): bold title, state badge, roll-ups, change mark."""
    parts = [f"**{md_escape(node_title(node))}**", badge(node.state)]
    rollup = rollup_text(node)
    if rollup:
        parts.append(rollup)
    if changed:
        parts.append(CHANGED_BADGE)
    return " · ".join(parts)


def as_utc(moment: datetime) -> datetime:
    """An aware time in UTC; naive times are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    """`2026-11-26 12:00:05 UTC`, or an em dash when unknown."""
    if moment is None:
        return MISSING
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_seconds(seconds: float) -> str:
    """A short duration: `4 s`, `2 min 05 s`, `3 h 07 min`, `2 d 4 h`."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def age_seconds(moment: datetime, now: datetime | None = None) -> float:
    """Seconds from `moment` to `now` (default: the current time), never negative."""
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (as_utc(current) - as_utc(moment)).total_seconds())


def format_duration(entity: Entity, now: datetime | None = None) -> str:
    """How long the entity ran (or has been running), or an em dash if it has not begun (no
    workflow yet, or a PENDING one: scheduled, or waiting for a worker)."""
    if entity.started_at is None or entity.state is EntityState.PENDING:
        return MISSING
    end = entity.finished_at if entity.state.is_terminal and entity.finished_at else now
    return format_seconds(age_seconds(entity.started_at, end))


def release_href(release_id: str) -> str:
    """A link to a release's page, relative so that it works under any base URL path."""
    return f"{RELEASE_URL_PATH}?{RELEASE_PARAM}={quote(release_id, safe='')}"


def entity_href(entity_id: str) -> str:
    """A link to any entity's page, relative so that it works under any base URL path."""
    return f"{ENTITY_URL_PATH}?{ENTITY_PARAM}={quote(entity_id, safe='')}"


def current_wave_text(current: int | None, total: int) -> str:
    """`2/5`, or an em dash before the first wave started."""
    return MISSING if current is None else f"{current}/{total}"


def is_release(entity: Entity) -> bool:
    """True for the root of a tree."""
    return isinstance(entity, Release) or entity.kind is EntityKind.RELEASE


def temporal_workflow_url(base_url: str, namespace: str, workflow_id: str) -> str | None:
    """The page of a workflow (every run of its ID) in Temporal's Web UI; None without a base."""
    base = base_url.strip().rstrip("/")
    if not base:
        return None
    return f"{base}/namespaces/{quote(namespace, safe='')}/workflows?query=" + quote(
        f"WorkflowId='{workflow_id}'", safe=""
    )


def attempt_text(entity: Entity) -> str:
    """`2 of 3`, `2` when the maximum is unknown, or an em dash before the first attempt."""
    if not entity.attempt:
        return MISSING
    if entity.max_attempts:
        return f"{entity.attempt} of {entity.max_attempts}"
    return str(entity.attempt)


def time_until(moment: datetime, now: datetime | None = None) -> str:
    """`in 4 min 10 s`, or `due now` once `moment` has come."""
    current = now if now is not None else datetime.now(UTC)
    wait = (as_utc(moment) - as_utc(current)).total_seconds()
    return f"in {format_seconds(wait)}" if wait > 0 else "due now"


def next_retry_text(entity: Entity, now: datetime | None = None) -> str:
    """`next attempt 12:10:05 UTC (in 4 min 10 s)` for a RETRYING entity that says when, else
    an empty string."""
    if entity.state is not EntityState.RETRYING or entity.next_retry_at is None:
        return ""
    when = time_until(entity.next_retry_at, now)
    return f"next attempt {as_utc(entity.next_retry_at):%H:%M:%S} UTC ({when})"


def scheduled_text(entity: Entity, now: datetime | None = None) -> str:
    """`scheduled to begin 2026-11-26 18:00:00 UTC (in 5 h 59 min)` for a PENDING entity with a
    planned start, else an empty string."""
    if entity.state is not EntityState.PENDING or entity.scheduled_for is None:
        return ""
    when = time_until(entity.scheduled_for, now)
    return f"scheduled to begin {format_time(entity.scheduled_for)} ({when})"
