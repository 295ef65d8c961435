"""TemporalReader's methods over an in-memory visibility source (no server needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relmgr.errors import (
    InvalidIdError,
    LiveStateUnavailableError,
    NotFoundError,
    TemporalUnavailableError,
)
from relmgr.models import (
    Entity,
    EntityDetail,
    EntityKind,
    EntityState,
    ReleaseQuery,
    StateCounts,
)
from relmgr.reader import FakeReader, ReleaseReader, TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.contract import EntityMemo
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import DOWN, T0, FakeClock, FakeVisibility, Status, workflow_info

CLUSTER = "rel-one.wave-1.cluster-c1"
BUNDLE = f"{CLUSTER}.bundle-core"
APP = f"{BUNDLE}.app-a1"
INJECTIONS = [
    "x' OR ReleaseId != '",
    "rel-x' OR RelmgrKind = 'app",
    "rel-a.wave-1.cluster-c1') OR ('1'='1",
    "rel-a\\",
    "",
]


def setup(*, started: bool = True) -> tuple[TemporalReader, FakeVisibility, FakeClock]:
    source = FakeVisibility()
    source.add_release("rel-one", make_plan(waves=2, clusters=2, apps=2), children=started)
    clock = FakeClock(T0 + timedelta(minutes=5))
    return TemporalReader(source, Settings(), clock=clock), source, clock


def test_the_reader_implements_the_seam() -> None:
    """Both readers satisfy the ReleaseReader protocol the front ends depend on."""
    readers: list[ReleaseReader] = [setup()[0], FakeReader()]
    assert len(readers) == 2


async def test_get_entity_is_fresh_from_describe_with_children_from_the_tree() -> None:
    """A bundle comes from describe(); its apps and roll-up from the watched tree."""
    reader, source, _ = setup()
    detail = await reader.get_entity(BUNDLE)
    assert source.describes == [BUNDLE]
    assert detail.entity.id == BUNDLE
    assert [c.id for c in detail.children] == [f"{BUNDLE}.app-a1", f"{BUNDLE}.app-a2"]
    assert detail.rollup.apps.in_progress == 2
    assert [b.id for b in detail.breadcrumbs] == ["rel-one", "rel-one.wave-1", CLUSTER]
    assert reader.stats().list_calls == 1


async def test_get_entity_of_a_planned_entity_not_started_yet() -> None:
    """An entity in the plan without a workflow is shown as a PENDING placeholder."""
    reader, _, _ = setup(started=False)
    detail = await reader.get_entity(APP)
    assert (detail.entity.state, detail.entity.started) == (EntityState.PENDING, False)


async def test_get_entity_unknown_is_not_found() -> None:
    """An ID neither in Temporal nor in the plan is NotFoundError."""
    reader, _, _ = setup()
    with pytest.raises(NotFoundError):
        await reader.get_entity("rel-one.wave-1.cluster-zz")
    with pytest.raises(NotFoundError):
        await reader.get_entity("rel-none.wave-1")


async def test_many_viewers_of_one_entity_cost_one_describe_per_period() -> None:
    """Describes are reused for one refresh period."""
    reader, source, clock = setup()
    for _ in range(20):
        await reader.get_entity(APP)
    clock.advance(1.5)
    await reader.get_entity(APP)
    assert source.describes == [APP, APP]


async def test_get_entity_while_down_carries_the_last_known_detail() -> None:
    """With Temporal down, the error carries what the last tree knew of the entity."""
    reader, source, clock = setup()
    await reader.get_release_hierarchy("rel-one")
    clock.advance(1.5)
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError):
        await reader.cache.refresh_once()
    with pytest.raises(TemporalUnavailableError) as raised:
        await reader.get_entity(APP)
    last_known = raised.value.last_known
    assert isinstance(last_known, EntityDetail)
    assert last_known.entity.id == APP


async def test_get_release_of_a_running_release_has_its_trees_counts() -> None:
    """Unwatched and running: one describe, then its tree (whose counts the memo lags)."""
    reader, source, clock = setup()
    source.change(APP, EntityState.RETRYING, clock.now(), attempt=2, last_error="boom")
    summary = await reader.get_release("rel-one")
    # The memo says 8 in progress; the tree knows one of them is retrying.
    assert (summary.apps.in_progress, summary.apps.retrying) == (7, 1)
    assert summary.last_changed_at == clock.now()
    assert (summary.waves_total, summary.current_wave) == (2, 2)  # both waves have started
    assert source.describes == ["rel-one"]
    assert reader.cache.watched_releases() == ["rel-one"]
    again = await reader.get_release("rel-one")
    assert again == summary
    assert (source.describes, reader.stats().list_calls) == (["rel-one"], 1)


async def test_get_release_of_a_closed_release_is_one_describe_of_its_final_memo() -> None:
    """A closed release is not watched for a summary: its memo is final."""
    source = FakeVisibility()
    source.put(
        workflow_info(
            "rel-done",
            EntityState.FAILED,
            status=Status.WORKFLOW_EXECUTION_STATUS_FAILED,
            closed_at=T0 + timedelta(minutes=3),
            memo=EntityMemo(
                waves_total=1, current_wave=1, apps=StateCounts(succeeded=2, failed=1, cancelled=5)
            ),
        )
    )
    reader = TemporalReader(source, Settings(), clock=FakeClock(T0 + timedelta(minutes=5)))
    summary = await reader.get_release("rel-done")
    assert summary.apps == StateCounts(succeeded=2, failed=1, cancelled=5)
    assert (source.describes, source.queries) == (["rel-done"], [])


async def test_get_release_unknown_is_not_found() -> None:
    """A well-formed release ID with no workflow is NotFoundError."""
    reader, _, _ = setup()
    with pytest.raises(NotFoundError):
        await reader.get_release("rel-none")


async def test_list_releases_rejects_a_search_outside_the_id_alphabet() -> None:
    """Free-text search is validated before anything is read."""
    reader, source, _ = setup()
    with pytest.raises(InvalidIdError):
        await reader.list_releases(ReleaseQuery(search="x' OR '1'='1"))
    assert source.queries == []
    page = await reader.list_releases(ReleaseQuery(search="one"))
    assert [r.id for r in page.items] == ["rel-one"]


async def test_live_state_comes_from_the_query_and_fails_typed_without_a_worker() -> None:
    """get_live_state returns the workflow's own entity, or LiveStateUnavailableError."""
    reader, source, _ = setup()
    with pytest.raises(LiveStateUnavailableError):
        await reader.get_live_state(APP)
    live = Entity(
        id=APP,
        kind=EntityKind.APP,
        release_id="rel-one",
        parent_id=BUNDLE,
        state=EntityState.RETRYING,
    )
    source.live[APP] = live
    assert await reader.get_live_state(APP) == live


