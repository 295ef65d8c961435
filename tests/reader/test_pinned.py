"""A pinned clause (the auth ledger) rides in the refresh cycle's one delta call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from relmgr.errors import TemporalUnavailableError
from relmgr.models import EntityState
from relmgr.reader.queries import delta_query
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.reader.rows import VisibilityRow
from relmgr.temporal.ledger import pinned_query
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import T0, FakeClock, FakeVisibility, cache_over

POLICY = CachePolicy(
    refresh_seconds=1.5, delta_window_seconds=10, resync_seconds=300, watch_ttl_seconds=60
)
PINNED = pinned_query("relmgr-auth-ledger")
APP = "rel-one.wave-1.cluster-c1.bundle-core.app-a1"


class PinnedVisibility(FakeVisibility):
    """The fake, which also answers a delta with the pinned clause (the pinned workflow is not
    an entity, so it adds no row) and the pinned clause alone."""

    async def list_rows(self, query: str, *, delta: bool = False) -> list[VisibilityRow]:
        if query == PINNED:
            self.queries.append(query)
            return []
        suffix = f" OR {PINNED}"
        if query.endswith(suffix):
            rows = await super().list_rows(query.removesuffix(suffix)[1:-1], delta=delta)
            self.queries[-1] = query
            return rows
        return await super().list_rows(query, delta=delta)


def test_the_pinned_clause_is_ored_whole_into_a_delta() -> None:
    """The delta keeps its shape and adds the ledger's running execution."""
    since = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    query = delta_query(since, ["rel-one"], include_release_list=False, pinned=PINNED)
    assert query == (
        "((RelmgrLastChange >= '2026-11-02T09:00:00.000000Z' OR CloseTime >= "
        "'2026-11-02T09:00:00.000000Z') AND (RelmgrReleaseId IN ('rel-one'))) OR "
        "(WorkflowId = 'relmgr-auth-ledger' AND ExecutionStatus = 'Running')"
    )


async def test_with_nothing_watched_a_cycle_makes_one_call_for_the_pinned_clause() -> None:
    """Idle, a replica still reads the ledger each cycle: one call, the pinned clause alone;
    unpinned, an idle cycle makes none (the old behaviour)."""
    cache, source, clock = cache_over(policy=POLICY)
    await cache.refresh_once()
    assert source.queries == []
    reads: list[int] = []
    cache.pin(PINNED, on_read=lambda: reads.append(cache.cycles))
    for _ in range(3):
        report = await cache.refresh_once()
        assert report.list_queries == 1
        clock.advance(1.5)
    assert source.queries == [PINNED] * 3
    assert reads == [1, 2, 3]  # each cycle tells the ledger it was read (no workflow yet)


async def test_with_releases_watched_the_ledger_adds_no_call() -> None:
    """Two watched releases: each cycle is still one call, which carries the
    pinned clause, and changes still arrive through it."""
    source = PinnedVisibility()
    for release_id in ("rel-one", "rel-two"):
        source.add_release(release_id, make_plan(waves=1, clusters=2, apps=2))
    clock = FakeClock(T0 + timedelta(minutes=5))
    cache = SnapshotCache(source, POLICY, clock)
    cache.pin(PINNED)
    await cache.hierarchy("rel-one")
    await cache.hierarchy("rel-two")
    cold = len(source.queries)
    clock.advance(1.5)
    source.change(APP, EntityState.SUCCEEDED, clock.now())
    for _ in range(4):
        report = await cache.refresh_once()
        assert report.list_queries == 1
        clock.advance(1.5)
    deltas = source.queries[cold:]
    assert len(deltas) == 4
    assert all(q.endswith(f" OR {PINNED}") for q in deltas)
    tree = await cache.hierarchy("rel-one")
    node = tree.find(APP)
    assert node is not None
    assert node.state is EntityState.SUCCEEDED


async def test_a_cycle_under_way_is_reported_until_it_is_counted() -> None:
    """While a cycle's call is out, `refreshing` is true (its call may be counted, the cycle not
    yet); once the cycle is counted it is false again, and stays false after a failed cycle."""
    source = FakeVisibility()
    source.add_release("rel-one", make_plan(waves=1, clusters=1, apps=1))
    cache = SnapshotCache(source, POLICY, FakeClock(T0 + timedelta(minutes=5)))
    await cache.hierarchy("rel-one")
    assert cache.refreshing is False
    source.gate = asyncio.Event()
    cycle = asyncio.create_task(cache.refresh_once())
    for _ in range(1000):  # until the cycle's call is out (at most 1 s)
        if source.in_flight:
            break
        await asyncio.sleep(0.001)
    assert (cache.refreshing, cache.cycles) == (True, 0)
    source.gate.set()
    await cycle
    assert (cache.refreshing, cache.cycles) == (False, 1)
    source.fail_with = TemporalUnavailableError("down")
    with pytest.raises(TemporalUnavailableError):
        await cache.refresh_once()
    assert (cache.refreshing, cache.cycles) == (False, 1)
