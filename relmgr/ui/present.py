"""Pure formatting for the dashboard: state badges, roll-up labels, times, ages, links, escaping.

Nothing here calls Streamlit; every function returns text (Streamlit Markdown where it says so),
so tests can check labels exactly. Any text that did not come from this module (an ID, an error
message, a name from Temporal) goes through `md_escape` before it is put into Markdown.
"""

from __future__ import annotations

import re
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

# One colour per state, for Markdown badges and table tags alike: Streamlit's palette names,
# which adapt to the light and the dark theme by themselves.
STATE_COLORS: dict[EntityState, BadgeColor] = {
    EntityState.PENDING: "gray",
    EntityState.IN_PROGRESS: "blue",
    EntityState.RETRYING: "orange",
    EntityState.AWAITING_APPROVAL: "yellow",
    EntityState.PAUSED: "gray",
    EntityState.SUCCEEDED: "green",
    EntityState.FAILED: "red",
    EntityState.CANCELLED: "violet",
}
STATE_ICONS: dict[EntityState, str] = {
    EntityState.PENDING: ":material/schedule:",
    EntityState.IN_PROGRESS: ":material/autorenew:",
    EntityState.RETRYING: ":material/replay:",
    EntityState.AWAITING_APPROVAL: ":material/approval:",
    EntityState.PAUSED: ":material/pause_circle:",
    EntityState.SUCCEEDED: ":material/check_circle:",
    EntityState.FAILED: ":material/error:",
    EntityState.CANCELLED: ":material/cancel:",
}
STATE_TITLES: dict[EntityState, str] = {
    EntityState.PENDING: "Pending",
    EntityState.IN_PROGRESS: "In progress",
    EntityState.RETRYING: "Retrying",
    EntityState.AWAITING_APPROVAL: "Awaiting approval",
    EntityState.PAUSED: "Paused",
    EntityState.SUCCEEDED: "Succeeded",
    EntityState.FAILED: "Failed",
    EntityState.CANCELLED: "Cancelled",
}
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
    """How long the entity ran (or has been running), or an em dash if it never started."""
    if entity.started_at is None:
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