async def test_check_ready_pings_once_then_trusts_recent_success() -> None:
    """Readiness costs one count call, then nothing while refreshes succeed."""
    reader, _, _ = setup()
    await reader.check_ready()
    await reader.check_ready()
    assert reader.stats().count_calls == 1


async def test_check_ready_fails_when_temporal_does_not_answer() -> None:
    """With nothing cached, a failing ping makes the reader not ready."""
    reader, source, _ = setup()
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError):
        await reader.check_ready()


async def test_check_ready_fails_while_the_refresher_fails() -> None:
    """A failed refresh makes the reader not ready, without another call."""
    reader, source, clock = setup()
    await reader.get_release_hierarchy("rel-one")
    clock.advance(1.5)
    source.fail_with = DOWN
    with pytest.raises(TemporalUnavailableError):
        await reader.cache.refresh_once()
    calls = reader.stats().temporal_calls
    with pytest.raises(TemporalUnavailableError):
        await reader.check_ready()
    with pytest.raises(TemporalUnavailableError):
        await reader.get_live_state(APP)  # Temporal down, not "no worker"
    assert reader.stats().temporal_calls == calls


@pytest.mark.parametrize("bad_id", INJECTIONS)
async def test_injection_attempts_never_reach_temporal(bad_id: str) -> None:
    """Every method validates IDs before building a query: InvalidIdError, zero calls."""
    reader, source, _ = setup()
    for call in (
        reader.get_release,
        reader.get_release_hierarchy,
        reader.get_entity,
        reader.get_live_state,
    ):
        with pytest.raises(InvalidIdError):
            await call(bad_id)
    assert reader.stats().temporal_calls == 0
    assert source.queries == []


async def test_stats_count_calls_and_watched_releases() -> None:
    """stats() reports calls by type and the releases being refreshed."""
    reader, _, _ = setup()
    await reader.get_release_hierarchy("rel-one")
    await reader.get_entity(APP)
    stats = reader.stats()
    assert (stats.list_calls, stats.describe_calls, stats.watched_releases) == (1, 1, 1)


async def test_a_closed_reader_refuses_calls() -> None:
    """After aclose() the refresher is stopped and calls raise a typed error."""
    reader, _, _ = setup()
    reader.start()
    await reader.aclose()
    with pytest.raises(TemporalUnavailableError):
        await reader.get_release_hierarchy("rel-one")
