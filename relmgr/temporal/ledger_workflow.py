"""The auth ledger workflow: one long-running workflow whose memo every replica reads.

It takes writes as signals (`record`), not Updates: a signal is recorded by the server even
while no worker runs, and a logout needs no answer from the workflow. Its state lives in the
`relmgr.auth` memo (`relmgr.auth.ledger.LedgerState`), upserted after each batch of signals and
pruned every `PRUNE_EVERY` so expired entries leave the memo even when nothing is written. It
continues as new (carrying its state) when its history grows, so its history stays short.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relmgr.temporal.ledger_state import MEMO_AUTH, LedgerEvent, LedgerState

SIGNAL_RECORD = "record"
PRUNE_EVERY = timedelta(minutes=5)
# Continue as new past this many history events (each batch of signals costs a few).
MAX_HISTORY_EVENTS = 2000


class LedgerStart(BaseModel):
    """The ledger's input: the state carried over from the previous run (empty at first)."""

    model_config = ConfigDict(frozen=True)

    state: dict[str, object] = {}
    # Continue as new past this many history events (tests set a small one).
    history_limit: int = MAX_HISTORY_EVENTS
    # Seconds between prunes while nothing is written (tests set a short one).
    prune_seconds: float = PRUNE_EVERY.total_seconds()


@workflow.defn(name="RelmgrAuthLedger")
class AuthLedgerWorkflow:
    """Keeps the auth ledger in its memo; see the module docstring."""

    def __init__(self) -> None:
        self._state = LedgerState()
        self._changed = False

    @workflow.run
    async def run(self, start: LedgerStart) -> None:
        """Publish the state after every batch of writes, forever (continuing as new)."""
        if start.state:
            self._state.merge(LedgerState.from_memo(start.state))
        self._publish()
        while True:
            # A timeout is the prune tick. It must be caught: this SDK fails the workflow on a
            # TimeoutError, and a failed ledger would take every sign-out with it.
            with suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._changed, timeout=start.prune_seconds)
            self._changed = False
            self._publish()
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > start.history_limit
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    start.model_copy(update={"state": self._state.to_memo()}),
                    memo={MEMO_AUTH: self._state.to_memo()},
                )

    def _publish(self) -> None:
        self._state.prune(workflow.now().timestamp())
        workflow.upsert_memo({MEMO_AUTH: self._state.to_memo()})

    @workflow.signal(name=SIGNAL_RECORD)
    def record(self, event: LedgerEvent) -> None:
        """Apply one write; it is published with the next batch."""
        self._state.apply(event)
        self._changed = True
