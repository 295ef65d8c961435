"""The read path against real Temporal dev servers: the session's, and ones these tests stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relmgr.errors import (
    InvalidIdError,
    LiveStateUnavailableError,
    NotFoundError,
    TemporalUnavailableError,
)
from relmgr.models import EntityState, ReleaseHierarchy, ReleaseQuery
from relmgr.reader import TemporalReader, create_reader
from relmgr.settings import Settings
from relmgr.temporal.contract import SA_LAST_CHANGE, SA_STATE
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.contract_stub import ContractStubWorkflow, StubChange, StubFinish, start_stub
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import entity_ids_of

pytestmark = pytest.mark.integration

FAST = Settings(refresh_seconds=0.5, temporal_rpc_timeout=1.0, live_query_timeout=0.5)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until it holds; fail if it never does (a functional check, not a timing one)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {within:g} s")
        await asyncio.sleep(0.1)


async def start_stub_release(
    client: Client,
    release_id: str,
    task_queue: str,
    *,
    waves: int = 1,
    clusters: int = 2,
    apps: int = 2,
) -> list[str]:
    """Start one contract stub per planned entity; returns every entity ID once all are visible.

    Visibility is written a moment after a start, even on a dev server; waiting here keeps the
    tests about the reader, not about that lag.
    """
    plan = make_plan(waves, clusters, apps)
    all_ids = entity_ids_of(release_id, plan)
    await start_stub(client, release_id, task_queue=task_queue, plan=plan)
    await asyncio.gather(*(start_stub(client, e, task_queue=task_queue) for e in all_ids[1:]))

    async def all_visible() -> bool:
        count = await client.count_workflows(f"RelmgrReleaseId = '{release_id}'")
        return count.count == len(all_ids)

    await eventually(all_visible, what="visibility of every started stub")
    return all_ids


async def test_the_hierarchy_matches_describe_for_every_entity(client: Client) -> None:
    """After a real release (with a failing app), every node agrees with describe()."""
    release_id = unique("rel-match")
    task_queue = unique("tq")
    options = DeployOptions(
        min_seconds=0, max_seconds=0.05, fail_apps=("a2",), max_attempts=2, retry_seconds=0
    )
    async with build_worker(client, task_queue):
        handle = await start_release(
            client, release_id, make_plan(2, 2, 3), options, task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    async def every_close_visible() -> bool:
        query = f"RelmgrReleaseId = '{release_id}' AND ExecutionStatus = 'Running'"
        return (await client.count_workflows(query)).count == 0

    await eventually(every_close_visible, what="visibility of every close")
    reader = TemporalReader.from_client(client, FAST)
    tree = await reader.get_release_hierarchy(release_id)
    checked = 0
    for node in tree.entities():
        if not node.started:
            with pytest.raises(RPCError) as missing:
                await client.get_workflow_handle(node.id).describe()
            assert missing.value.status is RPCStatusCode.NOT_FOUND
            assert node.state is EntityState.CANCELLED  # its parent finished without it
            continue
        described = await client.get_workflow_handle(node.id).describe()
        published = EntityState(described.typed_search_attributes.get(SA_STATE))
        assert published.is_terminal, node.id
        assert (node.state, node.started_at, node.last_changed_at, node.finished_at) == (
            published,
            described.start_time,
            described.typed_search_attributes.get(SA_LAST_CHANGE),
            described.close_time,
        ), node.id
        checked += 1
    assert tree.release.state is EntityState.FAILED
    assert tree.release.rollup.apps.failed >= 1
    assert checked > 10
    await reader.aclose()


async def test_a_state_change_shows_up(client: Client) -> None:
    """A state an entity publishes reaches readers through the background refresher."""
    release_id = unique("rel-change")
    task_queue = unique("tq")
    async with Worker(client, task_queue=task_queue, workflows=[ContractStubWorkflow]):
        all_ids = await start_stub_release(client, release_id, task_queue)
        app = all_ids[-1]
        reader = TemporalReader.from_client(client, FAST)
        reader.start()
        first = await reader.get_release_hierarchy(release_id)
        await client.get_workflow_handle(app).signal(
            ContractStubWorkflow.set_state,
            StubChange(state=EntityState.RETRYING, attempt=2, last_error="disk full"),
        )

        async def shows_retrying() -> bool:
            node = (await reader.get_release_hierarchy(release_id)).find(app)
            return node is not None and node.state is EntityState.RETRYING

        await eventually(shows_retrying, what="the RETRYING state")
        tree = await reader.get_release_hierarchy(release_id)
        node = tree.find(app)
        assert node is not None
        assert (node.attempt, node.last_error) == (2, "disk full")
        assert tree.revision != first.revision
        assert tree.read_at > first.read_at
        await reader.aclose()


async def test_concurrent_readers_of_a_cold_release_cause_one_call(client: Client) -> None:
    """Thirty readers at once: one list call, one shared tree."""
    release_id = unique("rel-flight")
    await start_stub_release(client, release_id, unique("tq-idle"))
    reader = TemporalReader.from_client(client, FAST)
    trees = await asyncio.gather(*(reader.get_release_hierarchy(release_id) for _ in range(30)))
    assert reader.stats().list_calls == 1
    assert all(tree is trees[0] for tree in trees)
    await reader.aclose()


async def test_with_no_worker_everything_but_the_live_query_answers(client: Client) -> None:
    """Visibility needs no worker; only get_live_state fails, typed and bounded."""
    release_id = unique("rel-noworker")
    all_ids = await start_stub_release(client, release_id, unique("tq-nobody"))
    reader = TemporalReader.from_client(client, FAST)
    tree = await reader.get_release_hierarchy(release_id)
    assert sum(1 for node in tree.entities() if node.started) == len(all_ids)
    assert (await reader.get_release(release_id)).id == release_id
    detail = await reader.get_entity(all_ids[1])
    assert detail.entity.state is EntityState.IN_PROGRESS
    page = await reader.list_releases(ReleaseQuery(search=release_id.removeprefix("rel-")))
    assert [r.id for r in page.items] == [release_id]
    with pytest.raises(LiveStateUnavailableError):
        await reader.get_live_state(all_ids[-1])
    await reader.aclose()


async def test_a_live_query_answers_when_a_worker_runs(client: Client) -> None:
    """get_live_state returns the workflow's own view of itself."""
    release_id = unique("rel-live")
    task_queue = unique("tq")
    async with Worker(client, task_queue=task_queue, workflows=[ContractStubWorkflow]):
        all_ids = await start_stub_release(client, release_id, task_queue)
        # This test is about the answer, not the budget: a loaded machine may take seconds for
        # the worker's first query task, so the budget here is generous.
        patient = FAST.model_copy(update={"live_query_timeout": 10.0})
        reader = TemporalReader.from_client(client, patient)
        live = await reader.get_live_state(all_ids[-1])
        assert (live.id, live.state) == (all_ids[-1], EntityState.IN_PROGRESS)
        await reader.aclose()


