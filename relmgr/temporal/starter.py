"""Starting releases: the release workflow with its plan in memo, visible from its first second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from relmgr import ids
from relmgr.errors import AlreadyExistsError
from relmgr.models import Control, ReleasePlan, StateCounts
from relmgr.temporal.contract import (
    MEMO_CONTROLS,
    MEMO_DETAIL,
    MEMO_PLAN,
    RELEASE_CONTROLS,
    TASK_QUEUE,
    EntityMemo,
    initial_search_attributes,
)
from relmgr.temporal.messages import DeployOptions, Outcome, ReleaseInput
from relmgr.temporal.workflows import ReleaseWorkflow


async def start_release(
    client: Client,
    release_id: str,
    plan: ReleasePlan,
    options: DeployOptions | None = None,
    *,
    task_queue: str = TASK_QUEUE,
    start_delay: timedelta | None = None,
    approval_gates: bool = False,
) -> WorkflowHandle[Any, Outcome]:
    """Start a release; `start_delay` makes one that exists (PENDING) but has not begun.

    With `approval_gates`, every wave after the first waits for an operator's `approve`.
    """
    ids.validate_release_id(release_id)
    attributes = initial_search_attributes(release_id, now=datetime.now(UTC))
    detail = EntityMemo(waves_total=len(plan.waves), apps=StateCounts(pending=plan.app_count))
    # The controls this release accepts, so relmgr offers only those (the contract's promise).
    controls = [*([Control.APPROVE] if approval_gates else []), *RELEASE_CONTROLS]
    try:
        return await client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(
                release_id=release_id,
                plan=plan,
                options=options or DeployOptions(),
                approval_gates=approval_gates,
            ),
            id=release_id,
            task_queue=task_queue,
            search_attributes=attributes,
            memo={
                MEMO_PLAN: plan.model_dump(mode="json"),
                MEMO_DETAIL: detail.model_dump(mode="json"),
                MEMO_CONTROLS: [c.value for c in controls],
            },
            start_delay=start_delay,
        )
    except WorkflowAlreadyStartedError:
        raise AlreadyExistsError(
            f"release {release_id} already exists; choose another name", entity_id=release_id
        ) from None
