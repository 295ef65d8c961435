"""The auth ledger workflow on the real dev server: signals kept without a worker, the memo read
by the refresher's list call, state carried over continue-as-new; and a failed write logged."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from relmgr.auth.ledger import AuthLedger
from relmgr.reader.source import TemporalVisibility
from relmgr.settings import Settings
from relmgr.temporal.ledger import LedgerService, TemporalLedgerWriter, pinned_query
from relmgr.temporal.ledger_state import MEMO_AUTH, LedgerEvent, LedgerEventKind, LedgerState
from relmgr.temporal.ledger_workflow import AuthLedgerWorkflow, LedgerStart

pytestmark = pytest.mark.integration


def ledger_settings() -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        auth_ledger_workflow_id=f"ledger-{suffix}", auth_ledger_task_queue=f"ledger-tq-{suffix}"
    )


async def read_memo(client: Client, settings: Settings) -> LedgerState | None:
    """The ledger as the refresher reads it: one list call, the memo handed to a sink."""
    seen: list[bytes] = []
    source = TemporalVisibility(client, rpc_timeout=2.0)
    source.watch_memo(settings.auth_ledger_workflow_id, MEMO_AUTH, seen.append)
    rows = await source.list_rows(pinned_query(settings.auth_ledger_workflow_id), delta=True)
    assert rows == []  # the ledger is no entity
    return LedgerState.from_memo_bytes(seen[-1]) if seen else None


async def eventually(client: Client, settings: Settings, check: Any) -> LedgerState:
    deadline = time.monotonic() + 10
    while True:
        state = await read_memo(client, settings)
        if state is not None and check(state):
            return state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.2)


async def test_signals_sent_with_no_worker_reach_the_memo_once_a_worker_runs(
    client: Client,
) -> None:
    """A logout and a failed login sent while no ledger worker runs are kept by the server; the
    first worker to start publishes them, and the refresher's list call hands them over."""
    settings = ledger_settings()
    writer = TemporalLedgerWriter(client, settings)
    jti = uuid.uuid4().hex
    expires = time.time() + 600
    assert await writer.send(LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=expires))
    assert await writer.send(
        LedgerEvent(kind=LedgerEventKind.FAILURE, key="user:alice", at=time.time(), origin="r1")
    )
    before = await eventually(client, settings, lambda s: True)
    assert before.revoked == {}  # recorded, not yet processed: no worker
    service = LedgerService.start(client, settings)
    try:
        state = await eventually(client, settings, lambda s: jti in s.revoked)
        assert state.revoked[jti] == pytest.approx(expires)
        assert [origin for _, origin in state.failures["user:alice"]] == ["r1"]
        ledger = AuthLedger()
        ledger.apply_memo(json.dumps(state.to_memo()).encode())
        assert ledger.is_revoked(jti)
    finally:
        await service.aclose()


async def test_the_state_survives_continue_as_new(client: Client) -> None:
    """With a tiny history limit the ledger continues as new; its state, and later writes, stay."""
    settings = ledger_settings()
    workflow_id = settings.auth_ledger_workflow_id
    async with Worker(
        client, task_queue=settings.auth_ledger_task_queue, workflows=[AuthLedgerWorkflow]
    ):
        handle = await client.start_workflow(
            AuthLedgerWorkflow.run,
            LedgerStart(history_limit=10),
            id=workflow_id,
            task_queue=settings.auth_ledger_task_queue,
        )
        first_run = handle.result_run_id
        writer = TemporalLedgerWriter(client, settings)
        for number in range(6):
            event = LedgerEvent(
                kind=LedgerEventKind.GENERATION, username=f"user{number}", generation=number + 1
            )
            assert await writer.send(event)
            await asyncio.sleep(0.1)
        state = await eventually(client, settings, lambda s: len(s.generations) == 6)
        assert state.generations == {f"user{n}": n + 1 for n in range(6)}
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.run_id != first_run
        assert described.status is WorkflowExecutionStatus.RUNNING
        first = await client.get_workflow_handle(workflow_id, run_id=first_run).describe()
        assert first.status is WorkflowExecutionStatus.CONTINUED_AS_NEW
        await client.get_workflow_handle(workflow_id).terminate("test over")


