"""The release page's timeline: a progress header and a Gantt chart of waves, or of one wave's
clusters, with the current time marked and the estimated remainder drawn lighter and dashed.

The chart is Vega-Lite through `st.altair_chart` (Streamlit bundles Vega: nothing is fetched).
It is drawn as SVG, whose marks carry their data as `aria-label`s, so a browser test can compare
what is drawn with the API's timeline. A big release stays readable: the wave view has one bar
per wave (10 at most in practice), and a wave's clusters are shown `CLUSTERS_PER_PAGE` at a time.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import altair as alt
import streamlit as st

from relmgr.errors import RelmgrError
from relmgr.models import (
    Entity,
    EntityState,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseSummary,
)
from relmgr.progress.history import compare_with_median
from relmgr.progress.timeline import (
    HISTORY_QUERY,
    EstimateStatus,
    ReleaseTimeline,
    TimelineBar,
    build_timeline,
    state_name,
)
from relmgr.ui.freshness import load
from relmgr.ui.present import as_utc, md_escape
from relmgr.ui.runtime import get_reader

CLUSTERS_PER_PAGE = 25
CHART_KEY = "timeline-chart"
VIEW_KEY = "timeline-view"
PAGE_KEY = "timeline-page"
ALL_WAVES = "All waves"
ACTUAL, ESTIMATE = "actual", "estimated"
# Vega colours close to Streamlit's palette names used for badges (`present.STATE_COLORS`).
STATE_HEX: dict[str, str] = {
    EntityState.PENDING.value: "#a3a8b8",
    EntityState.IN_PROGRESS.value: "#1c83e1",
    EntityState.RETRYING.value: "#ff8700",
    EntityState.SUCCEEDED.value: "#21c354",
    EntityState.FAILED.value: "#ff4b4b",
    EntityState.CANCELLED.value: "#803df5",
    "AWAITING_APPROVAL": "#ffbd45",
    "PAUSED": "#808495",
}
NOW_COLOUR = "#31333f"
# Below this spread the ETA and its range are given to the second.
FINE_RANGE = timedelta(minutes=3)
# Notes above the chart are wrapped at this many characters (Vega titles do not wrap): a line
# this long fits a 390 px phone screen (at 110, the end of each line was cut off there), and is a
# comfortable reading length on a wide screen.
NOTE_WIDTH = 64
# Times are shown in UTC, as everywhere in relmgr, whatever the browser's time zone.
_UTC_SECONDS: Final = "utcyearmonthdatehoursminutesseconds"


@dataclass(frozen=True, slots=True)
class ChartRow:
    """One bar segment: an entity's real span (`actual`) or its estimated remainder."""

    bar: str
    entity_id: str
    kind: str
    state: str
    part: str
    start: datetime
    end: datetime
    order: int


def _segments(bar: TimelineBar, label: str, order: int, now: datetime) -> list[ChartRow]:
    rows = []
    state = state_name(bar.state)
    kind = bar.kind.value
    if bar.started_at is not None:
        end = bar.finished_at or now
        rows.append(ChartRow(label, bar.id, kind, state, ACTUAL, bar.started_at, end, order))
    if bar.estimated_finish_at is not None and bar.finished_at is None:
        start = bar.estimated_start_at or (now if bar.started_at is not None else None)
        if start is not None and bar.estimated_finish_at > start:
            rows.append(
                ChartRow(
                    label, bar.id, kind, state, ESTIMATE, start, bar.estimated_finish_at, order
                )
            )
    return rows


def chart_rows(
    timeline: ReleaseTimeline, *, wave: int | None = None, page: int = 1
) -> list[ChartRow]:
    """The segments to draw: one bar per wave, or (`wave` given) that wave's clusters, one page."""
    now = timeline.now
    rows: list[ChartRow] = []
    if wave is None:
        for bar in timeline.waves:
            rows += _segments(bar, f"wave {bar.number}", bar.number, now)
        return rows
    clusters = timeline.waves[wave - 1].clusters
    first = (page - 1) * CLUSTERS_PER_PAGE
    for index, cluster in enumerate(clusters[first : first + CLUSTERS_PER_PAGE], start=first):
        rows += _segments(cluster, f"w{wave} {cluster.name}", index, now)
    return rows


