"""The history page: filters, metrics, chart, table, CSV, shapes, slowest entities, no data."""

from __future__ import annotations

import csv
import io
from datetime import date

from streamlit.testing.v1 import AppTest

from relmgr.models import EntityState, ReleaseHierarchy
from relmgr.progress.history import history_rows
from relmgr.reader.listing import summary_of
from relmgr.testing.factories import make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.history_view import CSV_KEY, RANGE_KEY, SLOWEST_KEY, STATES_KEY, rows_csv
from tests.api.test_timeline import finished_same_shape
from tests.ui.conftest import demo_tree, open_page


def demo_trees() -> list[ReleaseHierarchy]:
    """The trees the UI's fake reader starts with."""
    return [
        demo_tree(),
        make_hierarchy("done-one"),
        make_hierarchy("done-two", default=EntityState.FAILED),
    ]


PAGE = "pages/history.py"


def _page(app: AppTest, fake: FakeReader) -> AppTest:
    fake.put(finished_same_shape())  # rel-prev: succeeded in 2,400 s
    return open_page(app, PAGE)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_history_lists_every_release_with_metrics_chart_and_csv(
    app: AppTest, fake: FakeReader
) -> None:
    """Four releases (one running, two succeeded, one failed): 1 of 3 finished failed; the CSV
    holds the table's rows, newest start first."""
    at = _page(app, fake)
    assert not at.exception
    assert [t.value for t in at.title] == ["History"]
    assert _metrics(at) == {"Releases": "4", "Finished": "3", "Failure rate": "33%"}
    assert len(at.get("vega_lite_chart")) == 1
    table = at.dataframe[0].value
    assert list(table["State"]) == ["IN_PROGRESS", "SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert list(table["Release"].str.split("=").str[1]) == [
        "rel-demo",
        "rel-done-one",
        "rel-done-two",
        "rel-prev",
    ]
    assert sorted(table["Release"])[0].endswith("release=rel-demo")
    prev = table[table["Release"].str.endswith("rel-prev")]
    assert list(prev["Duration (min)"]) == [40.0]
    assert [b.label for b in at.get("download_button") if b.key == CSV_KEY] == ["Download CSV"]
    trees = [*demo_trees(), finished_same_shape()]
    csv_text = rows_csv(history_rows(summary_of(t) for t in trees))
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0] == [
        "id",
        "state",
        "started_at",
        "finished_at",
        "duration_seconds",
        "waves",
        "clusters",
        "apps",
        "shape",
    ]
    assert [
        "rel-prev",
        "SUCCEEDED",
        "2026-11-26T09:30:00+00:00",
        "2026-11-26T10:10:00+00:00",
        "2400",
        "3",
        "6",
        "24",
        "3 waves x 6 clusters x 24 apps",
    ] in rows
    assert len(rows) == 1 + 4


def test_shape_table_gives_median_p90_and_failure_rate(app: AppTest, fake: FakeReader) -> None:
    """Per shape over finished releases: the 3x24 one took 40 min; 2x8 has 1 of 2 failed."""
    at = _page(app, fake)
    shapes = at.dataframe[1].value
    by_shape = {row["Shape"]: row for row in shapes.to_dict("records")}
    assert by_shape["3 waves x 6 clusters x 24 apps"]["Median (min)"] == 40.0
    assert by_shape["3 waves x 6 clusters x 24 apps"]["p90 (min)"] == 40.0
    assert by_shape["2 waves x 4 clusters x 8 apps"]["Failure rate"] == "50%"
    assert by_shape["2 waves x 4 clusters x 8 apps"]["Finished"] == 2


def test_state_filter_keeps_only_those_states(app: AppTest, fake: FakeReader) -> None:
    """Only FAILED: one release left, failure rate 100 %."""
    at = _page(app, fake)
    at.multiselect(key=STATES_KEY).select(EntityState.FAILED).run()
    assert list(at.dataframe[0].value["State"]) == ["FAILED"]
    assert _metrics(at)["Failure rate"] == "100%"


def test_a_range_without_releases_says_so(app: AppTest, fake: FakeReader) -> None:
    """A range before every release: no table, a sentence naming the range."""
    at = _page(app, fake)
    at.date_input(key=RANGE_KEY).set_value((date(2020, 1, 1), date(2020, 1, 31))).run()
    assert not at.exception
    assert len(at.dataframe) == 0
    assert [i.value for i in at.info] == [
        "No releases (any state) started between 2020-01-01 and 2020-01-31."
    ]


def test_slowest_waves_and_clusters_of_recent_releases(app: AppTest, fake: FakeReader) -> None:
    """Turned on, it reads the recent finished trees and lists the slowest first."""
    at = _page(app, fake)
    at.toggle(key=SLOWEST_KEY).set_value(True).run()
    waves, clusters = at.dataframe[2].value, at.dataframe[3].value
    assert list(waves["Entity"])[:3] == ["rel-prev.wave-1", "rel-prev.wave-2", "rel-prev.wave-3"]
    assert list(waves["Duration (min)"])[:3] == [13.33] * 3  # 800 s each
    assert clusters["Duration (min)"].iloc[0] == 13.33


def test_temporal_unavailable_shows_an_error_not_a_traceback(
    app: AppTest, fake: FakeReader
) -> None:
    """Reads failing: one error line naming the cause."""
    fake.available = False
    at = open_page(app, PAGE)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Cannot read the release history\\: Temporal is unavailable \\(fake reader switched off\\)"
    ]
