"""The history page: releases over time, durations and failure rate by shape, the slowest waves
and clusters of recent releases; filters by time range and state; a chart, a table and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

import altair as alt
import streamlit as st

from relmgr.errors import RelmgrError
from relmgr.models import (
    MAX_PAGE_SIZE,
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.progress.history import (
    HistoryRow,
    SlowEntity,
    filter_rows,
    history_rows,
    shape_stats,
    slowest,
)
from relmgr.ui.present import md_escape, release_href
from relmgr.ui.runtime import get_reader
from relmgr.ui.timeline_chart import STATE_HEX

RANGE_KEY = "history-range"
STATES_KEY = "history-states"
SLOWEST_KEY = "history-slowest"
CSV_KEY = "history-csv"
CHART_KEY = "history-chart"
DEFAULT_DAYS = 30
# The history reads at most this many releases (newest first), in pages of MAX_PAGE_SIZE.
MAX_RELEASES = 2_000
# The slowest waves and clusters are looked for in this many recent finished releases.
RECENT_TREES = 5
CSV_COLUMNS = (
    "id",
    "state",
    "started_at",
    "finished_at",
    "duration_seconds",
    "waves",
    "clusters",
    "apps",
    "shape",
)


def read_summaries() -> list[ReleaseSummary]:
    """The newest `MAX_RELEASES` releases of the reader's list."""
    reader = get_reader()
    query = ReleaseQuery(page_size=MAX_PAGE_SIZE)
    first = reader.list_releases(query)
    found = {s.id: s for s in first.items}
    for number in range(2, min(first.pages, MAX_RELEASES // MAX_PAGE_SIZE) + 1):
        page = reader.list_releases(query.model_copy(update={"page": number}))
        for summary in page.items:
            found.setdefault(summary.id, summary)
    return list(found.values())


def rows_csv(rows: list[HistoryRow]) -> str:
    """The rows as CSV, one line per release, the columns of the table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.id,
                row.state.value,
                row.started_at.isoformat() if row.started_at else "",
                row.finished_at.isoformat() if row.finished_at else "",
                "" if row.duration_seconds is None else f"{row.duration_seconds:g}",
                row.waves,
                row.clusters,
                row.apps,
                row.shape,
            ]
        )
    return out.getvalue()


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def history_chart(rows: list[HistoryRow]) -> alt.Chart:
    """One point per release: started (x), minutes taken (y), coloured by outcome."""
    values = [
        {
            "release": r.id,
            "state": r.state.value,
            "started": r.started_at.isoformat(),
            "minutes": _minutes(r.duration_seconds),
            "shape": r.shape,
        }
        for r in rows
        if r.started_at is not None and r.duration_seconds is not None
    ]
    states = list(STATE_HEX)
    chart: alt.Chart = (
        alt.Chart(alt.InlineData(values=values))
        .mark_circle(size=80, opacity=0.85)
        .encode(
            x=alt.X("started:T", title="started (UTC)"),
            y=alt.Y("minutes:Q", title="duration (min)"),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(domain=states, range=[STATE_HEX[s] for s in states]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["release:N", "state:N", "shape:N", "minutes:Q", "started:T"],
        )
        .properties(height=260, usermeta={"embedOptions": {"renderer": "svg"}})
    )
    return chart


def _table(rows: list[HistoryRow]) -> list[dict[str, object]]:
    return [
        {
            "Release": release_href(r.id),
            "State": r.state.value,
            "Started": r.started_at,
            "Finished": r.finished_at,
            "Duration (min)": _minutes(r.duration_seconds),
            "Shape": r.shape,
        }
        for r in rows
    ]


def _slow_table(entities: list[SlowEntity]) -> list[dict[str, object]]:
    return [
        {
            "Release": e.release_id,
            "Entity": e.id,
            "State": e.state.value,
            "Duration (min)": _minutes(e.duration_seconds),
        }
        for e in entities
    ]


def _filters() -> tuple[datetime, datetime, list[EntityState]]:
    today = datetime.now(UTC).date()
    columns = st.columns([2, 3])
    with columns[0]:
        picked = st.date_input(
            "Started between (UTC)",
            value=(today - timedelta(days=DEFAULT_DAYS), today),
            key=RANGE_KEY,
        )
    with columns[1]:
        states = st.multiselect(
            "States", list(EntityState), key=STATES_KEY, placeholder="All states"
        )
    days = [d for d in (picked if isinstance(picked, tuple) else (picked,)) if isinstance(d, date)]
    first = days[0] if days else today - timedelta(days=DEFAULT_DAYS)
    last = days[-1] if days else today
    since = datetime.combine(first, time.min, tzinfo=UTC)
    until = datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=1)
    return since, until, list(states)


def render_history() -> None:
    """The whole page below its title."""
    since, until, states = _filters()
    try:
        summaries = read_summaries()
    except RelmgrError as exc:
        st.error(
            md_escape(f"Cannot read the release history: {exc.message}"), icon=":material/error:"
        )
        return
    rows = filter_rows(history_rows(summaries), since=since, until=until, states=states)
    if not rows:
        which = ", ".join(s.value for s in states) if states else "any state"
        st.info(
            f"No releases ({which}) started between {since:%Y-%m-%d} and "
            f"{until - timedelta(days=1):%Y-%m-%d}.",
            icon=":material/history:",
        )
        return
    finished = [r for r in rows if r.state.is_terminal]
    failed = [r for r in finished if r.state is not EntityState.SUCCEEDED]
    metrics = st.columns(3)
    metrics[0].metric("Releases", len(rows))
    metrics[1].metric("Finished", len(finished))
    rate = f"{len(failed) / len(finished):.0%}" if finished else "—"
    metrics[2].metric("Failure rate", rate, help="Failed or cancelled, of the finished ones.")

    st.altair_chart(history_chart(rows), width="stretch", key=CHART_KEY)
    st.subheader("Releases", anchor=False)
    st.dataframe(
        _table(rows),
        hide_index=True,
        column_config={"Release": st.column_config.LinkColumn(display_text=r"release=(.*)$")},
    )
    st.download_button(
        "Download CSV",
        rows_csv(rows),
        file_name="release-history.csv",
        mime="text/csv",
        key=CSV_KEY,
        icon=":material/download:",
    )

    st.subheader("Duration by shape", anchor=False)
    st.dataframe(
        [
            {
                "Shape": s.shape,
                "Finished": s.releases,
                "Median (min)": _minutes(s.median_seconds),
                "p90 (min)": _minutes(s.p90_seconds),
                "Failure rate": f"{s.failure_rate:.0%}",
            }
            for s in shape_stats(rows)
        ],
        hide_index=True,
    )

    st.subheader("Slowest waves and clusters", anchor=False)
    if not st.toggle(f"Look in the {RECENT_TREES} most recent finished releases", key=SLOWEST_KEY):
        return
    recent = [r for r in rows if r.state.is_terminal][:RECENT_TREES]
    trees: list[ReleaseHierarchy] = []
    reader = get_reader()
    for row in recent:
        try:
            trees.append(reader.get_release_hierarchy(row.id))
        except RelmgrError as exc:
            st.warning(md_escape(f"{row.id}: {exc.message}"))
    columns = st.columns(2)
    with columns[0]:
        st.caption("Waves")
        st.dataframe(_slow_table(slowest(trees, kind=EntityKind.WAVE)), hide_index=True)
    with columns[1]:
        st.caption("Clusters")
        st.dataframe(_slow_table(slowest(trees, kind=EntityKind.CLUSTER)), hide_index=True)
