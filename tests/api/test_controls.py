"""Control routes and the audit trail, on a real dev server: every status, and what is recorded."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from relmgr import ids
from relmgr.api import create_app
from relmgr.control.controller import Controller
from relmgr.reader import TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.contract import SA_STATE
from relmgr.temporal.messages import DeployOptions, OnFailure
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.factories import make_plan
from tests.api.conftest import claims_for, http_client, sign

pytestmark = pytest.mark.integration

FAST = DeployOptions(min_seconds=0.0, max_seconds=0.05, retry_seconds=0.2, parallelism=3)


def _as(username: str) -> dict[str, str]:
    """Headers with a valid token for `username` (made once the users file, and its epochs,
    exist: a token carries its user's session epoch)."""
    return {"Authorization": f"Bearer {sign(claims_for(username, lifetime=3600))}"}


@pytest.fixture
async def worker(client: Client) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own."""
    async with build_worker(client, task_queue=f"tq-{uuid.uuid4().hex[:8]}") as w:
        yield w


@pytest.fixture
async def api(client: Client, settings_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the production reader and controller of the session's dev server."""
    settings: Settings = settings_for(refresh_seconds=0.3)
    reader = TemporalReader.from_client(client, settings)
    reader.start()
    app = create_app(settings, reader=reader, controller=Controller(client))
    try:
        async with http_client(app) as http:
            yield http
    finally:
        await reader.aclose()


@pytest.fixture
def audit_lines(settings_for: Any) -> Any:
    """The control records of the test's audit log file."""
    path: Path = settings_for().audit_log

    def read() -> list[dict[str, Any]]:
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in entries if e["event"] == "control"]

    return read


async def _wait_state(client: Client, entity_id: str, state: str) -> None:
    for _ in range(400):
        try:
            desc = await client.get_workflow_handle(entity_id).describe()
            if desc.typed_search_attributes.get(SA_STATE) == state:
                return
        except Exception:  # noqa: S110 - not started yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{entity_id} never reached {state}")


async def _gated(client: Client, task_queue: str, waves: int = 3) -> str:
    release_id = ids.release_id(f"t-{uuid.uuid4().hex[:10]}")
    await start_release(
        client,
        release_id,
        make_plan(waves=waves, clusters=1, apps=1),
        FAST,
        task_queue=task_queue,
        approval_gates=True,
    )
    await _wait_state(client, ids.wave_id(release_id, 2), "AWAITING_APPROVAL")
    return release_id


async def _event_count(client: Client, workflow_id: str) -> int:
    return len((await client.get_workflow_handle(workflow_id).fetch_history()).events)


async def _accepted(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kind = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for e in history.events
        if e.event_type == kind
    ]


def _action(release_id: str, action: str) -> str:
    return f"/api/releases/{release_id}/actions/{action}"


async def test_operator_approves_once_per_request_id_and_the_trail_shows_it(
    api: httpx.AsyncClient, client: Client, worker: Worker, audit_lines: Any
) -> None:
    """200 with outcome and state; the same request_id twice acts once; audit log and memo agree."""
    release_id = await _gated(client, worker.task_queue)
    body = {"wave": 2, "reason": "canary ok", "request_id": "req-approve-1"}
    first = await api.post(_action(release_id, "approve"), json=body, headers=_as("operator"))
    second = await api.post(_action(release_id, "approve"), json=body, headers=_as("operator"))
    assert first.status_code == 200, first.text
    assert first.json() == {
        "outcome": "accepted",
        "action": "approve",
        "entity_id": release_id,
        "state": "IN_PROGRESS",
        "message": "wave 2 approved; it starts now",
        "request_id": "req-approve-1",
    }
    assert second.json() == first.json()
    assert await _accepted(client, release_id) == ["req-approve-1"]
    await _wait_state(client, ids.wave_id(release_id, 2), "SUCCEEDED")
    [line, _] = audit_lines()
    assert {k: line[k] for k in ("user", "role", "action", "target", "reason", "outcome")} == {
        "user": "operator",
        "role": "operator",
        "action": "approve",
        "target": release_id,
        "reason": "canary ok",
        "outcome": "accepted",
    }
    for _ in range(100):
        trail = (await api.get(f"/api/audit?release_id={release_id}", headers=_as("viewer"))).json()
        if [i["source"] for i in trail["items"]] == ["temporal"]:
            break
        await asyncio.sleep(0.1)
    [item] = trail["items"]
    assert (item["user"], item["action"], item["target"], item["request_id"]) == (
        "operator",
        "approve",
        ids.wave_id(release_id, 2),
        "req-approve-1",
    )


