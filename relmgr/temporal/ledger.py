"""The auth ledger's Temporal side: the writer every replica sends through, and its tiny worker.

`LedgerService.start` runs, on the caller's event loop, a worker for the ledger workflow alone
(on its own task queue, so it never takes release work) and a `TemporalLedgerWriter`, which the
caller attaches to the replica's `relmgr.auth.ledger.AuthLedger`. Every API and dashboard
process runs one, so the ledger's signals are processed whenever any replica is up. Reading the
ledger is the refresher's job (its delta list includes the ledger's workflow ID): see
`relmgr.reader.create_reader`.

A write is one signal-with-start (the ledger starts itself on first use). It is sent in the
background: a logout never waits on Temporal. If it fails, a warning names the problem and says
that only this replica honours the write for now; no token or jti is ever logged. Sign-outs and
generations (which only ever add, so sending one twice changes nothing) are then held and sent
again, in order, every few seconds (doubling up to `RETRY_MAX_SECONDS`) until Temporal takes them:
a logout made during an outage reaches the other replicas once it is over. Failed logins are not
held: they count for a minute only, and a resend could count one twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from contextlib import suppress
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from relmgr.errors import ConfigError
from relmgr.settings import Settings
from relmgr.temporal.ledger_state import MEMO_AUTH, LedgerEvent, LedgerEventKind
from relmgr.temporal.ledger_workflow import SIGNAL_RECORD, AuthLedgerWorkflow, LedgerStart

logger = logging.getLogger(__name__)

# A write not sent within this long is given up (and logged): the signal is tiny.
SEND_TIMEOUT_SECONDS = 5.0
# Held writes (sign-outs, generations not sent) are sent again after this long, doubling up to
# the maximum; at most MAX_HELD are kept (the oldest dropped first, with a warning).
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 30.0
MAX_HELD = 1000
_WORKFLOW_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")


def ledger_workflow_id(settings: Settings) -> str:
    """The ledger's workflow ID; ConfigError if it could not be quoted in a visibility query."""
    workflow_id = settings.auth_ledger_workflow_id
    if not _WORKFLOW_ID.fullmatch(workflow_id):
        raise ConfigError(
            f"RELMGR_AUTH_LEDGER_WORKFLOW_ID {workflow_id[:80]!r} must be 1-200 of [A-Za-z0-9._-]"
        )
    return workflow_id


def pinned_query(workflow_id: str) -> str:
    """The visibility clause for the ledger's running execution (closed runs are history)."""
    return f"(WorkflowId = '{workflow_id}' AND ExecutionStatus = 'Running')"


class TemporalLedgerWriter:
    """Sends ledger writes as signals on one event loop, from any thread (`LedgerWriter`)."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        retry_first_seconds: float = RETRY_FIRST_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
    ) -> None:
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._workflow_id = ledger_workflow_id(settings)
        self._task_queue = settings.auth_ledger_task_queue
        self._address = settings.temporal_address
        self._retry_first = retry_first_seconds
        self._retry_max = retry_max_seconds
        # Writes Temporal did not take, to send again in order (see the module docstring).
        self.held: list[LedgerEvent] = []
        self._retrying: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def submit(self, event: LedgerEvent) -> None:
        """Send `event` in the background; a failure is logged, never raised."""
        future = asyncio.run_coroutine_threadsafe(self.send(event), self._loop)
        future.add_done_callback(_swallow)

    async def send(self, event: LedgerEvent) -> bool:
        """Send `event` now; False (and a warning) if Temporal did not take it, in which case a
        sign-out or generation is held and sent again until it is taken."""
        if await self._signal(event, quiet=False):
            return True
        if event.kind is not LedgerEventKind.FAILURE:
            self._hold(event)
        return False

    def _hold(self, event: LedgerEvent) -> None:
        self.held.append(event)
        if len(self.held) > MAX_HELD:
            del self.held[0]
            logger.warning("auth ledger: over %d writes held, the oldest dropped", MAX_HELD)
        if self._retrying is None or self._retrying.done():
            self._retrying = self._loop.create_task(self._resend(), name="relmgr-ledger-resend")

    async def _resend(self) -> None:
        delay = self._retry_first
        while self.held:
            await asyncio.sleep(delay)
            while self.held and await self._signal(self.held[0], quiet=True):
                self.held.pop(0)
            if not self.held:
                logger.info("auth ledger: the held writes reached Temporal at %s", self._address)
                return
            delay = min(delay * 2, self._retry_max)

    async def aclose(self) -> None:
        """Stop sending held writes (they stay on this replica only)."""
        task, self._retrying = self._retrying, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _signal(self, event: LedgerEvent, *, quiet: bool) -> bool:
        try:
            await asyncio.wait_for(
                self._client.start_workflow(
                    AuthLedgerWorkflow.run,
                    LedgerStart(),
                    id=self._workflow_id,
                    task_queue=self._task_queue,
                    start_signal=SIGNAL_RECORD,
                    start_signal_args=[event],
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    memo={MEMO_AUTH: {}},
                    rpc_timeout=timedelta(seconds=SEND_TIMEOUT_SECONDS),
                ),
                SEND_TIMEOUT_SECONDS + 0.5,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: log it, the replica goes on
            self.failed += 1
            if not quiet:  # a resend's failure was said when the write was first refused
                logger.warning(
                    "auth ledger write (%s) not sent to Temporal at %s (%s): only this replica "
                    "honours it for now%s; check RELMGR_TEMPORAL_ADDRESS and that the server "
                    "is up",
                    event.kind.value,
                    self._address,
                    _describe(exc),
                    ""
                    if event.kind is LedgerEventKind.FAILURE
                    else " (held, and sent again until Temporal takes it)",
                )
            return False
        self.sent += 1
        return True


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


def _swallow(future: concurrent.futures.Future[bool]) -> None:
    # `send` logs its own failures; a cancelled send (shutdown) needs no word.
    with suppress(concurrent.futures.CancelledError, Exception):
        future.result()


class LedgerService:
    """The ledger worker of one replica and the writer attached to its `AuthLedger`."""

    def __init__(self, worker: Worker, task: asyncio.Task[None], writer: TemporalLedgerWriter):
        self._worker = worker
        self._task = task
        self.writer = writer

    @classmethod
    def start(cls, client: Client, settings: Settings) -> LedgerService:
        """Start the worker on the running loop; `writer` sends from this loop."""
        writer = TemporalLedgerWriter(client, settings)
        worker = Worker(
            client,
            task_queue=settings.auth_ledger_task_queue,
            workflows=[AuthLedgerWorkflow],
            max_concurrent_workflow_tasks=2,
        )
        task = asyncio.get_running_loop().create_task(_run(worker), name="relmgr-auth-ledger")
        return cls(worker, task, writer)

    async def aclose(self) -> None:
        """Stop the worker (bounded: a stuck poll must not hold a shutdown)."""
        await self.writer.aclose()
        with suppress(Exception):
            await asyncio.wait_for(self._worker.shutdown(), SEND_TIMEOUT_SECONDS)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _run(worker: Worker) -> None:
    try:
        await worker.run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the replica still reads the ledger; other replicas process it
        logger.warning("the auth ledger worker stopped: %s", _describe(exc))
