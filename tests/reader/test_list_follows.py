"""The release list follows its running releases: list counts are tree counts, at one delta call."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from relmgr.models import EntityState, ReleaseQuery, StateCounts
from relmgr.reader.listing import summary_of
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.temporal.contract import EntityMemo
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import T0, FakeClock, FakeVisibility, Status, workflow_info

POLICY = CachePolicy(
    refresh_seconds=1.5, delta_window_seconds=10, resync_seconds=300, watch_ttl_seconds=60
)
APP = "rel-run.wave-1.cluster-c1.bundle-core.app-a1"
OTHER_APP = "rel-run.wave-1.cluster-c2.bundle-core.app-a2"
# The final memo of a closed release (its tree would say the same; the list never builds it).
FINAL = StateCounts(succeeded=2, failed=1, cancelled=1)


def setup() -> tuple[SnapshotCache, FakeVisibility, FakeClock]:
    """A running release (memo: 4 in progress) and a closed one, rel-done."""
    source = FakeVisibility()
    source.add_release("rel-run", make_plan(waves=1, clusters=2, apps=2))
    source.put(
        workflow_info(
            "rel-done",
            EntityState.FAILED,
            status=Status.WORKFLOW_EXECUTION_STATUS_FAILED,
            started_at=T0 - timedelta(hours=1),
            changed_at=T0 - timedelta(minutes=50),
            closed_at=T0 - timedelta(minutes=50),
            memo=EntityMemo(waves_total=1, current_wave=1, apps=FINAL),
        )
    )
    clock = FakeClock(T0 + timedelta(minutes=5))
    return SnapshotCache(source, POLICY, clock), source, clock


async def _listed(cache: SnapshotCache) -> dict[str, object]:
    page = await cache.release_page(ReleaseQuery())
    return {r.id: r for r in page.items}


async def test_a_cold_list_loads_every_running_release_in_one_more_call() -> None:
    """The list call, then one call for all running releases; closed ones keep their memo."""
    cache, source, clock = setup()
    source.change(APP, EntityState.RETRYING, clock.now(), attempt=3, last_error="boom")
    listed = await _listed(cache)
    assert source.queries == ["RelmgrKind = 'release'", "RelmgrReleaseId IN ('rel-run')"]
    assert listed["rel-run"] == summary_of(await cache.hierarchy("rel-run"))
    running = await cache.hierarchy("rel-run")
    assert running.release.rollup.apps == StateCounts(in_progress=3, retrying=1)
    assert listed["rel-done"].apps == FINAL  # type: ignore[attr-defined]
    assert cache.watched_releases() == ["rel-run"]
    assert len(source.queries) == 2  # the tree read above came from the followed snapshot


async def test_list_counts_and_last_change_follow_the_tree_within_one_cycle_of_one_call() -> None:
    """An app retrying, another succeeding: the next cycle (one delta call) shows it in the list."""
    cache, source, clock = setup()
    before = await _listed(cache)
    assert before["rel-run"].apps == StateCounts(in_progress=4)  # type: ignore[attr-defined]
    clock.advance(1.5)
    changed_at = clock.now()
    source.change(APP, EntityState.RETRYING, changed_at, attempt=2, last_error="boom")
    source.change(OTHER_APP, EntityState.SUCCEEDED, changed_at)
    source.queries.clear()
    clock.advance(0.1)
    report = await cache.refresh_once()
    assert len(source.queries) == 1
    assert report.list_queries == 1
    summary = (await _listed(cache))["rel-run"]
    tree = await cache.hierarchy("rel-run")
    assert summary.apps == StateCounts(in_progress=2, retrying=1, succeeded=1)  # type: ignore[attr-defined]
    assert summary == summary_of(tree)
    assert summary.last_changed_at == changed_at  # type: ignore[attr-defined]
    page = await cache.release_page(ReleaseQuery())
    assert page.revision != ""


async def test_a_release_started_later_is_followed_with_one_call_for_it() -> None:
    """A release new on the list is loaded in the cycle that sees it; later cycles cost one call."""
    cache, source, clock = setup()
    await _listed(cache)
    clock.advance(1.5)
    source.add_release("rel-new", make_plan(1, 1, 1), started_at=clock.now())
    source.queries.clear()
    report = await cache.refresh_once()
    assert report.followed == ("rel-new",)
    assert report.list_queries == 2
    assert source.queries[1] == "RelmgrReleaseId IN ('rel-new')"
    listed = await _listed(cache)
    assert listed["rel-new"].apps == StateCounts(in_progress=1)  # type: ignore[attr-defined]
    clock.advance(1.5)
    source.queries.clear()
    assert (await cache.refresh_once()).list_queries == 1
    assert "'rel-new', 'rel-run'" in source.queries[0]


async def test_fifty_running_releases_cost_one_call_a_cycle_whatever_the_readers() -> None:
    """After the cold load (2 calls), each cycle is one delta call, read by 1 or 100 viewers."""
    source = FakeVisibility()
    for number in range(50):
        source.add_release(f"rel-r{number}", make_plan(1, 2, 2))
    clock = FakeClock(T0 + timedelta(minutes=5))
    cache = SnapshotCache(source, POLICY, clock)
    await cache.release_page(ReleaseQuery())
    assert len(source.queries) == 2
    for viewers in (1, 100):
        source.queries.clear()
        clock.advance(1.5)
        source.change(
            f"rel-r7.wave-1.cluster-c1.bundle-core.app-a{viewers % 2 + 1}",
            EntityState.SUCCEEDED,
            clock.now(),
        )
        await cache.refresh_once()
        pages = [await cache.release_page(ReleaseQuery(page_size=500)) for _ in range(viewers)]
        assert len(source.queries) == 1
        assert len(cache.watched_releases()) == 50
        row = next(r for r in pages[-1].items if r.id == "rel-r7")
        assert row == summary_of(await cache.hierarchy("rel-r7"))


async def test_followed_releases_stay_watched_while_the_list_is_read_and_go_when_closed() -> None:
    """Past the watch TTL a running release stays followed; once closed, the list uses its memo."""
    cache, source, clock = setup()
    await _listed(cache)
    for _ in range(3):
        clock.advance(30)
        await _listed(cache)
        await cache.refresh_once()
    assert cache.watched_releases() == ["rel-run"]
    final = StateCounts(succeeded=4)
    source.put(
        workflow_info(
            "rel-run",
            EntityState.SUCCEEDED,
            status=Status.WORKFLOW_EXECUTION_STATUS_COMPLETED,
            started_at=T0,
            changed_at=clock.now(),
            closed_at=clock.now(),
            memo=EntityMemo(waves_total=1, current_wave=1, apps=final),
        )
    )
    clock.advance(1)
    await cache.refresh_once()  # sees it closed
    clock.advance(1.5)
    await cache.refresh_once()  # no longer follows it
    assert cache.watched_releases() == []
    listed = await _listed(cache)
    assert listed["rel-run"].apps == final  # type: ignore[attr-defined]
    assert listed["rel-run"].state is EntityState.SUCCEEDED  # type: ignore[attr-defined]


async def test_without_following_the_list_is_the_memos_at_one_call() -> None:
    """`follow_running=False` (the benchmark's "before"): one list call, counts from the memo."""
    source = FakeVisibility()
    source.add_release("rel-run", make_plan(waves=1, clusters=2, apps=2))
    clock = FakeClock(T0 + timedelta(minutes=5))
    cache = SnapshotCache(source, replace(POLICY, follow_running=False), clock)
    source.change(APP, EntityState.RETRYING, clock.now(), attempt=2)
    listed = await _listed(cache)
    assert source.queries == ["RelmgrKind = 'release'"]
    assert listed["rel-run"].apps == StateCounts(in_progress=4)  # type: ignore[attr-defined]
    clock.advance(1.5)
    await cache.refresh_once()
    assert cache.watched_releases() == []
