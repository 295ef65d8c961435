"""The shared snapshot cache, against an in-memory visibility source and a fake clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from relmgr.errors import NotFoundError, TemporalUnavailableError
from relmgr.models import EntityState, ReleaseHierarchy, ReleaseQuery
from relmgr.reader.coalescer import Coalescer
from relmgr.reader.queries import format_time
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.reader.rows import row_from_info
from relmgr.reader.snapshots import merge_row
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import (
    DOWN,
    T0,
    FakeClock,
    FakeVisibility,
    Status,
    cache_over,
    workflow_info,
)

POLICY = CachePolicy(
    refresh_seconds=1.5, delta_window_seconds=10, resync_seconds=300, watch_ttl_seconds=60
)
APP = "rel-one.wave-1.cluster-c1.bundle-core.app-a1"


def setup(*releases: str) -> tuple[SnapshotCache, FakeVisibility, FakeClock]:
    return cache_over(*releases, policy=POLICY)


async def test_a_cold_read_is_one_list_call_for_the_whole_tree() -> None:
    """The first read of a release lists its workflows once and builds every planned node."""
    cache, source, clock = setup("rel-one")
    tree = await cache.hierarchy("rel-one")
    assert source.queries == ["RelmgrReleaseId = 'rel-one'"]
    assert sum(1 for node in tree.entities() if node.started) == 1 + 1 + 2 * 2 + 4
    assert tree.read_at == clock.now()
    assert cache.watched_releases() == ["rel-one"]


async def test_concurrent_cold_readers_share_one_call() -> None:
    """Fifty readers of a cold release wait on the same single list call and get the same tree."""
    cache, source, _ = setup("rel-one")
    source.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.hierarchy("rel-one")) for _ in range(50)]
    await asyncio.sleep(0)
    source.gate.set()
    trees = await asyncio.gather(*readers)
    assert len(source.queries) == 1
    assert all(tree is trees[0] for tree in trees)


async def test_a_warm_read_makes_no_call() -> None:
    """Reads of a watched release come from the snapshot."""
    cache, source, _ = setup("rel-one")
    first = await cache.hierarchy("rel-one")
    for _ in range(10):
        assert await cache.hierarchy("rel-one") is first
    assert len(source.queries) == 1


async def test_one_delta_call_refreshes_every_watched_release_and_the_list() -> None:
    """A cycle costs one call whatever the number of watched releases."""
    cache, source, clock = setup("rel-one", "rel-two", "rel-three")
    for release_id in ("rel-one", "rel-two", "rel-three"):
        await cache.hierarchy(release_id)
    await cache.release_page(ReleaseQuery())
    source.queries.clear()
    clock.advance(1.5)
    report = await cache.refresh_once()
    assert report.list_queries == 1
    assert len(source.queries) == 1
    since = format_time(T0 + timedelta(minutes=5) - timedelta(seconds=10))
    assert source.queries[0] == (
        f"(RelmgrLastChange >= '{since}' OR CloseTime >= '{since}') AND "
        "(RelmgrKind = 'release' OR "
        "RelmgrReleaseId IN ('rel-one', 'rel-three', 'rel-two'))"
    )


async def test_a_published_change_shows_after_the_next_refresh() -> None:
    """A state change merges into the tree; the roll-up, revision and read time follow."""
    cache, source, clock = setup("rel-one")
    before = await cache.hierarchy("rel-one")
    clock.advance(1.5)
    source.change(APP, EntityState.RETRYING, clock.now(), attempt=2, last_error="boom")
    clock.advance(0.1)
    report = await cache.refresh_once()
    after = await cache.hierarchy("rel-one")
    node = after.find(APP)
    assert node is not None
    assert (node.state, node.attempt, node.last_error) == (EntityState.RETRYING, 2, "boom")
    assert after.release.rollup.apps.retrying == 1
    assert after.revision != before.revision
    assert after.read_at == clock.now()
    assert report.rebuilt == ("rel-one",)


async def test_an_unchanged_refresh_rebuilds_nothing_but_moves_read_at() -> None:
    """Rows seen again within the safety window do not rebuild the tree."""
    cache, _, clock = setup("rel-one")
    before = await cache.hierarchy("rel-one")
    clock.advance(1.5)
    report = await cache.refresh_once()
    after = await cache.hierarchy("rel-one")
    assert report.rebuilt == ()
    assert after.revision == before.revision
    assert after.read_at == before.read_at + timedelta(seconds=1.5)


async def test_the_next_delta_starts_at_the_last_refresh_minus_the_window() -> None:
    """The delta's lower bound follows the last successful refresh, not the first load."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    clock.advance(1.5)
    await cache.refresh_once()
    second_cycle = clock.now()
    clock.advance(1.5)
    source.queries.clear()
    await cache.refresh_once()
    since = format_time(second_cycle - timedelta(seconds=10))
    assert source.queries[0].startswith(f"(RelmgrLastChange >= '{since}'")


