"""History across releases: rows, filters, statistics by shape, slowest entities, comparisons."""

from __future__ import annotations

from datetime import timedelta

from relmgr.models import EntityKind, EntityState, ReleaseSummary
from relmgr.progress.history import (
    compare_with_median,
    filter_rows,
    history_rows,
    percentile,
    shape_stats,
    slowest,
)
from relmgr.testing.factories import T0
from tests.progress.test_timeline import NOW, running_release, summary

F = EntityState.FAILED


def releases() -> list[ReleaseSummary]:
    """Five 2x4x12 releases (100-500 s, one failed, one a day older), one 3x6x24 release and
    one 2x6x12 release (as many waves and apps as the five, but more clusters)."""
    return [
        summary("a", 100, days_ago=1),
        summary("b", 200, days_ago=2),
        summary("c", 300, days_ago=3),
        summary("d", 400, days_ago=4, state=F),
        summary("e", 500, days_ago=5),
        summary("big", 900, days_ago=2, waves=3, clusters=6, apps=24),
        summary("wide", 50, days_ago=6, clusters=6),
    ]


def test_rows_are_newest_first_with_durations_and_shapes() -> None:
    """Each row carries its duration (finish - start) and shape: waves, clusters, apps."""
    rows = history_rows(releases())
    assert [r.id for r in rows] == [
        "rel-a",
        "rel-b",
        "rel-big",
        "rel-c",
        "rel-d",
        "rel-e",
        "rel-wide",
    ]
    assert rows[0].duration_seconds == 100
    assert (rows[2].waves, rows[2].clusters, rows[2].apps) == (3, 6, 24)
    assert rows[2].shape == "3 waves x 6 clusters x 24 apps"


def test_filters_by_time_range_and_state() -> None:
    """[since, until) on the start time, and any of the given states."""
    rows = history_rows(releases())
    window = filter_rows(rows, since=T0 - timedelta(days=3), until=T0 - timedelta(days=1))
    assert [r.id for r in window] == ["rel-b", "rel-big", "rel-c"]
    assert [r.id for r in filter_rows(rows, states=[F])] == ["rel-d"]
    assert filter_rows(rows, since=T0) == []


def test_shape_stats_give_median_p90_and_failure_rate() -> None:
    """2x4x12: durations of the successes 100, 200, 300, 500 -> median 250, p90 500; 1 of 5
    failed. The 2x6x12 release, with as many waves and apps, is a shape of its own."""
    stats = {s.shape: s for s in shape_stats(history_rows(releases()))}
    assert list(stats) == [
        "2 waves x 4 clusters x 12 apps",
        "2 waves x 6 clusters x 12 apps",
        "3 waves x 6 clusters x 24 apps",
    ]
    small = stats["2 waves x 4 clusters x 12 apps"]
    assert (small.releases, small.succeeded, small.failed) == (5, 4, 1)
    assert (small.median_seconds, small.p90_seconds, small.failure_rate) == (250, 500, 0.2)
    assert stats["3 waves x 6 clusters x 24 apps"].median_seconds == 900
    assert stats["2 waves x 6 clusters x 12 apps"].median_seconds == 50
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9


def test_slowest_waves_and_clusters_across_trees() -> None:
    """The finished waves and clusters, slowest first; running ones have no duration yet."""
    clusters = slowest([running_release()], kind=EntityKind.CLUSTER, limit=5)
    assert [(c.id, c.duration_seconds) for c in clusters] == [
        ("rel-run.wave-1.cluster-c2", 480),
        ("rel-run.wave-1.cluster-c1", 400),
    ]
    waves = slowest([running_release()], kind=EntityKind.WAVE)
    assert [(w.name, w.duration_seconds) for w in waves] == [("1", 480)]


def test_this_release_against_the_median_of_its_shape() -> None:
    """A 2x4x12 release running for 600 s against the 4 successes of its shape (median 250 s;
    the 2x6x12 one is another shape); a finished one of 150 s against the newest two (100 and
    200 s)."""
    running = summary("now", None, state=EntityState.IN_PROGRESS, days_ago=0)
    text = compare_with_median(running, releases(), now=T0 + timedelta(seconds=600))
    assert text == (
        "This release has run for 10 min so far; the median of the last 4 releases of its shape "
        "(2 waves x 4 clusters x 12 apps) is 4.2 min."
    )
    finished = summary("now", 150, days_ago=0)
    newest_two = compare_with_median(finished, releases(), now=NOW, last=2)
    assert newest_two == (
        "This release took 2.5 min; the median of the last 2 releases of its shape "
        "(2 waves x 4 clusters x 12 apps) is 2.5 min (100% of it)."
    )
    lonely = summary("odd", 10, waves=7)
    assert compare_with_median(lonely, releases(), now=NOW) is None
