"""The visibility contract: what a workflow publishes so that relmgr can read it without a worker.

A team whose workflows follow this contract shows up in relmgr (see the README's "Contract"):
- the workflow ID is the entity ID (`relmgr.ids`);
- the search attributes below are set when the workflow starts and upserted on every change;
- the release sets the `relmgr.plan` memo at start, so the whole tree is known from the start;
- memo `relmgr.detail` carries what is worth showing but not worth filtering by (last error, ...);
- the `get_state` query returns an `Entity` (`relmgr.models`) as JSON;
- memo `relmgr.controls` lists the controls (Temporal Updates, named below) a workflow accepts, so
  relmgr offers a control only where it works; memo `relmgr.audit` keeps the release's last
  accepted controls (`ControlRecord`), so the trail reads with the release in the same list call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from relmgr import ids
from relmgr.models import Control, EntityState, StateCounts
from relmgr.models import ControlRecord as ControlRecord  # the contract names it

TASK_QUEUE = "relmgr-releases"
QUERY_GET_STATE = "get_state"

SA_KIND = SearchAttributeKey.for_keyword("RelmgrKind")
SA_RELEASE_ID = SearchAttributeKey.for_keyword("RelmgrReleaseId")
SA_PARENT_ID = SearchAttributeKey.for_keyword("RelmgrParentId")
SA_STATE = SearchAttributeKey.for_keyword("RelmgrState")
SA_LAST_CHANGE = SearchAttributeKey.for_datetime("RelmgrLastChange")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    SA_KIND,
    SA_RELEASE_ID,
    SA_PARENT_ID,
    SA_STATE,
    SA_LAST_CHANGE,
)


def initial_search_attributes(
    entity_id: str, *, now: datetime, state: EntityState = EntityState.PENDING
) -> TypedSearchAttributes:
    """The attributes an entity workflow starts with: its place in the tree, `state` (PENDING
    for every reference workflow) and `now` (a workflow passes `workflow.now()`, a starter the
    wall clock)."""
    ref = ids.parse_entity_id(entity_id)
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_KIND, ref.kind.value),
            SearchAttributePair(SA_RELEASE_ID, ref.release_id),
            SearchAttributePair(SA_PARENT_ID, ref.parent_id or ""),
            SearchAttributePair(SA_STATE, state.value),
            SearchAttributePair(SA_LAST_CHANGE, now),
        ]
    )


MEMO_PLAN = "relmgr.plan"
MEMO_DETAIL = "relmgr.detail"
MEMO_CONTROLS = "relmgr.controls"
MEMO_AUDIT = "relmgr.audit"
# How many accepted controls a release keeps in its `relmgr.audit` memo (older ones stay in its
# history as Update events, with the caller's identity and input).
AUDIT_MEMO_SIZE = 20


RELEASE_CONTROLS = (Control.PAUSE, Control.RESUME, Control.CANCEL)
APP_CONTROLS = (Control.RETRY,)


class EntityMemo(BaseModel):
    """The `relmgr.detail` memo: display data that visibility carries alongside the attributes."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    attempt: int = 0
    last_error: str | None = None
    # Apps only: how many attempts the deploy may take, and when a RETRYING app tries again.
    max_attempts: int | None = None
    next_retry_at: datetime | None = None
    # Releases only: the wave running now (1-based) and their apps by state.
    current_wave: int | None = None
    waves_total: int | None = None
    apps: StateCounts | None = None
    # Releases only: the apps holding their wave (failed, waiting for an operator's retry).
    held: tuple[str, ...] = ()
