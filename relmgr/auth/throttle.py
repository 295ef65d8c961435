"""Login throttling shared by the dashboard and the API: N failed logins a minute per username,
and a much looser M per client address, then wait.

The per-username limit is the one that stops guessing a password. The per-client limit only
blunts spraying many names from one place; it is loose so that failing other names from one
client (or from behind one proxy) never locks a named user out.

Uses the `limits` library's moving window over in-memory storage: each process counts its own
failures. Given an `AuthLedger` (`relmgr.auth.ledger`), each failure also goes to the ledger
every replica reads, and each replica adds the other replicas' failures within the window to its
own count: a limit reached on one replica holds on all of them within one refresh.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from relmgr.auth.ledger import AuthLedger, failure_key
from relmgr.temporal.ledger_state import FAILURE_WINDOW_SECONDS

# Keys are cut to this length so that a flood of giant usernames cannot grow memory.
_MAX_KEY = 64


@dataclass(frozen=True, slots=True)
class Throttle:
    """A login that must wait: which key tripped, and for how many seconds."""

    scope: str
    retry_after: int


class LoginLimiter:
    """Counts failed logins per username (and per client, if given) in a moving one-minute window.

    Uses the `limits` library's moving window over in-memory storage for this process's failures,
    plus the other replicas' failures the `ledger` (if any) knows of. Logins still being checked
    (bcrypt takes a while) count as possible failures, so a burst of parallel guesses cannot slip
    past the limit before the first failures are recorded. Safe to share between threads
    (Streamlit runs each session's script in a thread of its own).
    """

    def __init__(
        self,
        failures_per_minute: int,
        client_failures_per_minute: int = 60,
        ledger: AuthLedger | None = None,
    ) -> None:
        self.ledger = ledger
        self._items = {
            "user": RateLimitItemPerMinute(failures_per_minute),
            "client": RateLimitItemPerMinute(client_failures_per_minute),
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, client: str | None) -> list[tuple[str, str]]:
        keys = [("user", username.strip().lower()[:_MAX_KEY])]
        if client is not None:
            keys.append(("client", client[:_MAX_KEY]))
        return keys

    def start(self, username: str, client: str | None = None) -> Throttle | None:
        """A Throttle if this login must wait; otherwise None, and the attempt is counted in flight.

        Every `start` that returns None must be followed by exactly one `finish`.
        """
        keys = self._keys(username, client)
        with self._lock:
            for scope, key in keys:
                pending = self._in_flight[(scope, key)]
                item = self._items[scope]
                elsewhere = self._elsewhere(scope, key)
                cost = pending + 1 + len(elsewhere)
                if cost > item.amount or not self._limiter.test(
                    item, "login", scope, key, cost=cost
                ):
                    stats = self._limiter.get_window_stats(item, "login", scope, key)
                    now = time.time()
                    # Held up only by logins still in flight: their outcome is a moment away.
                    wait = 1
                    if stats.remaining == 0:
                        wait = max(1, math.ceil(stats.reset_time - now))
                    elif elsewhere:
                        # Until the oldest failure seen elsewhere leaves the window.
                        wait = max(1, math.ceil(elsewhere[0] + FAILURE_WINDOW_SECONDS - now))
                    return Throttle(scope=scope, retry_after=wait)
            for scope_key in keys:
                self._in_flight[scope_key] += 1
        return None

    def finish(self, username: str, client: str | None = None, *, failed: bool) -> None:
        """End an attempt begun with `start`; a failure counts against the username and client."""
        with self._lock:
            for scope, key in self._keys(username, client):
                self._in_flight[(scope, key)] -= 1
                if self._in_flight[(scope, key)] <= 0:
                    del self._in_flight[(scope, key)]
                if failed:
                    self._limiter.hit(self._items[scope], "login", scope, key)
                    if self.ledger is not None:
                        self.ledger.record_failure(failure_key(scope, key))

    def _elsewhere(self, scope: str, key: str) -> list[float]:
        """When other replicas saw failures against this key in the window (none without a
        ledger), oldest first."""
        if self.ledger is None:
            return []
        return self.ledger.others_failures(failure_key(scope, key))
