"""The controller: sends an operator's action to Temporal as an Update (it loads the SDK).

    controller = Controller(client)
    result = await controller.send(Control.APPROVE, "rel-x", ApproveRequest(user="ana", wave=2),
                                   request_id="7f3c...")

Before sending, one `describe()` of the target says whether it exists (404), still runs and
advertises the control in its `relmgr.controls` memo (409 otherwise), and which task queue serves
it; a task queue that no worker polls is refused at once (503). The Update is then sent with the
request ID as its Update ID (a repeated request acts once) and the identity `"<user> (relmgr)"`
(the workflow's history names the operator), and waited for at most `timeout` seconds. A request
no worker took in time answers 503, and the workflow refuses it if a worker takes it later (the
request's `expires_at`), so nothing happens behind the back of someone told it did not.

Every Temporal failure leaves as a `relmgr.errors` error: ConflictError (the validator's refusal,
its message says why), NotFoundError, WorkerUnavailableError, TemporalUnavailableError.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.update.v1 import Input, Meta, WaitPolicy
from temporalio.api.update.v1 import Request as UpdateRequest
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    UpdateWorkflowExecutionRequest,
    UpdateWorkflowExecutionResponse,
)
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from relmgr import ids
from relmgr.errors import (
    ConflictError,
    InvalidIdError,
    TemporalUnavailableError,
    WorkerUnavailableError,
)
from relmgr.models import Control, EntityKind
from relmgr.temporal.client import temporal_errors
from relmgr.temporal.contract import MEMO_CONTROLS
from relmgr.temporal.messages import ControlRequest, ControlResult

# Seconds an Update may take before relmgr answers "no worker answered" (the API adds its own
# reads to this and still answers within 5 s).
UPDATE_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 1.0
# The bound of a whole control, reads and Update together: the API answers within 5 s.
TOTAL_TIMEOUT_SECONDS = 4.8
# Kept free of the Update's timeout inside the whole bound (the answer's own decoding).
_MARGIN_SECONDS = 0.4
# The kind of entity each control goes to.
TARGET_KIND: dict[Control, EntityKind] = {
    Control.APPROVE: EntityKind.RELEASE,
    Control.PAUSE: EntityKind.RELEASE,
    Control.RESUME: EntityKind.RELEASE,
    Control.CANCEL: EntityKind.RELEASE,
    Control.RETRY: EntityKind.APP,
}
_COMPLETED = (
    UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
)


def identity_of(username: str) -> str:
    """The identity relmgr sends for a user: it is what Temporal's history shows."""
    return f"{username} (relmgr)"


