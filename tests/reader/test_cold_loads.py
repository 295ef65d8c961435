"""Cold loads under a herd: bounded, one per release, and a failure remembered for a moment."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from relmgr.errors import ReadTimeoutError, TemporalUnavailableError
from relmgr.models import ReleaseHierarchy, ReleaseQuery
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.settings import Settings
from relmgr.testing.fakes import FakeClock, FakeVisibility, cache_over

POLICY = CachePolicy(refresh_seconds=1.5, cold_load_concurrency=2)
RELEASES = tuple(f"rel-r{number}" for number in range(1, 6))
SLOW = ReadTimeoutError("Temporal did not answer within 5 s while listing workflows")


def setup(*releases: str) -> tuple[SnapshotCache, FakeVisibility, FakeClock]:
    return cache_over(*releases, policy=POLICY)


async def settle() -> None:
    """Let every ready task run until it waits (on the gate, the queue or a load)."""
    for _ in range(20):
        await asyncio.sleep(0)


def read_all(cache: SnapshotCache, release_ids: tuple[str, ...]) -> list[asyncio.Task[object]]:
    return [asyncio.create_task(cache.hierarchy(release_id)) for release_id in release_ids]


async def test_at_most_two_cold_loads_run_at_once_and_every_queued_one_finishes() -> None:
    """Five releases opened together: two list calls run, three queue, then all five load."""
    cache, source, _ = setup(*RELEASES)
    source.gate = asyncio.Event()
    readers = read_all(cache, RELEASES)
    await settle()
    assert (source.in_flight, len(source.queries)) == (2, 2)
    source.gate.set()
    trees = await asyncio.gather(*readers)
    assert source.max_in_flight == 2
    assert [tree.release.id for tree in trees if isinstance(tree, ReleaseHierarchy)] == list(
        RELEASES
    )
    assert sorted(source.queries) == [f"RelmgrReleaseId = '{r}'" for r in RELEASES]
    assert cache.watched_releases() == list(RELEASES)


async def test_a_queued_release_is_read_as_of_its_turn() -> None:
    """A tree loaded after waiting in the queue carries the time its list ran, not the request's."""
    cache, source, clock = setup(*RELEASES[:3])
    source.gate = asyncio.Event()
    first_two = read_all(cache, RELEASES[:2])
    third = asyncio.create_task(cache.hierarchy("rel-r3"))
    await settle()
    asked_at = clock.now()
    clock.advance(0.7)
    source.gate.set()
    await asyncio.gather(*first_two)
    tree = await third
    assert (tree.read_at, tree.read_at - asked_at) == (clock.now(), timedelta(seconds=0.7))


async def test_readers_of_one_queued_release_share_its_single_load() -> None:
    """Ten readers each of three releases, one of them queued, cost three list calls in all."""
    cache, source, _ = setup(*RELEASES[:3])
    source.gate = asyncio.Event()
    readers = read_all(cache, RELEASES[:3] * 10)
    await settle()
    assert len(source.queries) == 2
    source.gate.set()
    trees = await asyncio.gather(*readers)
    assert len(source.queries) == 3
    for number, release_id in enumerate(RELEASES[:3]):
        assert all(tree is trees[number] for tree in trees[number::3]), release_id


async def test_a_failed_cold_load_is_answered_from_its_failure_for_one_refresh_period() -> None:
    """Within refresh_seconds of a failed load, readers get the same typed error and no call."""
    cache, source, clock = setup("rel-r1")
    source.fail_with = SLOW
    with pytest.raises(ReadTimeoutError):
        await cache.hierarchy("rel-r1")
    source.fail_with = None
    clock.advance(1.4)
    for _ in range(5):
        with pytest.raises(ReadTimeoutError) as raised:
            await cache.hierarchy("rel-r1")
        assert (raised.value.message, raised.value.last_known) == (SLOW.message, None)
    assert source.queries == ["RelmgrReleaseId = 'rel-r1'"]
    clock.advance(0.1)
    tree = await cache.hierarchy("rel-r1")
    assert tree.release.id == "rel-r1"
    assert len(source.queries) == 2


async def test_a_failed_cold_load_of_the_release_list_is_remembered_too() -> None:
    """The release list's first read failing is answered from the failure for one period."""
    cache, source, clock = setup("rel-r1")
    source.fail_with = SLOW
    for _ in range(3):
        with pytest.raises(TemporalUnavailableError):
            await cache.release_page(ReleaseQuery())
    assert source.queries == ["RelmgrKind = 'release'"]
    source.fail_with = None
    clock.advance(1.5)
    page = await cache.release_page(ReleaseQuery())
    assert [r.id for r in page.items] == ["rel-r1"]
    # The list again, and its one running release's tree (followed for exact counts).
    assert source.queries[1:] == ["RelmgrKind = 'release'", "RelmgrReleaseId IN ('rel-r1')"]


async def test_a_reader_that_gives_up_in_the_queue_leaves_the_load_to_run() -> None:
    """A caller's timeout ends its wait on time; the queued load still runs and warms the tree."""
    cache, source, _ = setup(*RELEASES[:3])
    source.gate = asyncio.Event()
    first_two = read_all(cache, RELEASES[:2])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cache.hierarchy("rel-r3"), 0.05)
    assert len(source.queries) == 2  # rel-r3 is still queued: it has not called Temporal
    source.gate.set()
    await asyncio.gather(*first_two)
    await settle()
    assert cache.watched_releases() == list(RELEASES[:3])
    tree = await cache.hierarchy("rel-r3")
    assert tree.release.id == "rel-r3"
    assert len(source.queries) == 3


def test_the_bound_on_cold_loads_is_a_setting() -> None:
    """RELMGR_COLD_LOAD_CONCURRENCY reaches the cache policy; it defaults to two."""
    assert CachePolicy.from_settings(Settings()).cold_load_concurrency == 2
    assert CachePolicy.from_settings(Settings(cold_load_concurrency=5)).cold_load_concurrency == 5


async def test_a_lapsed_watch_keeps_its_last_tree_until_the_release_is_loaded_again() -> None:
    """A release nobody read for the TTL stops being refreshed but its last tree is kept (with
    its read_at); while its next cold load hangs, that tree is there; once loaded, it is gone."""
    cache, source, clock = setup("rel-r1")
    watched = await cache.hierarchy("rel-r1")
    assert cache.lapsed_hierarchy("rel-r1") is None  # still watched: nothing lapsed
    clock.advance(61)
    await cache.refresh_once()
    assert cache.watched_releases() == []
    assert cache.lapsed_hierarchy("rel-r1") == watched
    source.gate = asyncio.Event()
    reading = asyncio.create_task(cache.hierarchy("rel-r1"))
    await settle()
    assert not reading.done()
    kept = cache.lapsed_hierarchy("rel-r1")
    assert kept is not None
    assert kept.read_at == watched.read_at == clock.now() - timedelta(seconds=61)
    source.gate.set()
    fresh = await reading
    assert fresh.read_at == clock.now()
    assert cache.lapsed_hierarchy("rel-r1") is None


async def test_only_the_last_few_lapsed_trees_are_kept() -> None:
    """Five releases lapse one after another: the newest `lapsed_trees_kept` (2 here) stay."""
    cache, _, clock = cache_over(*RELEASES, policy=CachePolicy(lapsed_trees_kept=2))
    for release_id in RELEASES:
        await cache.hierarchy(release_id)
        clock.advance(61)
        await cache.refresh_once()
    kept = [r for r in RELEASES if cache.lapsed_hierarchy(r) is not None]
    assert kept == ["rel-r4", "rel-r5"]
