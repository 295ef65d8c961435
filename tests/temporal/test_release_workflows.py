"""The reference workflows on a real dev server: shape, progress, failure, retries, visibility."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from relmgr import ids
from relmgr.models import Entity, EntityKind, EntityState
from relmgr.temporal.contract import (
    MEMO_DETAIL,
    SA_KIND,
    SA_LAST_CHANGE,
    SA_PARENT_ID,
    SA_STATE,
    EntityMemo,
)
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.factories import make_plan

pytestmark = pytest.mark.integration

FAST = DeployOptions(min_seconds=0.0, max_seconds=0.05, retry_seconds=0.2, parallelism=3)


def _name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _rows(client: Client, release_id: str) -> dict[str, Any]:
    rows = {}
    async for execution in client.list_workflows(f"RelmgrReleaseId = '{release_id}'"):
        rows[execution.id] = execution
    return rows


async def _wait_rows(client: Client, release_id: str, count: int) -> dict[str, Any]:
    # Visibility is eventually consistent: poll briefly until every row is there.
    for _ in range(100):
        rows = await _rows(client, release_id)
        if len(rows) >= count and all(
            r.status != WorkflowExecutionStatus.RUNNING for r in rows.values()
        ):
            return rows
        await asyncio.sleep(0.1)
    return await _rows(client, release_id)


async def test_release_runs_every_entity_to_succeeded(client: Client, worker: Worker) -> None:
    """A 2x3x1x2 release runs 1 + W + 2WC + WCA workflows, all SUCCEEDED, SAs == get_state."""
    release_id = ids.release_id(_name())
    plan = make_plan(waves=2, clusters=3, apps=2)
    handle = await start_release(client, release_id, plan, FAST, task_queue=worker.task_queue)
    outcome = await handle.result()
    assert outcome.state is EntityState.SUCCEEDED
    assert outcome.apps.succeeded == 12
    expected = 1 + 2 + 2 * 2 * 3 + 2 * 3 * 2
    rows = await _wait_rows(client, release_id, expected)
    assert len(rows) == expected == plan.entity_count
    kinds = [r.typed_search_attributes.get(SA_KIND) for r in rows.values()]
    assert sorted(kinds) == sorted(
        ["release"] + ["wave"] * 2 + ["cluster", "bundle"] * 6 + ["app"] * 12
    )
    for entity_id, row in rows.items():
        attrs = row.typed_search_attributes
        assert attrs.get(SA_STATE) == "SUCCEEDED", entity_id
        assert attrs.get(SA_PARENT_ID) == (ids.parse_entity_id(entity_id).parent_id or "")
        state: Entity = await client.get_workflow_handle(entity_id).query(
            "get_state", result_type=Entity
        )
        assert state.state.value == attrs.get(SA_STATE)
        assert state.last_changed_at == attrs.get(SA_LAST_CHANGE)
    memo = await rows[release_id].memo()
    detail = EntityMemo.model_validate(memo[MEMO_DETAIL])
    assert detail.apps is not None
    assert (detail.apps.succeeded, detail.apps.total) == (12, 12)
    assert (detail.current_wave, detail.waves_total) == (2, 2)


async def test_failing_app_fails_its_ancestors_and_stops_the_release(
    client: Client, worker: Worker
) -> None:
    """An app that always fails fails its bundle, cluster and wave; wave 2 never starts."""
    release_id = ids.release_id(_name())
    options = FAST.model_copy(update={"fail_apps": ("a2",), "max_attempts": 2})
    plan = make_plan(waves=2, clusters=1, apps=2)
    handle = await start_release(client, release_id, plan, options, task_queue=worker.task_queue)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    rows = await _wait_rows(client, release_id, 1 + 1 + 2 + 2)
    bundle = f"{release_id}.wave-1.cluster-c1.bundle-core"
    states = {i: r.typed_search_attributes.get(SA_STATE) for i, r in rows.items()}
    assert states == {
        release_id: "FAILED",
        f"{release_id}.wave-1": "FAILED",
        f"{release_id}.wave-1.cluster-c1": "FAILED",
        bundle: "FAILED",
        f"{bundle}.app-a1": "SUCCEEDED",
        f"{bundle}.app-a2": "FAILED",
    }
    app = await client.get_workflow_handle(f"{bundle}.app-a2").describe()
    detail = EntityMemo.model_validate((await app.memo())[MEMO_DETAIL])
    assert detail.attempt == 2
    assert detail.last_error is not None
    assert "attempt 2/2" in detail.last_error
    assert "simulated error" in detail.last_error


async def test_retrying_app_is_visible_without_a_worker(client: Client) -> None:
    """While an app waits to retry, describe() shows RETRYING, its attempt and last error."""
    release_id = ids.release_id(_name())
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    options = FAST.model_copy(update={"fail_apps": ("a1",), "retry_seconds": 60})
    plan = make_plan(waves=1, clusters=1, apps=1)
    app_id = f"{release_id}.wave-1.cluster-c1.bundle-core.app-a1"
    async with build_worker(client, task_queue=task_queue):
        await start_release(client, release_id, plan, options, task_queue=task_queue)
        for _ in range(100):
            try:
                desc = await client.get_workflow_handle(app_id).describe()
                if desc.typed_search_attributes.get(SA_STATE) == "RETRYING":
                    break
            except Exception:  # noqa: S110 - the app has not started yet
                pass
            await asyncio.sleep(0.1)
    # The worker is gone now: only the server answers.
    desc = await client.get_workflow_handle(app_id).describe()
    assert desc.typed_search_attributes.get(SA_STATE) == EntityState.RETRYING.value
    assert desc.typed_search_attributes.get(SA_KIND) == EntityKind.APP.value
    detail = EntityMemo.model_validate((await desc.memo())[MEMO_DETAIL])
    assert detail.attempt == 1
    assert detail.last_error == "deploy of a1 to c1 failed: simulated error (attempt 1)"
    # How many attempts it may take, and when it tries again: retry_seconds after the failure.
    assert detail.max_attempts == options.max_attempts
    assert detail.next_retry_at is not None
    changed = desc.typed_search_attributes.get(SA_LAST_CHANGE)
    assert changed is not None
    assert abs((detail.next_retry_at - changed).total_seconds() - 60) < 0.01
    await client.get_workflow_handle(release_id).terminate("test over")