def pages_of(timeline: ReleaseTimeline, wave: int) -> int:
    """How many pages of clusters a wave fills."""
    return max(1, -(-len(timeline.waves[wave - 1].clusters) // CLUSTERS_PER_PAGE))


def _clock(moment: datetime, *, seconds: bool = False) -> str:
    return as_utc(moment).strftime("%H:%M:%S" if seconds else "%H:%M")


def header_text(timeline: ReleaseTimeline) -> str:
    """ "wave 3 of 5 · 42 % · ETA 14:32 (13:58-15:05)", or what stands in for the ETA."""
    wave = timeline.current_wave or timeline.waves_total
    parts = [
        f"wave {wave} of {timeline.waves_total}",
        f"{timeline.release.percent_complete:g} %",
    ]
    if (
        timeline.estimate is EstimateStatus.ESTIMATED
        and timeline.estimated_finish_at is not None
        and timeline.estimated_finish_low is not None
        and timeline.estimated_finish_high is not None
    ):
        # A range narrower than a few minutes would read "14:32 (14:32-14:32)" in minutes.
        fine = timeline.estimated_finish_high - timeline.estimated_finish_low < FINE_RANGE
        low = _clock(timeline.estimated_finish_low, seconds=fine)
        high = _clock(timeline.estimated_finish_high, seconds=fine)
        parts.append(f"ETA {_clock(timeline.estimated_finish_at, seconds=fine)} ({low}-{high})")
    elif timeline.estimate is EstimateStatus.FINISHED and timeline.release.finished_at:
        parts.append(f"finished {_clock(timeline.release.finished_at)}")
    else:
        parts.append(timeline.estimate_basis.split(";")[0])
    return " · ".join(parts)


def bars_height(bars: int) -> int:
    """Pixels for the plot area of `bars` bars."""
    return max(60, 28 * bars)


def build_chart(
    rows: list[ChartRow], now: datetime, *, notes: Sequence[str] = ()
) -> alt.LayerChart:
    """Bars coloured by state, the estimated remainder light and dashed, a rule at `now`, and
    `notes` as lines of small grey text above it."""
    data = alt.InlineData(
        values=[
            {
                "bar": r.bar,
                "entity": r.entity_id,
                "state": r.state,
                "part": r.part,
                "start": as_utc(r.start).isoformat(),
                "end": as_utc(r.end).isoformat(),
                "order": r.order,
            }
            for r in rows
        ]
    )
    labels = list(dict.fromkeys(r.bar for r in sorted(rows, key=lambda r: r.order)))
    present = {r.state for r in rows}
    # Only the states drawn get a legend entry; each keeps its own colour.
    states = [s for s in STATE_HEX if s in present] + sorted(present - set(STATE_HEX))
    bars = (
        alt.Chart(data)
        .mark_bar(cornerRadius=2, strokeWidth=1.5)
        .encode(
            x=alt.X(
                "start:T",
                title="UTC",
                scale=alt.Scale(type="utc"),
                # Whole seconds at least: a young release's span otherwise gets ticks labelled
                # ".500" (half seconds).
                axis=alt.Axis(labelAngle=0, labelOverlap=True, tickMinStep=1000),
            ),
            x2="end:T",
            y=alt.Y("bar:N", sort=labels, title=None),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(domain=states, range=[STATE_HEX.get(s, "#808495") for s in states]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            opacity=alt.Opacity(
                "part:N", scale=alt.Scale(domain=[ACTUAL, ESTIMATE], range=[1.0, 0.3]), legend=None
            ),
            stroke=alt.Color(
                "state:N",
                scale=alt.Scale(domain=states, range=[STATE_HEX.get(s, "#808495") for s in states]),
                legend=None,
            ),
            strokeDash=alt.StrokeDash(
                "part:N",
                scale=alt.Scale(domain=[ACTUAL, ESTIMATE], range=[[1, 0], [4, 3]]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("entity:N", title="entity"),
                alt.Tooltip("state:N", title="state"),
                alt.Tooltip("part:N", title="part"),
                alt.Tooltip("start:T", title="from", timeUnit=_UTC_SECONDS, format="%H:%M:%S"),
                alt.Tooltip("end:T", title="to", timeUnit=_UTC_SECONDS, format="%H:%M:%S"),
            ],
        )
    )
    marker = (
        alt.Chart(alt.InlineData(values=[{"now": as_utc(now).isoformat()}]))
        .mark_rule(color=NOW_COLOUR, strokeWidth=2)
        .encode(
            x=alt.X("now:T", scale=alt.Scale(type="utc")),
            tooltip=[alt.Tooltip("now:T", title="now", timeUnit=_UTC_SECONDS, format="%H:%M:%S")],
        )
    )
    height = bars_height(len(labels))
    # SVG rather than canvas: the marks keep their data in the DOM (see the module docstring).
    title = alt.TitleParams(
        text=textwrap.wrap(notes[0], NOTE_WIDTH) if notes else "",
        subtitle=[line for note in notes[1:] for line in textwrap.wrap(note, NOTE_WIDTH)],
        anchor="start",
        fontSize=13,
        fontWeight="normal",
        color="#808495",
        subtitleFontSize=13,
        subtitleColor="#808495",
        limit=0,
    )
    return alt.LayerChart(
        layer=[bars, marker],
        height=height,
        title=title,
        usermeta={"embedOptions": {"renderer": "svg"}},
    )


def _read(release_id: str) -> tuple[ReleaseHierarchy, ReleaseListPage] | None:
    """The tree and the history, or the last known of each while Temporal is away (the tree is
    the one the page's tree shows: the same view and identity); None if either was never read."""
    reader = get_reader()
    tree = load(
        "release", release_id, ReleaseHierarchy, lambda: reader.get_release_hierarchy(release_id)
    )
    history = load(
        "timeline-history",
        HISTORY_QUERY.model_dump_json(),
        ReleaseListPage,
        lambda: reader.list_releases(HISTORY_QUERY),
    )
    if tree.value is None or history.value is None:
        return None
    return tree.value, history.value


def render_timeline(release_id: str) -> None:
    """The header line, the chart with its wave selector, how the estimate was made, and the
    comparison with history.

    Only a subheader, widgets and the chart: the notes go into the chart's title, so the page's
    own text elements keep their order. While Temporal is away the chart stays, drawn from the
    last data read (the tree's banner says how old), rather than vanish and come back with a new
    element at the next good read; with nothing ever read, or for a release that cannot be read
    (a malformed ID, not found), it draws nothing: the rest of the page reports why.
    """
    try:
        read = _read(release_id)
    except RelmgrError:
        return
    if read is None:
        return
    tree, history = read
    timeline = build_timeline(tree, history.items)
    st.subheader(md_escape(header_text(timeline)), anchor=False)
    summary = next((s for s in history.items if s.id == release_id), None)
    if summary is None:
        summary = _summary_of(tree)
    notes = [f"Times in UTC. Estimate: {timeline.estimate_basis}."]
    comparison = compare_with_median(summary, history.items, now=timeline.now)
    if comparison is not None:
        notes.append(comparison)
    render_chart(timeline, notes)


def _summary_of(tree: ReleaseHierarchy) -> ReleaseSummary:
    # A release not (yet) in the history page: its list row, from its tree.
    release = tree.release
    fields = {name: getattr(release, name) for name in Entity.model_fields}
    return ReleaseSummary(
        **fields,
        waves_total=len(release.waves),
        clusters_total=release.clusters_total,
        apps=release.rollup.apps,
    )


def render_chart(timeline: ReleaseTimeline, notes: list[str]) -> None:
    """The wave selector, the page selector for big waves, and the chart itself."""
    options = [ALL_WAVES, *(f"Wave {w.number} clusters" for w in timeline.waves)]
    columns = st.columns([3, 2, 5])
    with columns[0]:
        view = st.selectbox("Timeline of", options, key=VIEW_KEY, label_visibility="collapsed")
    wave = None if view in (None, ALL_WAVES) else options.index(view)
    page = 1
    if wave is not None and pages_of(timeline, wave) > 1:
        with columns[1]:
            total = pages_of(timeline, wave)
            page = int(
                st.number_input(
                    f"Page of {total}", min_value=1, max_value=total, step=1, key=PAGE_KEY
                )
            )
    rows = chart_rows(timeline, wave=wave, page=page)
    if rows:
        chart = build_chart(rows, timeline.now, notes=notes)
        # The whole chart's height: the bars, and the notes, legend and axis around them.
        lines = sum(len(textwrap.wrap(n, NOTE_WIDTH)) for n in notes)
        height = bars_height(len({r.bar for r in rows})) + 160 + 18 * lines
        st.altair_chart(chart, width="stretch", height=height, key=CHART_KEY)
