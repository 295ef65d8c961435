"""The release page's timeline: header text, chart segments, cluster pages, and the page itself."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from relmgr.progress.timeline import build_timeline
from relmgr.testing.factories import make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.timeline_chart import (
    ACTUAL,
    ESTIMATE,
    VIEW_KEY,
    chart_rows,
    header_text,
    pages_of,
)
from tests.progress.test_timeline import NOW, T0, running_release, timed_tree
from tests.ui.conftest import open_page

PAGE = "pages/release.py"


def test_header_says_wave_percent_and_eta_with_its_range() -> None:
    """Wave 2 of 3, 13 of 24 apps, ETA now + 660 s in 450-900 s (NOW is 13:00 UTC)."""
    timeline = build_timeline(running_release())
    assert header_text(timeline) == "wave 2 of 3 · 54.2 % · ETA 13:11 (13:07-13:15)"


def test_a_narrow_range_is_given_to_the_second() -> None:
    """Under three minutes between low and high, minutes alone would repeat one time thrice."""
    timeline = build_timeline(running_release())
    narrow = timeline.model_copy(
        update={
            "estimated_finish_at": NOW + timedelta(seconds=75),
            "estimated_finish_low": NOW + timedelta(seconds=61),
            "estimated_finish_high": NOW + timedelta(seconds=119),
        }
    )
    assert header_text(narrow) == "wave 2 of 3 · 54.2 % · ETA 13:01:15 (13:01:01-13:01:59)"


def test_header_without_an_estimate_says_why() -> None:
    """No finished cluster and no history: the header says so instead of a time."""
    tree = timed_tree("new", {"": (running_release().release.state, 3500, None)})
    assert header_text(build_timeline(tree)) == "wave 1 of 3 · 0 % · no estimate yet: " + (
        "no cluster has finished and no earlier release has this shape"
    )


def test_wave_segments_are_real_spans_then_estimated_remainders() -> None:
    """A finished wave is one real bar; the running one real up to now then estimated; a
    pending one only estimated, starting where the running one is expected to end."""
    rows = chart_rows(build_timeline(running_release()))
    assert [(r.bar, r.part, r.start, r.end) for r in rows] == [
        ("wave 1", ACTUAL, T0, T0 + timedelta(seconds=480)),
        ("wave 2", ACTUAL, T0 + timedelta(seconds=500), NOW),
        ("wave 2", ESTIMATE, NOW, NOW + timedelta(seconds=220)),
        ("wave 3", ESTIMATE, NOW + timedelta(seconds=220), NOW + timedelta(seconds=660)),
    ]
    assert [r.state for r in rows] == ["SUCCEEDED", "IN_PROGRESS", "IN_PROGRESS", "PENDING"]


def test_a_wave_of_100_clusters_is_drawn_25_at_a_time() -> None:
    """10 waves x 100 clusters: the wave view has 10 bars, a wave's clusters fill 4 pages."""
    tree = make_hierarchy("big", waves=10, clusters=100, apps=1)
    timeline = build_timeline(tree)
    assert len({r.bar for r in chart_rows(timeline)}) == 10
    assert pages_of(timeline, 3) == 4
    page = chart_rows(timeline, wave=3, page=4)
    assert [r.bar for r in page][:2] == ["w3 c76", "w3 c77"]
    assert len({r.bar for r in page}) == 25


def _bar_values(at: AppTest) -> list[dict[str, Any]]:
    """The rows behind the chart's bars (Streamlit ships inline data as a named Arrow dataset)."""
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    proto = charts[0].proto
    name = json.loads(proto.spec)["layer"][0]["data"]["name"]
    (dataset,) = [d for d in proto.datasets if d.name == name]
    rows: list[dict[str, Any]] = pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
    return rows


def test_release_page_draws_the_header_and_the_chart(app: AppTest, fake: FakeReader) -> None:
    """The header line and a Vega-Lite chart whose bars are the timeline's waves; the selector
    switches it to one wave's clusters."""
    fake.put(running_release())
    at = open_page(app, PAGE, release="rel-run")
    assert not at.exception
    headers = [h.value for h in at.subheader if h.value.startswith("wave ")]
    assert len(headers) == 1
    assert re.fullmatch(
        r"wave 2 of 3 · 54\.2 % · ETA \d\d\\:\d\d \\\(\d\d\\:\d\d-\d\d\\:\d\d\\\)",
        headers[0],
    )
    title = json.loads(at.get("vega_lite_chart")[0].proto.spec)["title"]
    assert " ".join(title["text"]).startswith(
        "Times in UTC. Estimate: 6 apps left on the critical path at the median pace of 2 "
        "finished clusters of this release"
    )
    values = _bar_values(at)
    assert [(v["bar"], v["part"]) for v in values] == [
        ("wave 1", "actual"),
        ("wave 2", "actual"),
        ("wave 2", "estimated"),
        ("wave 3", "estimated"),
    ]
    at.selectbox(key=VIEW_KEY).set_value("Wave 1 clusters").run()
    values = _bar_values(at)
    assert [(v["entity"], v["start"], v["end"]) for v in values] == [
        ("rel-run.wave-1.cluster-c1", "2026-11-26T12:00:00+00:00", "2026-11-26T12:06:40+00:00"),
        ("rel-run.wave-1.cluster-c2", "2026-11-26T12:00:00+00:00", "2026-11-26T12:08:00+00:00"),
    ]


def test_the_chart_stays_while_temporal_is_away(app: AppTest, fake: FakeReader) -> None:
    """Temporal goes away after the page was drawn: the next refresh draws the same chart from
    the last data read (the tree's banner says it is stale), rather than dropping it."""
    fake.put(running_release())
    at = open_page(app, PAGE, release="rel-run")
    drawn = _bar_values(at)
    fake.available = False
    at = at.run()
    assert not at.exception
    assert at.warning[0].value.startswith("Temporal is unavailable — showing data")
    assert [(v["bar"], v["part"]) for v in _bar_values(at)] == [
        (v["bar"], v["part"]) for v in drawn
    ]
    assert len([h for h in at.subheader if h.value.startswith("wave ")]) == 1
