"""The auth ledger's Temporal side: the writer every replica sends through, and its tiny worker.

`LedgerService.start` runs, on the caller's event loop, a worker for the ledger workflow alone
(on its own task queue, so it never takes release work) and a `TemporalLedgerWriter`, which the
caller attaches to the replica's `relmgr.auth.ledger.AuthLedger`. Every API and dashboard
process runs one, so the ledger's signals are processed whenever any replica is up. Reading the
ledger is the refresher's job (its delta list includes the ledger's workflow ID): see
`relmgr.reader.create_reader`.

A write is one signal-with-start (the ledger starts itself on first use). It is sent in the
background: a logout never waits on Temporal. If it fails, a warning names the problem and says
that only this replica honours the write; no token or jti is ever logged.
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
from relmgr.temporal.ledger_state import MEMO_AUTH, LedgerEvent
from relmgr.temporal.ledger_workflow import SIGNAL_RECORD, AuthLedgerWorkflow, LedgerStart

logger = logging.getLogger(__name__)

# A write not sent within this long is given up (and logged): the signal is tiny.
SEND_TIMEOUT_SECONDS = 5.0
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

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._workflow_id = ledger_workflow_id(settings)
        self._task_queue = settings.auth_ledger_task_queue
        self._address = settings.temporal_address
        self.sent = 0
        self.failed = 0

    def submit(self, event: LedgerEvent) -> None:
        """Send `event` in the background; a failure is logged, never raised."""
        future = asyncio.run_coroutine_threadsafe(self.send(event), self._loop)
        future.add_done_callback(_swallow)

    async def send(self, event: LedgerEvent) -> bool:
        """Send `event` now; False (and a warning) if Temporal did not take it."""
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
            logger.warning(
                "auth ledger write (%s) not sent to Temporal at %s (%s): only this replica "
                "honours it; check RELMGR_TEMPORAL_ADDRESS and that the server is up",
                event.kind.value,
                self._address,
                _describe(exc),
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