async def test_an_idle_ledger_prunes_expired_entries_and_keeps_running(client: Client) -> None:
    """With nothing written, the prune tick (a wait that times out) drops an expired sign-out
    from the memo and the ledger runs on, keeping the rest: a timeout must never end it."""
    settings = ledger_settings()
    workflow_id = settings.auth_ledger_workflow_id
    async with Worker(
        client, task_queue=settings.auth_ledger_task_queue, workflows=[AuthLedgerWorkflow]
    ):
        handle = await client.start_workflow(
            AuthLedgerWorkflow.run,
            LedgerStart(prune_seconds=1.0),
            id=workflow_id,
            task_queue=settings.auth_ledger_task_queue,
        )
        writer = TemporalLedgerWriter(client, settings)
        short, long = uuid.uuid4().hex, uuid.uuid4().hex
        now = time.time()
        for jti, expires in ((short, now + 1.5), (long, now + 600)):
            assert await writer.send(
                LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=expires)
            )
        await eventually(client, settings, lambda s: {short, long} <= set(s.revoked))
        state = await eventually(client, settings, lambda s: short not in s.revoked)
        assert set(state.revoked) == {long}
        described = await handle.describe()
        assert described.status is WorkflowExecutionStatus.RUNNING
        assert described.run_id == handle.result_run_id
        await handle.terminate("test over")


class _RefusingClient:
    """Stands in for a client whose server refuses every call."""

    async def start_workflow(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("connection refused (127.0.0.1:1)")


async def test_a_write_that_cannot_be_sent_is_logged_without_its_jti(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The warning names the problem, the setting, and that only this replica honours it."""
    settings = ledger_settings()
    writer = TemporalLedgerWriter(cast(Client, _RefusingClient()), settings)
    jti = uuid.uuid4().hex
    sent = await writer.send(
        LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=time.time() + 60)
    )
    assert sent is False
    assert writer.failed == 1
    assert "auth ledger write (revoke) not sent" in caplog.text
    assert "connection refused" in caplog.text
    assert "only this replica honours it" in caplog.text
    assert "RELMGR_TEMPORAL_ADDRESS" in caplog.text
    assert jti not in caplog.text
    assert jti[:8] not in caplog.text


class _OutageClient:
    """A real client behind an outage: refuses the first `refusals` calls, then passes them on."""

    def __init__(self, client: Client, refusals: int) -> None:
        self._client = client
        self.refusals = refusals
        self.calls = 0

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.refusals:
            raise RuntimeError("connection refused (outage)")
        return await self._client.start_workflow(*args, **kwargs)


async def test_a_logout_made_during_an_outage_reaches_the_ledger_once_it_is_over(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A sign-out refused by Temporal (twice more on resend) is held and sent again until it is
    taken, and the ledger then lists it; a failed login refused at the same time is not held
    (it counts for a minute only, and a resend could count it twice)."""
    settings = ledger_settings()
    outage = _OutageClient(client, refusals=4)
    writer = TemporalLedgerWriter(
        cast(Client, outage), settings, retry_first_seconds=0.1, retry_max_seconds=0.4
    )
    service = LedgerService.start(client, settings)
    jti = uuid.uuid4().hex
    try:
        assert not await writer.send(
            LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=time.time() + 600)
        )
        assert not await writer.send(
            LedgerEvent(kind=LedgerEventKind.FAILURE, key="user:bob", at=time.time(), origin="r")
        )
        assert [e.kind for e in writer.held] == [LedgerEventKind.REVOKE]
        state = await eventually(client, settings, lambda s: jti in s.revoked)
        assert writer.held == []
        assert outage.calls == 5  # two first sends, two refused resends, one taken
        assert "user:bob" not in state.failures
        assert "held, and sent again until Temporal takes it" in caplog.text
        assert caplog.text.count("not sent to Temporal") == 2  # resends add no warning
        assert jti not in caplog.text
    finally:
        await writer.aclose()
        await service.aclose()
