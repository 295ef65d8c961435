"""Visibility rows: one workflow as list and describe calls report it, decoded from protobuf.

The SDK's `WorkflowExecution` decodes every search attribute and (on demand) memo through the data
converter; for a 1,206-workflow release that is most of the client-side cost of a list call. Here
a row is read from the raw `WorkflowExecutionInfo`: the search attributes relmgr needs are small
JSON strings, the `relmgr.detail` memo is a small JSON object, and the release's `relmgr.plan`
memo is kept as raw bytes and parsed only when a tree is built (never for the release list).

The contract (`relmgr.temporal.contract`) only promises JSON payloads (the pydantic data converter,
no payload codec); a row whose payloads are not plain JSON is still read, without its memo details.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo

from relmgr import ids
from relmgr.errors import InvalidIdError
from relmgr.models import (
    Control,
    ControlRecord,
    Entity,
    EntityKind,
    EntityState,
    ReleaseSummary,
    StateCounts,
)
from relmgr.temporal.contract import (
    MEMO_AUDIT,
    MEMO_CONTROLS,
    MEMO_DETAIL,
    MEMO_PLAN,
    SA_LAST_CHANGE,
    SA_STATE,
    EntityMemo,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATES = {state.value: state for state in EntityState}
_ENTITY_FIELDS = tuple(Entity.model_fields)
_CONTROLS = {control.value: control for control in Control}

# How a closed execution ends when its workflow never published a terminal state (it was
# terminated, timed out, or crashed), and what to show as its error when it left none.
_CLOSED_STATES: dict[int, tuple[EntityState, str | None]] = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED: (EntityState.SUCCEEDED, None),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: (
        EntityState.FAILED,
        "workflow failed",
    ),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: (
        EntityState.FAILED,
        "workflow timed out",
    ),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: (
        EntityState.FAILED,
        "workflow terminated",
    ),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: (EntityState.CANCELLED, None),
}


@dataclass(frozen=True, slots=True)
class VisibilityRow:
    """One workflow execution as visibility reports it, mapped to an `Entity`."""

    entity: Entity
    run_id: str
    # Which of two rows of the same workflow ID is newer: later run, later change, closed last.
    order: tuple[datetime, datetime, int, datetime]
    # The release row only: its summary fields (`relmgr.detail`) and its raw plan (`relmgr.plan`).
    current_wave: int | None = None
    waves_total: int | None = None
    apps: StateCounts | None = None
    plan_json: bytes | None = None
    clusters_total: int = 0
    held: tuple[str, ...] = ()
    controls: tuple[Control, ...] = ()
    # Parsed only when a summary is made, and only releases someone controlled have one.
    audit: object = None

    @property
    def id(self) -> str:
        """The workflow ID, which is the entity ID."""
        return self.entity.id

    def is_older_than(self, other: VisibilityRow) -> bool:
        """True if `other` reports a later moment of the same workflow ID."""
        return self.order < other.order


def _timestamp(value: Timestamp) -> datetime:
    return EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


_NOT_JSON = object()


def _json_payload(payload: Payload) -> object:
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"json/plain":
        try:
            return json.loads(payload.data)
        except ValueError:
            return _NOT_JSON
    if encoding == b"binary/null":
        return None
    return _NOT_JSON


def _attribute(fields: Any, name: str) -> object:
    payload = fields.get(name)
    return None if payload is None else _json_payload(payload)


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def row_from_info(info: WorkflowExecutionInfo) -> VisibilityRow | None:
    """The row for one execution, or None for a workflow whose ID is not a relmgr entity ID."""
    workflow_id = info.execution.workflow_id
    try:
        ref = ids.parse_entity_id(workflow_id)
    except InvalidIdError:
        return None
    attributes = info.search_attributes.indexed_fields
    raw_state = _attribute(attributes, SA_STATE.name)
    published = _STATES.get(raw_state) if isinstance(raw_state, str) else None
    last_changed_at = _datetime(_attribute(attributes, SA_LAST_CHANGE.name))
    started_at = _timestamp(info.start_time) if info.HasField("start_time") else None
    closed_at = _timestamp(info.close_time) if info.HasField("close_time") else None
    # Visibility's execution time is the start time plus any start delay: a scheduled release.
    execution_at = _timestamp(info.execution_time) if info.HasField("execution_time") else None
    scheduled_for = (
        execution_at
        if execution_at is not None and started_at is not None and execution_at > started_at
        else None
    )

    memo_fields = info.memo.fields
    detail_payload = memo_fields.get(MEMO_DETAIL)
    detail = _json_payload(detail_payload) if detail_payload is not None else None
    memo = detail if isinstance(detail, dict) else {}
    attempt = memo.get("attempt")
    last_error = memo.get("last_error")
    attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 0
    last_error = last_error if isinstance(last_error, str) else None
    max_attempts = memo.get("max_attempts")
    max_attempts = (
        max_attempts
        if isinstance(max_attempts, int) and not isinstance(max_attempts, bool)
        else None
    )
    next_retry_at = _datetime(memo.get("next_retry_at"))

    closed = _CLOSED_STATES.get(info.status)
    if closed is not None:
        # A workflow that ended without publishing a terminal state (terminated, timed out,
        # crashed) takes its state from how the execution ended.
        if published is None or not published.is_terminal:
            state, reason = closed
            last_error = last_error or reason
        else:
            state = published
        finished_at = closed_at
    else:
        # Running (or continued-as-new: its next run carries on under the same ID).
        state = published or EntityState.IN_PROGRESS
        finished_at = last_changed_at if state.is_terminal else None

    entity = Entity.model_construct(
        id=ref.id,
        kind=ref.kind,
        release_id=ref.release_id,
        parent_id=ref.parent_id,
        state=state,
        started_at=started_at,
        last_changed_at=last_changed_at or closed_at or started_at,
        finished_at=finished_at,
        attempt=attempt,
        last_error=last_error,
        started=True,
        max_attempts=max_attempts,
        # Only while it waits to retry: once the workflow has closed there is no next attempt.
        next_retry_at=next_retry_at if state is EntityState.RETRYING else None,
        scheduled_for=scheduled_for,
    )
    order = (
        started_at or EPOCH,
        last_changed_at or EPOCH,
        1 if closed is not None else 0,
        closed_at or EPOCH,
    )
    if ref.kind is not EntityKind.RELEASE:
        return VisibilityRow(entity=entity, run_id=info.execution.run_id, order=order)
    release_memo = _release_memo(detail)
    plan_payload = memo_fields.get(MEMO_PLAN)
    return VisibilityRow(
        entity=entity,
        run_id=info.execution.run_id,
        order=order,
        current_wave=release_memo.current_wave,
        waves_total=release_memo.waves_total,
        apps=release_memo.apps,
        plan_json=bytes(plan_payload.data) if plan_payload is not None else None,
        clusters_total=plan_clusters(plan_payload) if plan_payload is not None else 0,
        held=release_memo.held,
        controls=_controls(memo_fields.get(MEMO_CONTROLS)),
        audit=_json_payload(audit) if (audit := memo_fields.get(MEMO_AUDIT)) is not None else None,
    )


# A cluster's plan is the one JSON object with a "bundle" key (`ClusterPlan`); a name is a
# value, never followed by a colon, so a cluster or app named "bundle" is not counted.
_BUNDLE_KEY = re.compile(rb'"bundle"\s*:')


def plan_clusters(payload: Payload) -> int:
    """How many clusters a `relmgr.plan` memo deploys to over all its waves (0 if not JSON).

    Counted in the raw bytes, not parsed: every release row of the release list is decoded on a
    full re-read, and a 10 x 100-cluster plan (99 KB) takes 0.7 ms to scan, 4.9 ms to parse.
    """
    if payload.metadata.get("encoding", b"") != b"json/plain":
        return 0
    return len(_BUNDLE_KEY.findall(payload.data))


def _controls(payload: Payload | None) -> tuple[Control, ...]:
    value = _json_payload(payload) if payload is not None else None
    if not isinstance(value, list):
        return ()
    return tuple(_CONTROLS[v] for v in value if isinstance(v, str) and v in _CONTROLS)


def _audit(value: object) -> tuple[ControlRecord, ...]:
    """The `relmgr.audit` memo's records, newest last; malformed records are skipped."""
    if not isinstance(value, list):
        return ()
    records = []
    for item in value:
        try:
            records.append(ControlRecord.model_validate(item))
        except ValueError:
            continue
    return tuple(records)


def _release_memo(detail: object) -> EntityMemo:
    if not isinstance(detail, dict):
        return EntityMemo()
    try:
        return EntityMemo.model_validate(detail)
    except ValueError:
        return EntityMemo()


def summary_of_row(row: VisibilityRow) -> ReleaseSummary:
    """The release list row for a release's visibility row (its memo, not its tree)."""
    fields = {name: getattr(row.entity, name) for name in _ENTITY_FIELDS}
    return ReleaseSummary.model_construct(
        **fields,
        waves_total=row.waves_total or 0,
        clusters_total=row.clusters_total,
        current_wave=row.current_wave,
        apps=row.apps or StateCounts(),
        controls=row.controls,
        held=row.held,
        audit=_audit(row.audit) if row.audit else (),
    )
