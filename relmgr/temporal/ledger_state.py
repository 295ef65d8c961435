"""The auth ledger's content (`relmgr.auth.ledger` says what it is for): pure, no Temporal.

Shared by the ledger workflow (`relmgr.temporal.ledger_workflow`), which keeps it in its memo,
and by every replica's view of it (`relmgr.auth.ledger.AuthLedger`), which merges what it reads.
The state is merged by union (ended sessions until their expiry, the highest generation per user,
failed logins within the throttle window), so applying a write twice changes nothing, and it is
cut to fixed bounds so the memo stays small.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MEMO_AUTH = "relmgr.auth"
# Failed logins older than this no longer count (the limiter's moving window is one minute).
FAILURE_WINDOW_SECONDS = 60.0
# Bounds on the memo (a few hundred kB at most, well under Temporal's 2 MB memo limit).
MAX_REVOKED = 5000
MAX_FAILURE_KEYS = 1000
MAX_FAILURES_PER_KEY = 50
MAX_USERS = 5000
_MAX_TEXT = 64


class LedgerEventKind(StrEnum):
    """What one write to the ledger does."""

    REVOKE = "revoke"
    GENERATION = "generation"
    FAILURE = "failure"


class LedgerEvent(BaseModel):
    """One write: end a session, raise a user's generation, or count a failed login."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LedgerEventKind
    # REVOKE: the session's jti and its expiry (Unix seconds).
    jti: str = Field(default="", max_length=_MAX_TEXT)
    expires: float = 0.0
    # GENERATION: the user and the generation sessions must carry from now on.
    username: str = Field(default="", max_length=_MAX_TEXT)
    generation: int = Field(default=0, ge=0)
    # FAILURE: the limiter's key (`user:<name>` or `client:<address>`), when, and which replica.
    key: str = Field(default="", max_length=2 * _MAX_TEXT)
    at: float = 0.0
    origin: str = Field(default="", max_length=_MAX_TEXT)


@dataclass
class LedgerState:
    """The ledger's content; merged by union, so applying the same thing twice changes nothing."""

    revoked: dict[str, float] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    # key -> [(at, origin), ...], oldest first.
    failures: dict[str, list[tuple[float, str]]] = field(default_factory=dict)

    def apply(self, event: LedgerEvent) -> None:
        """Apply one write (pruning is separate: `prune`)."""
        if event.kind is LedgerEventKind.REVOKE:
            if event.jti and math.isfinite(event.expires):
                self.revoked[event.jti] = max(event.expires, self.revoked.get(event.jti, 0.0))
        elif event.kind is LedgerEventKind.GENERATION:
            if event.username:
                known = self.generations.get(event.username, 0)
                self.generations[event.username] = max(known, event.generation)
        elif event.key and math.isfinite(event.at):
            seen = self.failures.setdefault(event.key, [])
            if (event.at, event.origin) not in seen:
                seen.append((event.at, event.origin))
                seen.sort()

    def merge(self, other: LedgerState) -> None:
        """Take in everything `other` knows."""
        for jti, expires in other.revoked.items():
            self.revoked[jti] = max(expires, self.revoked.get(jti, 0.0))
        for username, generation in other.generations.items():
            self.generations[username] = max(generation, self.generations.get(username, 0))
        for key, failures in other.failures.items():
            seen = self.failures.setdefault(key, [])
            seen.extend(f for f in failures if f not in seen)
            seen.sort()

    def prune(self, now: float) -> None:
        """Drop what no longer matters, then cut the state to its bounds.

        Beyond `MAX_REVOKED` unexpired sessions the ones expiring soonest go first (and the
        replica that ended them still refuses them from its revoked sessions file).
        """
        live = {j: e for j, e in self.revoked.items() if e > now}
        if len(live) > MAX_REVOKED:
            kept = sorted(live.items(), key=lambda item: item[1])[-MAX_REVOKED:]
            live = dict(kept)
        self.revoked = live
        since = now - FAILURE_WINDOW_SECONDS
        failures = {
            key: [f for f in seen if f[0] > since][-MAX_FAILURES_PER_KEY:]
            for key, seen in self.failures.items()
        }
        failures = {key: seen for key, seen in failures.items() if seen}
        if len(failures) > MAX_FAILURE_KEYS:
            newest = sorted(failures, key=lambda key: failures[key][-1][0])[-MAX_FAILURE_KEYS:]
            failures = {key: failures[key] for key in newest}
        self.failures = failures
        if len(self.generations) > MAX_USERS:
            highest = sorted(self.generations.items(), key=lambda item: item[1])[-MAX_USERS:]
            self.generations = dict(highest)

    def to_memo(self) -> dict[str, Any]:
        """The JSON object kept in the workflow's `relmgr.auth` memo."""
        return {
            "revoked": dict(sorted(self.revoked.items())),
            "generations": dict(sorted(self.generations.items())),
            "failures": {k: [[at, origin] for at, origin in v] for k, v in self.failures.items()},
        }

    @classmethod
    def from_memo(cls, document: object) -> LedgerState:
        """The state in a memo object; ValueError saying what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("the auth ledger memo is not an object")
        revoked, generations, failures = (
            document.get("revoked", {}),
            document.get("generations", {}),
            document.get("failures", {}),
        )
        if not (
            isinstance(revoked, dict)
            and isinstance(generations, dict)
            and isinstance(failures, dict)
        ):
            raise ValueError("the auth ledger memo's revoked/generations/failures are not objects")
        state = cls()
        for jti, expires in revoked.items():
            if isinstance(expires, int | float) and not isinstance(expires, bool):
                state.revoked[str(jti)] = float(expires)
        for username, generation in generations.items():
            if isinstance(generation, int) and not isinstance(generation, bool) and generation >= 0:
                state.generations[str(username)] = generation
        for key, seen in failures.items():
            if not isinstance(seen, list):
                continue
            entries = [
                (float(item[0]), str(item[1]))
                for item in seen
                if isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], int | float)
                and not isinstance(item[0], bool)
            ]
            if entries:
                state.failures[str(key)] = sorted(entries)
        return state

    @classmethod
    def from_memo_bytes(cls, data: bytes) -> LedgerState:
        """The state in the memo payload's JSON bytes; ValueError if it is not one."""
        return cls.from_memo(json.loads(data))
