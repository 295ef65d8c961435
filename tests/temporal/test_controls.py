"""Controls on a real dev server: approve, pause, resume, cancel and retry via the controller."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from relmgr import ids
from relmgr.cli.devserver import find_temporal_binary
from relmgr.control.controller import Controller
from relmgr.errors import ConflictError, WorkerUnavailableError
from relmgr.models import Control, EntityState
from relmgr.temporal.contract import MEMO_AUDIT, MEMO_CONTROLS, MEMO_DETAIL, SA_STATE, EntityMemo
from relmgr.temporal.messages import (
    ApproveRequest,
    CancelRequest,
    DeployOptions,
    OnFailure,
    Outcome,
    PauseRequest,
    ResumeRequest,
    RetryRequest,
)
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.factories import make_plan

pytestmark = pytest.mark.integration

FAST = DeployOptions(min_seconds=0.0, max_seconds=0.05, retry_seconds=0.2, parallelism=3)


def _release_id() -> str:
    return ids.release_id(f"t-{uuid.uuid4().hex[:10]}")


def _rid() -> str:
    return uuid.uuid4().hex


async def _state(client: Client, entity_id: str) -> str | None:
    try:
        desc = await client.get_workflow_handle(entity_id).describe()
    except Exception:  # not started yet
        return None
    return desc.typed_search_attributes.get(SA_STATE)


async def _wait_state(client: Client, entity_id: str, *states: str, within: float = 20) -> str:
    deadline = time.monotonic() + within
    seen: str | None = None
    while time.monotonic() < deadline:
        seen = await _state(client, entity_id)
        if seen in states:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"{entity_id} never reached {states}; last seen {seen}")


async def _history(client: Client, workflow_id: str) -> list[Any]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


def _accepted_updates(events: list[Any]) -> list[Any]:
    kind = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return [e for e in events if e.event_type == kind]


async def _gated(client: Client, worker: Worker, waves: int = 3) -> str:
    release_id = _release_id()
    await start_release(
        client,
        release_id,
        make_plan(waves=waves, clusters=1, apps=1),
        FAST,
        task_queue=worker.task_queue,
        approval_gates=True,
    )
    await _wait_state(client, ids.wave_id(release_id, 2), "AWAITING_APPROVAL")
    return release_id


async def test_gated_wave_waits_and_approval_of_another_wave_is_refused(
    client: Client, worker: Worker
) -> None:
    """Wave 2 waits AWAITING_APPROVAL; approving wave 3 is refused, saying why, with no history."""
    controller = Controller(client)
    release_id = await _gated(client, worker)
    assert await _wait_state(client, release_id, "AWAITING_APPROVAL") == "AWAITING_APPROVAL"
    assert await _state(client, ids.wave_id(release_id, 1)) == "SUCCEEDED"
    before = await _history(client, release_id)
    with pytest.raises(ConflictError) as refused:
        await controller.send(
            Control.APPROVE,
            release_id,
            ApproveRequest(user="ana", wave=3, reason="ok"),
            request_id=_rid(),
        )
    assert refused.value.message == "wave 3 is PENDING; wave 2 is awaiting approval"
    assert len(await _history(client, release_id)) == len(before)
    result = await controller.send(
        Control.APPROVE, release_id, ApproveRequest(user="ana", wave=2), request_id=_rid()
    )
    assert result.message == "wave 2 approved; it starts now"
    await _wait_state(client, ids.wave_id(release_id, 2), "SUCCEEDED")
    await _wait_state(client, ids.wave_id(release_id, 3), "AWAITING_APPROVAL")
    with pytest.raises(ConflictError, match="wave 2 is already approved"):
        await controller.send(
            Control.APPROVE, release_id, ApproveRequest(user="ana", wave=2), request_id=_rid()
        )


async def test_same_request_id_approves_once_and_history_names_the_operator(
    client: Client, worker: Worker
) -> None:
    """A repeated request ID acts once; the accepted Update carries "<user> (relmgr)" and input."""
    controller = Controller(client)
    release_id = await _gated(client, worker, waves=2)
    request_id = _rid()
    request = ApproveRequest(user="ana", role="operator", wave=2, reason="<b>canary</b> *ok*")
    first = await controller.send(Control.APPROVE, release_id, request, request_id=request_id)
    second = await controller.send(Control.APPROVE, release_id, request, request_id=request_id)
    assert first == second
    outcome = await client.get_workflow_handle(release_id, result_type=Outcome).result()
    assert outcome.state is EntityState.SUCCEEDED
    accepted = _accepted_updates(await _history(client, release_id))
    assert len(accepted) == 1
    attributes = accepted[0].workflow_execution_update_accepted_event_attributes
    assert attributes.accepted_request.meta.identity == "ana (relmgr)"
    assert attributes.accepted_request.meta.update_id == request_id
    assert attributes.accepted_request.input.name == "approve"
    [sent] = await client.data_converter.decode(
        attributes.accepted_request.input.args.payloads, [ApproveRequest]
    )
    assert (sent.user, sent.wave, sent.reason) == ("ana", 2, "<b>canary</b> *ok*")
    memo = await (await client.get_workflow_handle(release_id).describe()).memo()
    [record] = memo[MEMO_AUDIT]
    assert record["user"] == "ana"
    assert record["role"] == "operator"
    assert record["action"] == "approve"
    assert record["target"] == ids.wave_id(release_id, 2)
    assert record["reason"] == "<b>canary</b> *ok*"
    assert record["request_id"] == request_id
    assert memo[MEMO_CONTROLS] == ["approve", "pause", "resume", "cancel"]


async def test_pause_lets_the_running_wave_finish_and_starts_no_new_wave_until_resumed(
    client: Client, worker: Worker
) -> None:
    """PAUSED at once; wave 1 finishes; wave 2 starts only after resume; refusals say why."""
    controller = Controller(client)
    release_id = _release_id()
    slow = FAST.model_copy(update={"min_seconds": 1.0, "max_seconds": 1.0})
    handle = await start_release(
        client,
        release_id,
        make_plan(waves=2, clusters=1, apps=1),
        slow,
        task_queue=worker.task_queue,
    )
    await _wait_state(client, ids.wave_id(release_id, 1), "IN_PROGRESS")
    paused = await controller.send(
        Control.PAUSE, release_id, PauseRequest(user="ana"), request_id=_rid()
    )
    assert paused.state is EntityState.PAUSED
    assert await _state(client, release_id) == "PAUSED"
    with pytest.raises(ConflictError, match="is already paused"):
        await controller.send(
            Control.PAUSE, release_id, PauseRequest(user="ana"), request_id=_rid()
        )
    await _wait_state(client, ids.wave_id(release_id, 1), "SUCCEEDED")
    # The release reacts to wave 1's end in one workflow task: once that task completed, a wave
    # 2 it were going to start would be in history.
    wave_done = EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    task_done = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    for _ in range(200):
        events = await _history(client, release_id)
        kinds = [e.event_type for e in events]
        if wave_done in kinds and task_done in kinds[kinds.index(wave_done) :]:
            break
        await asyncio.sleep(0.05)
    started = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    starts = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.event_type == started
    ]
    assert starts == [ids.wave_id(release_id, 1)]
    assert await _state(client, release_id) == "PAUSED"
    resumed = await controller.send(
        Control.RESUME, release_id, ResumeRequest(user="ana"), request_id=_rid()
    )
    assert resumed.state is EntityState.IN_PROGRESS
    assert (await handle.result()).state is EntityState.SUCCEEDED
    with pytest.raises(ConflictError, match="has finished"):
        await controller.send(
            Control.RESUME, release_id, ResumeRequest(user="ana"), request_id=_rid()
        )


async def test_resume_of_a_running_release_is_refused(client: Client, worker: Worker) -> None:
    """Resume is refused unless the release is paused."""
    controller = Controller(client)
    release_id = await _gated(client, worker, waves=2)
    with pytest.raises(ConflictError) as refused:
        await controller.send(
            Control.RESUME, release_id, ResumeRequest(user="ana"), request_id=_rid()
        )
    assert refused.value.message == f"release {release_id} is not paused (it is AWAITING_APPROVAL)"


async def test_cancel_needs_a_reason_and_ends_every_started_entity_cancelled(
    client: Client, worker: Worker
) -> None:
    """A cancel without reason is refused; with one, the waiting wave and release end CANCELLED."""
    controller = Controller(client)
    release_id = await _gated(client, worker, waves=3)
    with pytest.raises(ConflictError, match="a reason is required to cancel a release"):
        await controller.send(
            Control.CANCEL, release_id, CancelRequest(user="ana", reason="  "), request_id=_rid()
        )
    await controller.send(
        Control.CANCEL,
        release_id,
        CancelRequest(user="ana", reason="bad canary"),
        request_id=_rid(),
    )
    outcome = await client.get_workflow_handle(release_id, result_type=Outcome).result()
    assert outcome.state is EntityState.CANCELLED
    assert outcome.error == "cancelled by ana: bad canary"
    await _wait_state(client, ids.wave_id(release_id, 2), "CANCELLED")
    rows = {}
    async for row in client.list_workflows(f"RelmgrReleaseId = '{release_id}'"):
        rows[row.id] = row
    assert ids.wave_id(release_id, 3) not in rows  # never started: CANCELLED through the plan
    for entity_id in rows:
        desc = await client.get_workflow_handle(entity_id).describe()
        assert desc.status is not WorkflowExecutionStatus.RUNNING, entity_id
        assert desc.status is not WorkflowExecutionStatus.TERMINATED, entity_id
    assert await _state(client, release_id) == "CANCELLED"
    assert await _state(client, ids.wave_id(release_id, 1)) == "SUCCEEDED"


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.06, 0.1])
async def test_cancel_racing_wave_completion_leaves_nothing_running(
    client: Client, worker: Worker, delay: float
) -> None:
    """Cancelling as a wave ends leaves every entity finished, none RUNNING, none terminated."""
    controller = Controller(client)
    release_id = _release_id()
    handle = await start_release(
        client,
        release_id,
        make_plan(waves=3, clusters=2, apps=2),
        FAST,
        task_queue=worker.task_queue,
    )
    await _wait_state(client, ids.wave_id(release_id, 1), "SUCCEEDED", "IN_PROGRESS")
    await asyncio.sleep(delay)  # a few moments around wave 1's end, to race it
    refusal = ""
    try:
        await controller.send(
            Control.CANCEL, release_id, CancelRequest(user="ana", reason="race"), request_id=_rid()
        )
    except ConflictError as exc:
        refusal = exc.message
    # The release may win the race (it had succeeded): then, and only then, cancel is refused.
    assert refusal in (
        "",
        f"release {release_id} has finished (completed); there is nothing to cancel",
    )
    outcome = await handle.result()
    assert outcome.state in (EntityState.CANCELLED, EntityState.SUCCEEDED)
    for _ in range(100):
        open_rows = [
            row.id
            async for row in client.list_workflows(
                f"RelmgrReleaseId = '{release_id}' AND ExecutionStatus = 'Running'"
            )
        ]
        if not open_rows:
            break
        await asyncio.sleep(0.1)
    assert open_rows == []
    async for row in client.list_workflows(f"RelmgrReleaseId = '{release_id}'"):
        assert row.status is not WorkflowExecutionStatus.TERMINATED, row.id
        state = row.typed_search_attributes.get(SA_STATE)
        assert state in ("SUCCEEDED", "CANCELLED"), (row.id, state)


async def test_held_app_holds_its_wave_until_an_operator_retries_it(
    client: Client, worker: Worker
) -> None:
    """With on_failure=hold a failed app stays FAILED and the release running; retry redeploys,
    once for a request sent twice."""
    controller = Controller(client)
    release_id = _release_id()
    options = FAST.model_copy(
        update={
            "fail_apps": ("a2",),
            "fail_attempts": 1,
            "max_attempts": 1,
            "on_failure": OnFailure.HOLD,
        }
    )
    handle = await start_release(
        client,
        release_id,
        make_plan(waves=1, clusters=1, apps=2),
        options,
        task_queue=worker.task_queue,
    )
    bundle = f"{release_id}.wave-1.cluster-c1.bundle-core"
    app_id = f"{bundle}.app-a2"
    await _wait_state(client, app_id, "FAILED")
    desc = await client.get_workflow_handle(app_id).describe()
    assert desc.status is WorkflowExecutionStatus.RUNNING
    detail = EntityMemo.model_validate((await desc.memo())[MEMO_DETAIL])
    assert (
        detail.last_error == "attempt 1/1: deploy of a2 to c1 failed: simulated error (attempt 1)"
    )
    for _ in range(100):
        release = await client.get_workflow_handle(release_id).describe()
        release_memo = EntityMemo.model_validate((await release.memo())[MEMO_DETAIL])
        if release_memo.held:
            break
        await asyncio.sleep(0.05)
    assert release_memo.held == (app_id,)
    assert release.typed_search_attributes.get(SA_STATE) == "IN_PROGRESS"
    assert await _state(client, ids.wave_id(release_id, 1)) == "IN_PROGRESS"
    # a1 succeeded; its workflow may take a moment more to close (until then a retry is refused
    # as "only an app held after a failed deploy can be retried").
    await client.get_workflow_handle(f"{bundle}.app-a1").result()
    with pytest.raises(ConflictError, match="has finished"):
        await controller.send(
            Control.RETRY, f"{bundle}.app-a1", RetryRequest(user="ana"), request_id=_rid()
        )
    # A double click: the same request twice at once retries once (one more attempt, one record).
    request_id = _rid()
    retried, again = await asyncio.gather(
        *(
            controller.send(
                Control.RETRY,
                app_id,
                RetryRequest(user="ana", reason="flaky"),
                request_id=request_id,
            )
            for _ in range(2)
        )
    )
    assert retried.state is again.state is EntityState.IN_PROGRESS
    assert (await handle.result()).state is EntityState.SUCCEEDED
    assert len(_accepted_updates(await _history(client, app_id))) == 1
    app = await client.get_workflow_handle(app_id).describe()
    assert EntityMemo.model_validate((await app.memo())[MEMO_DETAIL]).attempt == 2
    memo = await (await client.get_workflow_handle(release_id).describe()).memo()
    assert [(r["action"], r["target"], r["reason"]) for r in memo[MEMO_AUDIT]] == [
        ("retry", app_id, "flaky")
    ]
    assert EntityMemo.model_validate(memo[MEMO_DETAIL]).held == ()


async def test_a_release_without_gates_does_not_accept_approve(
    client: Client, worker: Worker
) -> None:
    """Approve is not advertised for a release started without gates: refused before sending."""
    controller = Controller(client)
    release_id = _release_id()
    slow = FAST.model_copy(update={"min_seconds": 5.0, "max_seconds": 5.0})
    await start_release(
        client,
        release_id,
        make_plan(waves=1, clusters=1, apps=1),
        slow,
        task_queue=worker.task_queue,
    )
    with pytest.raises(ConflictError, match="does not accept approve"):
        await controller.send(
            Control.APPROVE, release_id, ApproveRequest(user="ana", wave=1), request_id=_rid()
        )
    await client.get_workflow_handle(release_id).terminate("test over")


async def test_no_worker_answers_503_within_5_s_and_a_late_worker_refuses_it(
    client: Client,
) -> None:
    """With the worker stopped, approve fails within 5 s; a worker started later does not act."""
    controller = Controller(client)
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    release_id = _release_id()
    async with build_worker(client, task_queue=task_queue):
        await start_release(
            client,
            release_id,
            make_plan(waves=2, clusters=1, apps=1),
            FAST,
            task_queue=task_queue,
            approval_gates=True,
        )
        await _wait_state(client, ids.wave_id(release_id, 2), "AWAITING_APPROVAL")
    started = time.monotonic()
    stale_id = _rid()
    with pytest.raises(WorkerUnavailableError) as unavailable:
        await controller.send(
            Control.APPROVE, release_id, ApproveRequest(user="ana", wave=2), request_id=stale_id
        )
    elapsed = time.monotonic() - started
    print(f"approve with no worker answered in {elapsed:.2f} s: {unavailable.value.message}")
    assert elapsed < 5.0
    assert unavailable.value.task_queue == task_queue
    assert task_queue in unavailable.value.message
    async with build_worker(client, task_queue=task_queue):
        fresh_id = _rid()
        await controller.send(
            Control.APPROVE, release_id, ApproveRequest(user="bob", wave=2), request_id=fresh_id
        )
        assert (
            await client.get_workflow_handle(release_id, result_type=Outcome).result()
        ).state is (EntityState.SUCCEEDED)
    accepted = _accepted_updates(await _history(client, release_id))
    ids_accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for e in accepted
    ]
    assert ids_accepted == [fresh_id]


async def test_temporal_workflow_show_names_the_operator(client: Client, worker: Worker) -> None:
    """`temporal workflow show` (the CLI operators use) shows who approved, with their input."""
    release_id = await _gated(client, worker, waves=2)
    await Controller(client).send(
        Control.APPROVE, release_id, ApproveRequest(user="ana", wave=2), request_id="show-me"
    )
    target = client.service_client.config.target_host
    where = ["--address", target, "--namespace", client.namespace]
    shown = await asyncio.to_thread(
        subprocess.run,
        [str(find_temporal_binary()), "workflow", "show", *where, "-w", release_id, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    events = json.loads(shown.stdout)["events"]
    accepted = [e for e in events if "workflowExecutionUpdateAcceptedEventAttributes" in e]
    assert len(accepted) == 1
    meta = accepted[0]["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]
    assert meta["meta"] == {"updateId": "show-me", "identity": "ana (relmgr)"}
    assert meta["input"]["name"] == "approve"
