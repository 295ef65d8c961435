"""The auth ledger: what every replica must agree on (ended sessions, user generations, failed
logins), kept in one place they all reach, Temporal, and seen by each within one refresh.

Why a ledger in Temporal rather than a shared file or a database: Temporal is the one component
every replica already reaches, and relmgr reads it once per refresh cycle anyway. So the state
lives in the memo of one long-running workflow (`relmgr.temporal.ledger`, ID
`RELMGR_AUTH_LEDGER_WORKFLOW_ID`), written by signals (recorded by the server even while no
worker runs; every API and dashboard process runs a tiny worker for it), and read in the same
delta list call the refresher already makes: no replica makes an extra call for it, whatever its
viewers.

This module is this replica's view, with no Temporal in it (auth must not import the SDK):
`LedgerWriter` (the protocol the Temporal glue implements) and `AuthLedger`. The state itself and
its bounds are `relmgr.temporal.ledger_state` (pure, shared with the workflow). A write applies to
the view at once, so the replica that took a logout honours it immediately, and goes to Temporal
in the background; when Temporal cannot be reached the write is logged as a warning and holds on
this replica only (and, for a logout, in its local revoked sessions file) until the writer's
resend gets it through (sign-outs and generations; see `relmgr.temporal.ledger`).

Failed logins carry the replica that saw them (`origin`): each replica counts its own failures in
its own limiter and adds only the others' from the ledger.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from relmgr.temporal.ledger_state import (
    FAILURE_WINDOW_SECONDS,
    LedgerEvent,
    LedgerEventKind,
    LedgerState,
)

logger = logging.getLogger(__name__)

# Writes kept while no writer is attached (Temporal not reached since start-up).
MAX_UNSENT = 1000
# How long sign-ins and session checks wait, once per process, for the first read of the ledger.
FIRST_READ_WAIT_SECONDS = 5.0


class LedgerWriter(Protocol):
    """Sends writes to the shared ledger (`relmgr.temporal.ledger`); never blocks, never raises.

    A write that cannot be sent is logged as a warning by the writer.
    """

    def submit(self, event: LedgerEvent) -> None:
        """Send `event` in the background."""
        ...


def failure_key(scope: str, key: str) -> str:
    """The ledger's key for a limiter's scope (`user`, `client`) and key."""
    return f"{scope}:{key}"


class AuthLedger:
    """This replica's view of the shared ledger: what it read last, plus its own writes.

    Safe to use from any thread. Writes made before a writer is attached (Temporal not reached
    yet) are kept, up to `MAX_UNSENT`, and sent when one is; until a state is read, only local
    writes are known.
    """

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica or secrets.token_hex(4)
        self._state = LedgerState()
        self._lock = threading.Lock()
        self._writer: LedgerWriter | None = None
        self._unsent: list[LedgerEvent] = []
        # Set once this replica has read the ledger (a refresh cycle that asked for it).
        self.loaded = threading.Event()
        self._first_wait_over = threading.Event()
        self.reads = 0
        # Counted up whenever a user's generation rises: lets `UsersStore` cache its overlay.
        self.generations_version = 0

    @property
    def first_read_settled(self) -> bool:
        """Whether waiting for the first read is over: it came, or the one wait ran out."""
        return self.loaded.is_set() or self._first_wait_over.is_set()

    def await_first_read(self, seconds: float = FIRST_READ_WAIT_SECONDS) -> bool:
        """Wait for this replica's first read of the ledger, at most `seconds` and only until
        the first wait is over; whether it has been read.

        Called before a sign-in or a session is judged, so that a fresh replica issues and
        judges sessions with the generations and sign-outs the others know (a session issued
        with a stale generation would be ended moments later on every replica). If Temporal
        does not answer in time, this replica judges by its own records until it does.
        """
        if self.loaded.is_set():
            return True
        if not self._first_wait_over.is_set():
            if not self.loaded.wait(seconds):
                logger.warning(
                    "the auth ledger was not read within %g s (Temporal unavailable?): sessions "
                    "are judged by this replica's own records until it is",
                    seconds,
                )
            self._first_wait_over.set()
        return self.loaded.is_set()

    def attach(self, writer: LedgerWriter) -> None:
        """Send this replica's writes through `writer` from now on, the unsent ones first."""
        with self._lock:
            self._writer = writer
            unsent, self._unsent = self._unsent, []
        for event in unsent:
            writer.submit(event)

    def _write(self, event: LedgerEvent) -> None:
        with self._lock:
            before = (
                dict(self._state.generations) if event.kind is LedgerEventKind.GENERATION else None
            )
            self._state.apply(event)
            if before is not None and before != self._state.generations:
                self.generations_version += 1
            writer = self._writer
            if writer is None:
                if len(self._unsent) < MAX_UNSENT:
                    self._unsent.append(event)
                return
        writer.submit(event)

    def apply_memo(self, data: bytes) -> None:
        """Take in the ledger as the refresher read it (the memo payload's JSON bytes)."""
        try:
            read = LedgerState.from_memo_bytes(data)
        except ValueError as exc:
            logger.warning("the auth ledger's memo cannot be read, ignored: %s", exc)
            return
        with self._lock:
            before = dict(self._state.generations)
            self._state.merge(read)
            self._state.prune(time.time())
            if before != self._state.generations:
                self.generations_version += 1
            self.reads += 1

    def revoke(self, jtis: Mapping[str, float]) -> None:
        """End these sessions (`jti` -> expiry) here at once and on every replica soon."""
        for jti, expires in jtis.items():
            self._write(LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=expires))

    def is_revoked(self, jti: str) -> bool:
        """Whether any replica ended the session `jti` (as far as this one has read)."""
        with self._lock:
            expires = self._state.revoked.get(jti)
        return expires is not None and expires > time.time()

    def raise_generation(self, username: str, generation: int) -> None:
        """Sessions of `username` need at least `generation` from now on, on every replica."""
        self._write(
            LedgerEvent(kind=LedgerEventKind.GENERATION, username=username, generation=generation)
        )

    def generation(self, username: str) -> int:
        """The highest generation any replica set for `username` (0 if none)."""
        with self._lock:
            return self._state.generations.get(username, 0)

    def generations(self) -> dict[str, int]:
        """Every user's highest generation set through the ledger."""
        with self._lock:
            return dict(self._state.generations)

    def record_failure(self, key: str, at: float | None = None) -> None:
        """Count a failed login against `key` (`failure_key`) on every replica."""
        moment = time.time() if at is None else at
        self._write(
            LedgerEvent(kind=LedgerEventKind.FAILURE, key=key, at=moment, origin=self.replica)
        )

    def others_failures(self, key: str, now: float | None = None) -> list[float]:
        """When other replicas saw failed logins against `key` within the window, oldest first."""
        since = (time.time() if now is None else now) - FAILURE_WINDOW_SECONDS
        with self._lock:
            seen = list(self._state.failures.get(key, ()))
        return [at for at, origin in seen if at > since and origin != self.replica]
