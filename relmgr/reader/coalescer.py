"""Single flight with a short memory: concurrent calls for one key share one call.

This is what keeps the number of viewers from changing the load on Temporal for the calls that
are not served from a snapshot (cold loads, describes, live queries, readiness).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from relmgr.reader.clock import Clock

V = TypeVar("V")


class Coalescer(Generic[V]):
    """Concurrent calls for one key share one call; a success is reused for `ttl` seconds."""

    def __init__(self, clock: Clock, *, ttl: float = 0.0, max_entries: int = 1024) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max_entries = max_entries
        self._values: dict[str, tuple[float, V]] = {}
        self._flights: dict[str, asyncio.Future[V]] = {}

    async def get(self, key: str, call: Callable[[], Awaitable[V]]) -> V:
        """The value for `key`: cached, or from the call in flight, or from a new call."""
        if self._ttl > 0:
            hit = self._values.get(key)
            if hit is not None and self._clock.monotonic() - hit[0] < self._ttl:
                return hit[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._run(key, call))
            # Retrieve the outcome even if every waiter was cancelled (no "never retrieved" log).
            flight.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._flights[key] = flight
        # Shielded: one waiter giving up (a page timeout) does not cancel the others' call.
        return await asyncio.shield(flight)

    async def _run(self, key: str, call: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await call()
        finally:
            self._flights.pop(key, None)
        if self._ttl > 0:
            if len(self._values) >= self._max_entries:
                self._prune()
            self._values[key] = (self._clock.monotonic(), value)
        return value

    def _prune(self) -> None:
        now = self._clock.monotonic()
        for key in [k for k, (at, _) in self._values.items() if now - at >= self._ttl]:
            del self._values[key]
        while len(self._values) >= self._max_entries:
            self._values.pop(next(iter(self._values)))