def test_an_older_row_never_replaces_a_newer_one() -> None:
    """Merging is by workflow ID and ignores rows older than the one held."""
    newer = row_from_info(
        workflow_info(APP, EntityState.SUCCEEDED, changed_at=T0.replace(minute=9))
    )
    older = row_from_info(workflow_info(APP, EntityState.IN_PROGRESS, changed_at=T0))
    assert newer is not None
    assert older is not None
    rows = {APP: newer}
    assert merge_row(rows, older) is False
    assert rows[APP] is newer
    assert merge_row(rows, newer) is False


def test_a_later_run_of_the_same_id_wins() -> None:
    """A new run (later start) replaces the row of the previous one."""
    first = row_from_info(workflow_info(APP, EntityState.FAILED, changed_at=T0.replace(minute=30)))
    second = row_from_info(
        workflow_info(
            APP, EntityState.IN_PROGRESS, started_at=T0.replace(minute=40), run_id="run-2"
        )
    )
    assert first is not None
    assert second is not None
    rows = {APP: first}
    assert merge_row(rows, second) is True
    assert rows[APP].run_id == "run-2"


async def test_a_terminated_workflow_shows_failed() -> None:
    """A close the workflow never published (terminate) is caught by CloseTime and shows FAILED."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    clock.advance(1.5)
    source.put(
        workflow_info(
            APP,
            EntityState.IN_PROGRESS,
            status=Status.WORKFLOW_EXECUTION_STATUS_TERMINATED,
            closed_at=clock.now(),
        )
    )
    await cache.refresh_once()
    node = (await cache.hierarchy("rel-one")).find(APP)
    assert node is not None
    assert (node.state, node.last_error, node.finished_at) == (
        EntityState.FAILED,
        "workflow terminated",
        clock.now(),
    )


async def test_releases_nobody_reads_stop_being_refreshed() -> None:
    """After the watch TTL without a read, a release costs nothing more."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    clock.advance(61)
    source.queries.clear()
    report = await cache.refresh_once()
    assert cache.watched_releases() == []
    assert source.queries == []
    assert report.list_queries == 0


async def test_a_resync_rereads_in_full_and_drops_vanished_workflows() -> None:
    """Every resync period a snapshot is listed in full; workflows gone from Temporal go away."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    for _ in range(4):  # keep it watched until the resync is due
        clock.advance(75)
        await cache.hierarchy("rel-one")
    del source.workflows[APP]
    clock.advance(1)
    source.queries.clear()
    report = await cache.refresh_once()
    assert report.resynced == ("rel-one",)
    assert source.queries == ["RelmgrReleaseId = 'rel-one'"]
    node = (await cache.hierarchy("rel-one")).find(APP)
    assert node is not None
    assert node.started is False  # back to a plan placeholder


async def test_a_failed_refresh_makes_reads_raise_with_the_last_snapshot() -> None:
    """While Temporal is down, reads raise a typed error that carries the last good tree."""
    cache, source, clock = setup("rel-one")
    good = await cache.hierarchy("rel-one")
    clock.advance(1.5)
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError):
        await cache.refresh_once()
    with pytest.raises(TemporalUnavailableError) as raised:
        await cache.hierarchy("rel-one")
    assert raised.value.last_known == good
    assert raised.value.last_success_at == good.read_at
    assert cache.failure is not None


async def test_reads_recover_with_the_next_successful_refresh() -> None:
    """The refresher's next success clears the failure; no new cache or client is needed."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    clock.advance(1.5)
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError):
        await cache.refresh_once()
    source.fail_with = None
    clock.advance(3)
    await cache.refresh_once()
    tree = await cache.hierarchy("rel-one")
    assert tree.read_at == clock.now()
    assert cache.failure is None


