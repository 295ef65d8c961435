"""The controller's 5 s bound when the server is slow: a stand-in client whose reads take most of
the budget and whose Update never comes back (the server holding it for a worker that is gone).

The real-server tests (tests/temporal/test_controls.py) cover the same answer with a quick
server; these pin down the slow one, where the reads leave the Update less than its own timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from relmgr.control.controller import TOTAL_TIMEOUT_SECONDS, Controller
from relmgr.errors import ConflictError, WorkerUnavailableError
from relmgr.models import Control
from relmgr.temporal.contract import MEMO_CONTROLS
from relmgr.temporal.messages import ApproveRequest

RELEASE = "rel-slow-server"
TASK_QUEUE = "relmgr-slow"


class _SlowServer:
    """describe, describe_task_queue and update_workflow_execution as a slow server answers."""

    def __init__(self, read_seconds: float) -> None:
        self.read_seconds = read_seconds
        self.update_timeouts: list[float] = []

    async def describe(self, **_: Any) -> Any:
        await asyncio.sleep(self.read_seconds)
        memo = {MEMO_CONTROLS: Payload(data=json.dumps(["approve"]).encode())}
        info = SimpleNamespace(memo=SimpleNamespace(fields=memo))
        return SimpleNamespace(
            status=WorkflowExecutionStatus.RUNNING,
            task_queue=TASK_QUEUE,
            raw_description=SimpleNamespace(workflow_execution_info=info),
        )

    async def describe_task_queue(self, *_: Any, **__: Any) -> Any:
        await asyncio.sleep(self.read_seconds)
        return SimpleNamespace(pollers=["a worker that has just stopped"])

    async def update_workflow_execution(self, *_: Any, **kwargs: Any) -> Any:
        self.update_timeouts.append(kwargs["timeout"].total_seconds())
        await asyncio.sleep(3600)  # the server holds it: no worker answers


def _client(server: _SlowServer) -> Client:
    return cast(
        Client,
        SimpleNamespace(
            namespace="default",
            data_converter=pydantic_data_converter,
            workflow_service=server,
            get_workflow_handle=lambda _id: server,
        ),
    )


@pytest.mark.parametrize("read_seconds", [0.0, 0.9])
async def test_no_worker_is_named_within_the_bound_however_slow_the_reads(
    read_seconds: float,
) -> None:
    """With reads taking up to 1.8 s of the 4.8 s, the Update gets what is left and the answer
    is "no worker answered" (naming the task queue), never a generic timeout, within 5 s."""
    server = _SlowServer(read_seconds)
    controller = Controller(_client(server))
    started = time.monotonic()
    with pytest.raises(WorkerUnavailableError) as raised:
        await controller.send(
            Control.APPROVE, RELEASE, ApproveRequest(user="ana", wave=2), request_id="r-1"
        )
    elapsed = time.monotonic() - started
    print(f"reads {read_seconds:.1f} s each: answered in {elapsed:.2f} s")
    assert elapsed < 5.0
    assert raised.value.task_queue == TASK_QUEUE
    assert f"no worker on task queue {TASK_QUEUE} answered" in raised.value.message
    [update_timeout] = server.update_timeouts
    assert update_timeout <= TOTAL_TIMEOUT_SECONDS - 2 * read_seconds


class _ClosingServer(_SlowServer):
    """Describes the release as running, then answers its Update "not found": it closed between."""

    def __init__(self, message: str) -> None:
        super().__init__(0.0)
        self.message = message

    async def update_workflow_execution(self, *_: Any, **__: Any) -> Any:
        raise RPCError(self.message, RPCStatusCode.NOT_FOUND, b"")


@pytest.mark.parametrize(
    "message", ["workflow execution already completed", f"workflow not found for ID: {RELEASE}"]
)
async def test_a_workflow_that_closes_between_describe_and_update_has_finished(
    message: str,
) -> None:
    """However the server words "not found" for an Update to a workflow that was running a moment
    before, the operator is told it has finished (409), not that it does not exist (404)."""
    controller = Controller(_client(_ClosingServer(message)))
    with pytest.raises(ConflictError, match=f"^release {RELEASE} has finished; there is nothing"):
        await controller.send(
            Control.APPROVE, RELEASE, ApproveRequest(user="ana", wave=2), request_id="r-2"
        )