class Controller:
    """Sends controls to Temporal; holds nothing but the client, so one serves every request."""

    def __init__(
        self,
        client: Client,
        *,
        timeout: float = UPDATE_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._read_timeout = read_timeout

    async def send(
        self,
        action: Control,
        target_id: str,
        request: ControlRequest,
        *,
        request_id: str,
    ) -> ControlResult:
        """Send `action` to the entity `target_id` as `request.user`; its result, or an error."""
        ids.parse_entity_id(target_id, kind=TARGET_KIND[action])
        if not request_id or len(request_id) > 200:
            raise InvalidIdError(
                "request_id must be 1-200 characters",
                value=request_id[:80],
                expected="1-200 characters, e.g. a UUID",
            )
        deadline = time.monotonic() + TOTAL_TIMEOUT_SECONDS
        try:
            return await asyncio.wait_for(
                self._send(action, target_id, request, request_id, deadline),
                TOTAL_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            raise TemporalUnavailableError(
                f"Temporal did not answer {action.value} for {target_id} within "
                f"{TOTAL_TIMEOUT_SECONDS:.0f} s; nothing was changed: try again"
            ) from None

    async def _send(
        self,
        action: Control,
        target_id: str,
        request: ControlRequest,
        request_id: str,
        deadline: float,
    ) -> ControlResult:
        description = await self._describe(target_id)
        self._check_running(action, target_id, description)
        task_queue = description.task_queue
        await self._check_pollers(task_queue)
        # The Update gets what is left of the whole bound (slow reads on a busy server eat into
        # it), so that when no worker answers, its own timeout says so before the bound's
        # "Temporal did not answer" does.
        timeout = min(self._timeout, max(deadline - time.monotonic() - _MARGIN_SECONDS, 0.1))
        stale_at = datetime.now(UTC) + timedelta(seconds=timeout)
        request = request.model_copy(update={"expires_at": stale_at})
        return await self._update(action, target_id, request, request_id, task_queue, timeout)

    async def _describe(self, target_id: str) -> WorkflowExecutionDescription:
        what = f"reading {target_id} before a control"
        with temporal_errors(entity_id=target_id, what=what):
            handle = self._client.get_workflow_handle(target_id)
            return await asyncio.wait_for(
                handle.describe(rpc_timeout=timedelta(seconds=self._read_timeout)),
                self._read_timeout + 0.5,
            )

    def _check_running(
        self, action: Control, target_id: str, description: WorkflowExecutionDescription
    ) -> None:
        kind = TARGET_KIND[action].value
        if description.status is not WorkflowExecutionStatus.RUNNING:
            status = description.status.name.lower() if description.status else "closed"
            raise ConflictError(
                f"{kind} {target_id} has finished ({status}); there is nothing to {action.value}",
                entity_id=target_id,
            )
        memo = description.raw_description.workflow_execution_info.memo.fields
        advertised = _advertised(memo.get(MEMO_CONTROLS))
        if action.value not in advertised:
            offered = ", ".join(sorted(advertised)) or "none"
            raise ConflictError(
                f"{kind} {target_id} does not accept {action.value} (its workflow advertises "
                f"these controls in memo {MEMO_CONTROLS}: {offered})",
                entity_id=target_id,
            )

    async def _check_pollers(self, task_queue: str) -> None:
        request = DescribeTaskQueueRequest(
            namespace=self._client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        with temporal_errors(what=f"asking which workers poll task queue {task_queue}"):
            answer = await self._client.workflow_service.describe_task_queue(
                request, retry=True, timeout=timedelta(seconds=self._read_timeout)
            )
        if not answer.pollers:
            raise _no_worker(task_queue)

    async def _update(
        self,
        action: Control,
        target_id: str,
        request: ControlRequest,
        request_id: str,
        task_queue: str,
        update_seconds: float,
    ) -> ControlResult:
        converter = self._client.data_converter
        call = UpdateWorkflowExecutionRequest(
            namespace=self._client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=target_id),
            wait_policy=WaitPolicy(lifecycle_stage=_COMPLETED),
            request=UpdateRequest(
                meta=Meta(update_id=request_id, identity=identity_of(request.user)),
                input=Input(
                    name=action.value,
                    args=Payloads(payloads=await converter.encode([request])),
                ),
            ),
        )
        started = time.monotonic()
        with temporal_errors(entity_id=target_id, what=f"sending {action.value}"):
            try:
                answer: UpdateWorkflowExecutionResponse = await asyncio.wait_for(
                    self._client.workflow_service.update_workflow_execution(
                        call, retry=True, timeout=timedelta(seconds=update_seconds)
                    ),
                    update_seconds + 0.2,
                )
            except RPCError as exc:
                raise _translate_update_error(
                    exc, action, target_id, task_queue, time.monotonic() - started
                ) from None
            except TimeoutError:
                # Caught here, not by `temporal_errors` (which would call it a read timeout):
                # the server took the Update and no worker answered it in time.
                raise _no_answer(task_queue, time.monotonic() - started) from None
        if not answer.outcome.HasField("success") and not answer.outcome.HasField("failure"):
            # The server answered before the deadline without an outcome: no worker took it.
            raise _no_answer(task_queue, time.monotonic() - started)
        if answer.outcome.HasField("failure"):
            error = await converter.decode_failure(answer.outcome.failure)
            message = error.message if isinstance(error, ApplicationError) else str(error)
            raise ConflictError(message, entity_id=target_id)
        [result] = await converter.decode(answer.outcome.success.payloads, [ControlResult])
        assert isinstance(result, ControlResult)
        return result


def _advertised(payload: object) -> set[str]:
    """The control names a `relmgr.controls` memo payload lists (JSON list of strings)."""
    data = getattr(payload, "data", None)
    if not data:
        return set()
    try:
        value = json.loads(data)
    except ValueError:
        return set()
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _no_worker(task_queue: str) -> WorkerUnavailableError:
    return WorkerUnavailableError(
        f"no worker is polling task queue {task_queue}: start one (`relmgr worker`) and try "
        "again; nothing was changed",
        task_queue=task_queue,
    )


def _no_answer(task_queue: str, seconds: float) -> WorkerUnavailableError:
    return WorkerUnavailableError(
        f"no worker on task queue {task_queue} answered within {seconds:.1f} s; nothing was "
        "changed (the request expires, so a late worker refuses it): try again",
        task_queue=task_queue,
    )


def _translate_update_error(
    exc: RPCError, action: Control, target_id: str, task_queue: str, seconds: float
) -> Exception:
    message = str(exc).lower()
    # The workflow was running when described just before: "not found" now means it closed in
    # between (the server says "already completed", or only "not found" while it closes).
    if exc.status is RPCStatusCode.NOT_FOUND:
        kind = TARGET_KIND[action].value
        return ConflictError(
            f"{kind} {target_id} has finished; there is nothing to {action.value}",
            entity_id=target_id,
        )
    timed_out = exc.status is RPCStatusCode.CANCELLED and "timeout" in message
    if exc.status is RPCStatusCode.DEADLINE_EXCEEDED or timed_out:
        return _no_answer(task_queue, seconds)
    return exc