async def test_a_cold_read_during_an_outage_raises_without_last_known() -> None:
    """A release never read before has nothing to fall back on."""
    cache, source, _ = setup("rel-one")
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError) as raised:
        await cache.hierarchy("rel-one")
    assert raised.value.last_known is None


async def test_an_unknown_release_is_not_found_and_not_asked_again_at_once() -> None:
    """A missing release is remembered for one refresh period (no call per reader)."""
    cache, source, clock = setup("rel-one")
    for _ in range(3):
        with pytest.raises(NotFoundError):
            await cache.hierarchy("rel-nothing")
    assert source.queries == ["RelmgrReleaseId = 'rel-nothing'"]
    clock.advance(2)
    await cache.refresh_once()
    with pytest.raises(NotFoundError):
        await cache.hierarchy("rel-nothing")
    assert len(source.queries) == 2


async def test_the_release_list_pages_from_release_rows_newest_first() -> None:
    """The list is one call for every release row, paged and counted in memory."""
    cache, source, _ = setup()
    for number in range(1, 6):
        source.add_release(
            f"rel-r{number}",
            make_plan(1, 1, 1),
            started_at=T0 + timedelta(minutes=number),
            children=False,
        )
    page = await cache.release_page(ReleaseQuery(page=1, page_size=2))
    assert [r.id for r in page.items] == ["rel-r5", "rel-r4"]
    assert (page.total, page.counts.in_progress) == (5, 5)
    # Running releases are followed: their counts are their trees' (no app has started yet).
    assert page.items[0].apps.pending == 1
    assert source.queries == [
        "RelmgrKind = 'release'",
        "RelmgrReleaseId IN ('rel-r1', 'rel-r2', 'rel-r3', 'rel-r4', 'rel-r5')",
    ]


async def test_a_new_release_joins_the_list_with_the_next_delta() -> None:
    """Releases started after the list was loaded arrive through the delta."""
    cache, source, clock = setup("rel-one")
    await cache.release_page(ReleaseQuery())
    clock.advance(1.5)
    source.add_release("rel-new", make_plan(1, 1, 1), started_at=clock.now(), children=False)
    await cache.refresh_once()
    page = await cache.release_page(ReleaseQuery())
    assert [r.id for r in page.items] == ["rel-new", "rel-one"]


async def test_the_refresher_backs_off_while_failing_and_keeps_its_pace_otherwise() -> None:
    """Pauses grow 1.5, 3, 5 (capped) while failing, and return to the period on success."""
    cache, source, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    source.fail_with = DOWN
    runner = asyncio.create_task(cache.run())
    await clock.until_slept(4)
    source.fail_with = None
    await clock.until_slept(6)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert clock.sleeps[:6] == [1.5, 3.0, 5.0, 5.0, 1.5, 1.5]


async def test_a_coalescer_reuses_a_result_for_its_ttl() -> None:
    """Calls within the TTL share one result; after it, a new call is made."""
    clock = FakeClock()
    calls: list[int] = []

    async def call() -> int:
        calls.append(1)
        return len(calls)

    coalescer: Coalescer[int] = Coalescer(clock, ttl=1.0)
    assert [await coalescer.get("k", call) for _ in range(3)] == [1, 1, 1]
    clock.advance(1.0)
    assert await coalescer.get("k", call) == 2


async def test_a_coalescer_does_not_cache_failures() -> None:
    """An error reaches every waiter of that call, and the next call tries again."""
    clock = FakeClock()
    outcomes: list[Exception | int] = [DOWN, 7]

    async def call() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    coalescer: Coalescer[int] = Coalescer(clock, ttl=10.0)
    with pytest.raises(TemporalUnavailableError):
        await coalescer.get("k", call)
    assert await coalescer.get("k", call) == 7


async def test_every_snapshot_carries_the_time_it_was_read() -> None:
    """Trees and pages are stamped with the start of the refresh that last covered them."""
    cache, _, clock = setup("rel-one")
    await cache.hierarchy("rel-one")
    await cache.release_page(ReleaseQuery())
    clock.advance(1.5)
    await cache.refresh_once()
    tree: ReleaseHierarchy = await cache.hierarchy("rel-one")
    page = await cache.release_page(ReleaseQuery())
    assert tree.read_at == page.read_at == clock.now()
