"""A test-only workflow that follows the visibility contract and changes state only when told to.

The reference workflows deploy on their own schedule; the read-path tests and the benchmark need
entities whose state changes at a moment they choose (to measure freshness), that stay running
for as long as they like, and thousands of them started quickly. Each stub is started with the
contract's search attributes and memo (`start_stub`), publishes every `set_state` signal exactly
as the contract says (attributes upserted, memo upserted, last change = now), answers
`get_state`, and ends on `finish`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from relmgr import ids
    from relmgr.models import Entity, EntityState, ReleasePlan, StateCounts
    from relmgr.temporal.contract import (
        MEMO_DETAIL,
        MEMO_PLAN,
        QUERY_GET_STATE,
        SA_LAST_CHANGE,
        SA_STATE,
        EntityMemo,
        initial_search_attributes,
    )


class StubStart(BaseModel):
    """Start a stub for one entity in a given state."""

    model_config = ConfigDict(frozen=True)

    entity_id: str
    state: EntityState = EntityState.IN_PROGRESS


class StubChange(BaseModel):
    """Publish a new state (and optionally an attempt and an error)."""

    model_config = ConfigDict(frozen=True)

    state: EntityState
    attempt: int = 1
    last_error: str | None = None


class StubFinish(BaseModel):
    """End the workflow: complete it, or fail it without publishing a terminal state."""

    model_config = ConfigDict(frozen=True)

    fail: bool = False


@workflow.defn(name="RelmgrContractStub")
class ContractStubWorkflow:
    """Holds one entity's state; publishes it on every `set_state` signal."""

    def __init__(self) -> None:
        self._entity: Entity | None = None
        self._finish: StubFinish | None = None

    @workflow.run
    async def run(self, start: StubStart) -> None:
        """Wait for `finish`."""
        ref = ids.parse_entity_id(start.entity_id)
        if self._entity is None:
            self._entity = Entity(
                id=ref.id,
                kind=ref.kind,
                release_id=ref.release_id,
                parent_id=ref.parent_id,
                state=start.state,
                started_at=workflow.info().start_time,
            )
        await workflow.wait_condition(lambda: self._finish is not None)
        if self._finish is not None and self._finish.fail:
            raise ApplicationError("stub told to fail", non_retryable=True)

    @workflow.signal
    def set_state(self, change: StubChange) -> None:
        """Publish a new state through the contract's attributes and memo."""
        now = workflow.now()
        entity_id = workflow.info().workflow_id
        ref = ids.parse_entity_id(entity_id)
        base = self._entity or Entity(
            id=ref.id, kind=ref.kind, release_id=ref.release_id, parent_id=ref.parent_id
        )
        self._entity = base.model_copy(
            update={
                "state": change.state,
                "attempt": change.attempt,
                "last_error": change.last_error,
                "last_changed_at": now,
                "finished_at": now if change.state.is_terminal else None,
            }
        )
        workflow.upsert_search_attributes(
            [SA_STATE.value_set(change.state.value), SA_LAST_CHANGE.value_set(now)]
        )
        memo = EntityMemo(attempt=change.attempt, last_error=change.last_error)
        workflow.upsert_memo({MEMO_DETAIL: memo.model_dump(mode="json")})

    @workflow.signal
    def finish(self, end: StubFinish) -> None:
        """End the workflow."""
        self._finish = end

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> Entity:
        """The entity as this stub knows it."""
        assert self._entity is not None
        return self._entity


async def start_stub(
    client: Client,
    entity_id: str,
    *,
    task_queue: str,
    state: EntityState = EntityState.IN_PROGRESS,
    plan: ReleasePlan | None = None,
    memo: EntityMemo | None = None,
    changed_at: datetime | None = None,
) -> WorkflowHandle[ContractStubWorkflow, None]:
    """Start a stub with the contract's search attributes and memo set at start."""
    attributes = initial_search_attributes(
        entity_id, now=changed_at or datetime.now(UTC), state=state
    )
    detail = memo or EntityMemo(attempt=1)
    if plan is not None and memo is None:
        detail = EntityMemo(
            attempt=1,
            current_wave=1,
            waves_total=len(plan.waves),
            apps=StateCounts(in_progress=plan.app_count),
        )
    memos: dict[str, object] = {MEMO_DETAIL: detail.model_dump(mode="json")}
    if plan is not None:
        memos[MEMO_PLAN] = plan.model_dump(mode="json")
    return await client.start_workflow(
        ContractStubWorkflow.run,
        StubStart(entity_id=entity_id, state=state),
        id=entity_id,
        task_queue=task_queue,
        search_attributes=attributes,
        memo=memos,
    )