async def test_workflows_that_end_without_publishing_take_their_end_state(client: Client) -> None:
    """Terminated shows FAILED, cancelled CANCELLED, failed FAILED: from the execution status."""
    release_id = unique("rel-ends")
    task_queue = unique("tq")
    async with Worker(client, task_queue=task_queue, workflows=[ContractStubWorkflow]):
        all_ids = await start_stub_release(client, release_id, task_queue, apps=3)
        apps = all_ids[-3:]
        await client.get_workflow_handle(apps[0]).terminate("operator")
        cancelled = client.get_workflow_handle(apps[1])
        await cancelled.cancel()
        failed = client.get_workflow_handle(apps[2])
        await failed.signal(ContractStubWorkflow.finish, StubFinish(fail=True))
        for handle in (cancelled, failed):
            with pytest.raises(WorkflowFailureError):
                await handle.result()

    async def closes_visible() -> bool:
        query = f"RelmgrReleaseId = '{release_id}' AND ExecutionStatus != 'Running'"
        return (await client.count_workflows(query)).count == 3

    await eventually(closes_visible, what="visibility of the three closes")
    reader = TemporalReader.from_client(client, FAST)
    tree = await reader.get_release_hierarchy(release_id)
    found = [tree.find(app) for app in apps]
    assert [(n.state, n.last_error) for n in found if n is not None] == [
        (EntityState.FAILED, "workflow terminated"),
        (EntityState.CANCELLED, None),
        (EntityState.FAILED, "workflow failed"),
    ]
    await reader.aclose()