async def test_viewer_and_signed_out_requests_change_nothing(
    api: httpx.AsyncClient, client: Client, worker: Worker, audit_lines: Any
) -> None:
    """403 for a viewer, 401 without a token; the release's history has not grown."""
    release_id = await _gated(client, worker.task_queue)
    before = await _event_count(client, release_id)
    forbidden = await api.post(
        _action(release_id, "cancel"), json={"reason": "stop"}, headers=_as("viewer")
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == {
        "code": "forbidden",
        "message": "viewer has the viewer role; control needs the operator role or higher",
        "details": {"role": "viewer"},
    }
    anonymous = await api.post(_action(release_id, "cancel"), json={"reason": "stop"})
    assert anonymous.status_code == 401
    assert await _event_count(client, release_id) == before
    assert [(e["user"], e["outcome"]) for e in audit_lines()] == [("viewer", "forbidden")]


async def test_refusals_answer_404_409_and_422_with_why(
    api: httpx.AsyncClient, client: Client, worker: Worker, audit_lines: Any
) -> None:
    """Unknown release 404; another wave 409 saying why; bad bodies 422; all leave no history."""
    release_id = await _gated(client, worker.task_queue)
    before = await _event_count(client, release_id)
    unknown = await api.post(
        _action("rel-no-such-release", "pause"), json={}, headers=_as("operator")
    )
    assert unknown.status_code == 404
    conflict = await api.post(
        _action(release_id, "approve"), json={"wave": 3}, headers=_as("operator")
    )
    assert conflict.status_code == 409
    assert conflict.json()["error"]["message"] == "wave 3 is PENDING; wave 2 is awaiting approval"
    no_reason = await api.post(_action(release_id, "cancel"), json={}, headers=_as("operator"))
    assert no_reason.status_code == 422
    assert "'reason': Field required" in no_reason.json()["error"]["message"]
    blank = await api.post(
        _action(release_id, "cancel"), json={"reason": "  "}, headers=_as("operator")
    )
    assert blank.status_code == 422
    too_long = await api.post(
        _action(release_id, "cancel"), json={"reason": "x" * 501}, headers=_as("operator")
    )
    assert too_long.status_code == 422
    no_wave = await api.post(_action(release_id, "approve"), json={}, headers=_as("operator"))
    assert no_wave.status_code == 422
    bad_id = await api.post(_action("REL_1", "pause"), json={}, headers=_as("operator"))
    assert bad_id.status_code == 422
    assert "expected release" in bad_id.json()["error"]["message"]
    unknown_action = await api.post(
        _action(release_id, "explode"), json={}, headers=_as("operator")
    )
    assert unknown_action.status_code == 422
    extra = await api.post(
        _action(release_id, "pause"), json={"force": True}, headers=_as("operator")
    )
    assert extra.status_code == 422
    assert await _event_count(client, release_id) == before
    # Every attempt is recorded, the malformed ones (refused before their handler) too.
    outcomes = [e["outcome"] for e in audit_lines()]
    assert outcomes == ["not_found", "conflict"] + ["invalid"] * 7


async def test_no_worker_answers_503_with_retry_after_within_5_s(
    api: httpx.AsyncClient, client: Client
) -> None:
    """With the worker stopped, approve is 503 naming the task queue, and nothing is accepted."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=task_queue):
        release_id = await _gated(client, task_queue, waves=2)
    started = time.monotonic()
    response = await api.post(
        _action(release_id, "approve"), json={"wave": 2}, headers=_as("admin")
    )
    elapsed = time.monotonic() - started
    print(f"approve with no worker: {response.status_code} in {elapsed:.2f} s")
    assert response.status_code == 503
    assert elapsed < 5.0
    assert response.headers["Retry-After"] == "2"
    error = response.json()["error"]
    assert error["code"] == "worker_unavailable"
    assert task_queue in error["message"]
    assert await _accepted(client, release_id) == []
    await client.get_workflow_handle(release_id).terminate("test over")


async def test_a_reason_with_html_and_markdown_is_stored_and_returned_verbatim(
    api: httpx.AsyncClient, client: Client, worker: Worker
) -> None:
    """Cancel with a reason full of markup: the trail returns it exactly as it was sent."""
    release_id = await _gated(client, worker.task_queue)
    reason = "<script>alert('x')</script> **bold** [link](javascript:alert(1)) & \"quotes\""
    response = await api.post(
        _action(release_id, "cancel"), json={"reason": reason}, headers=_as("operator")
    )
    assert response.status_code == 200, response.text
    await _wait_state(client, release_id, "CANCELLED")
    for _ in range(100):
        trail = (await api.get(f"/api/audit?release_id={release_id}", headers=_as("viewer"))).json()
        if any(i["source"] == "temporal" for i in trail["items"]):
            break
        await asyncio.sleep(0.1)
    [item] = trail["items"]
    assert (item["action"], item["reason"], item["source"]) == ("cancel", reason, "temporal")


async def test_audit_trail_merges_refusals_newest_first_and_filters(
    api: httpx.AsyncClient, client: Client, worker: Worker
) -> None:
    """A refused attempt (log) and an accepted one (Temporal) come back newest first, filtered."""
    release_id = await _gated(client, worker.task_queue)
    await api.post(_action(release_id, "pause"), json={"reason": "r1"}, headers=_as("viewer"))
    accepted = await api.post(
        _action(release_id, "pause"), json={"reason": "r2"}, headers=_as("admin")
    )
    assert accepted.status_code == 200
    for _ in range(100):
        trail = (await api.get(f"/api/audit?release_id={release_id}", headers=_as("viewer"))).json()
        if len(trail["items"]) == 2 and trail["items"][0]["source"] == "temporal":
            break
        await asyncio.sleep(0.1)
    assert [(i["user"], i["outcome"], i["reason"], i["source"]) for i in trail["items"]] == [
        ("admin", "accepted", "r2", "temporal"),
        ("viewer", "forbidden", "r1", "audit_log"),
    ]
    only_viewer = await api.get(
        f"/api/audit?release_id={release_id}&user=viewer", headers=_as("admin")
    )
    assert [i["reason"] for i in only_viewer.json()["items"]] == ["r1"]
    later = trail["items"][0]["at"]
    since = await api.get(
        "/api/audit", params={"release_id": release_id, "since": later}, headers=_as("admin")
    )
    assert [i["reason"] for i in since.json()["items"]] == ["r2"]
    bad = await api.get("/api/audit?user=Not%20A%20User", headers=_as("admin"))
    assert bad.status_code == 422
    await api.post(_action(release_id, "cancel"), json={"reason": "done"}, headers=_as("admin"))


async def test_operator_retries_a_held_app(
    api: httpx.AsyncClient, client: Client, worker: Worker
) -> None:
    """A held app is retried through the API and the release then succeeds; a viewer may not."""
    release_id = ids.release_id(f"t-{uuid.uuid4().hex[:10]}")
    options = FAST.model_copy(
        update={
            "fail_apps": ("a1",),
            "fail_attempts": 1,
            "max_attempts": 1,
            "on_failure": OnFailure.HOLD,
        }
    )
    await start_release(
        client,
        release_id,
        make_plan(waves=1, clusters=1, apps=1),
        options,
        task_queue=worker.task_queue,
    )
    app_id = f"{release_id}.wave-1.cluster-c1.bundle-core.app-a1"
    await _wait_state(client, app_id, "FAILED")
    path = f"/api/entities/{app_id}/actions/retry"
    assert (await api.post(path, json={}, headers=_as("viewer"))).status_code == 403
    wrong_kind = await api.post(
        f"/api/entities/{release_id}/actions/retry", json={}, headers=_as("operator")
    )
    assert wrong_kind.status_code == 422
    response = await api.post(path, json={"reason": "flaky network"}, headers=_as("operator"))
    assert response.status_code == 200, response.text
    assert response.json()["entity_id"] == app_id
    await _wait_state(client, release_id, "SUCCEEDED")
