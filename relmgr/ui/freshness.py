"""Reading with a stale fallback: the last good data stays on screen when Temporal goes away.

Every data view reads through `load`. When the read fails with `TemporalUnavailableError`, the view
gets the last good result instead: the one the reader attached to the error (`last_known`) or,
failing that, the one this session last showed for the same view. `render_status` then says how
old the data is: a caption on every refresh ("Updated 2 s ago"), or, while Temporal is away, a
banner with the age of what is shown and a retry button. The next successful read clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import streamlit as st

from relmgr.errors import TemporalUnavailableError
from relmgr.models import EntityDetail, ReleaseHierarchy, ReleaseListPage
from relmgr.ui.present import age_seconds, as_utc, format_seconds, md_escape

Readable = TypeVar("Readable", ReleaseListPage, ReleaseHierarchy, EntityDetail)

_LAST_GOOD = "relmgr-last-good"


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[Readable]):
    """What a view shows: the data (None if there never was any), when it was read, and the
    error that made it stale (None while fresh)."""

    value: Readable | None
    read_at: datetime | None
    problem: TemporalUnavailableError | None = None

    @property
    def stale(self) -> bool:
        """True while the data on screen is not the answer of this refresh."""
        return self.problem is not None


def _remembered(view: str, identity: str, kind: type[Readable]) -> Readable | None:
    slots = st.session_state.get(_LAST_GOOD)
    if not isinstance(slots, dict):
        return None
    stored = slots.get(view)
    if not isinstance(stored, tuple) or stored[0] != identity or not isinstance(stored[1], kind):
        return None
    return stored[1]


def _remember(view: str, identity: str, value: Readable) -> None:
    # One slot per view: a stale fallback is only useful for what the view shows right now.
    slots = st.session_state.setdefault(_LAST_GOOD, {})
    slots[view] = (identity, value)


def load(
    view: str, identity: str, kind: type[Readable], read: Callable[[], Readable]
) -> Snapshot[Readable]:
    """Read, or fall back to the last good `kind` for this view and identity (a query, an ID).

    `InvalidIdError`, `NotFoundError` and the other answers that are not about availability
    propagate: they are the answer, not a reason to show old data.
    """
    try:
        value = read()
    except TemporalUnavailableError as exc:
        candidates = [
            v
            for v in (
                exc.last_known if isinstance(exc.last_known, kind) else None,
                _remembered(view, identity, kind),
            )
            if v is not None
        ]
        newest = max(candidates, key=lambda v: v.read_at) if candidates else None
        read_at = newest.read_at if newest is not None else exc.last_success_at
        return Snapshot(value=newest, read_at=read_at, problem=exc)
    _remember(view, identity, value)
    return Snapshot(value=value, read_at=value.read_at)


def unavailable_text(snapshot: Snapshot[Readable], now: datetime | None = None) -> str:
    """The banner while Temporal is away (plain text)."""
    if snapshot.value is None or snapshot.read_at is None:
        return "Temporal is unavailable — no data has been read yet."
    age = format_seconds(age_seconds(snapshot.read_at, now))
    return f"Temporal is unavailable — showing data from {age} ago."


def updated_text(read_at: datetime, interval: float | None, now: datetime | None = None) -> str:
    """The caption under fresh data (plain text). Paused, an age would only count up while the
    data stays as it was, so the time the data is from is given instead."""
    if interval is None:
        return f"Auto-refresh paused · data from {as_utc(read_at):%H:%M:%S} UTC"
    age = format_seconds(age_seconds(read_at, now))
    return f"Updated {age} ago · refreshing every {interval:g} s"


def render_status(snapshot: Snapshot[Readable], *, view: str, interval: float | None) -> None:
    """The data's age, or the unavailability banner with the age of what is shown and a retry."""
    if snapshot.problem is None:
        if snapshot.read_at is None:
            return
        if interval is not None:
            st.caption(updated_text(snapshot.read_at, interval))
            return
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(updated_text(snapshot.read_at, interval))
        # A click reruns the fragment this button is in, which is a fresh read.
        right.button("Refresh now", key=f"{view}-refresh-now", icon=":material/refresh:")
        return
    banner = unavailable_text(snapshot)
    if snapshot.value is None:
        st.error(banner, icon=":material/cloud_off:")
    else:
        st.warning(banner, icon=":material/cloud_off:")
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(
        f":orange-badge[stale] {md_escape(snapshot.problem.message)}. "
        "The page recovers by itself as soon as Temporal answers again."
    )
    # A click reruns the fragment this button is in, which is a fresh read.
    right.button("Retry now", key=f"{view}-retry", icon=":material/refresh:")