@pytest.mark.parametrize(
    "bad_id", ["x' OR ReleaseId != '", "rel-a' OR RelmgrKind = 'app", 'rel-a") OR ("1"="1']
)
async def test_injection_attempts_are_rejected_before_temporal(client: Client, bad_id: str) -> None:
    """Malformed IDs raise InvalidIdError and cost Temporal nothing."""
    reader = TemporalReader.from_client(client, FAST)
    calls: list[Callable[[str], Awaitable[Any]]] = [
        reader.get_release,
        reader.get_release_hierarchy,
        reader.get_entity,
        reader.get_live_state,
    ]
    for call in calls:
        with pytest.raises(InvalidIdError):
            await call(bad_id)
    with pytest.raises(InvalidIdError):
        await reader.list_releases(ReleaseQuery(search=bad_id))
    assert reader.stats().temporal_calls == 0
    await reader.aclose()


async def test_unknown_ids_are_not_found(client: Client) -> None:
    """Well-formed IDs that name nothing are NotFoundError."""
    reader = TemporalReader.from_client(client, FAST)
    with pytest.raises(NotFoundError):
        await reader.get_release_hierarchy(unique("rel-none"))
    with pytest.raises(NotFoundError):
        await reader.get_release(unique("rel-none"))
    with pytest.raises(NotFoundError):
        await reader.get_entity(f"{unique('rel-none')}.wave-1")
    await reader.aclose()


async def test_create_reader_connects_and_refreshes(temporal_env: WorkflowEnvironment) -> None:
    """The factory front ends use: connect from settings, start the refresher, read."""
    address = temporal_env.client.service_client.config.target_host
    reader = await create_reader(FAST.model_copy(update={"temporal_address": address}))
    await reader.check_ready()
    page = await reader.list_releases(ReleaseQuery(page_size=1))
    assert page.page_size == 1
    await reader.aclose()


async def test_server_down_then_back_a_typed_error_then_recovery(tmp_path: Path) -> None:
    """Server stopped: typed errors carrying the last tree; restarted: the same reader recovers."""
    server = DevServerProcess(db_file=tmp_path / "temporal.db")
    client = await server.start()
    try:
        release_id = unique("rel-outage")
        await start_stub_release(client, release_id, unique("tq-idle"))
        reader = TemporalReader.from_client(client, FAST)
        reader.start()
        good: ReleaseHierarchy = await reader.get_release_hierarchy(release_id)

        server.stop()

        async def refresh_failed() -> bool:
            return reader.cache.failure is not None

        await eventually(refresh_failed, what="a failed refresh")
        with pytest.raises(TemporalUnavailableError) as raised:
            await reader.get_release_hierarchy(release_id)
        assert raised.value.last_known is not None
        last_known = raised.value.last_known
        assert isinstance(last_known, ReleaseHierarchy)
        assert last_known.revision == good.revision
        assert raised.value.last_success_at is not None
        with pytest.raises(TemporalUnavailableError):
            await reader.get_release_hierarchy(unique("rel-cold"))
        with pytest.raises(TemporalUnavailableError):
            await reader.get_entity(f"{release_id}.wave-1")
        with pytest.raises(TemporalUnavailableError):
            await reader.check_ready()
        with pytest.raises(TemporalUnavailableError):
            await reader.get_live_state(f"{release_id}.wave-1")

        await server.start()  # same port, same database; the reader keeps its old client

        async def recovered() -> bool:
            try:
                tree = await reader.get_release_hierarchy(release_id)
            except TemporalUnavailableError:
                return False
            return tree.read_at > good.read_at

        await eventually(recovered, within=60, what="recovery after the restart")
        await reader.check_ready()
        assert (await reader.get_entity(f"{release_id}.wave-1")).entity.started
        await reader.aclose()
    finally:
        server.stop()
