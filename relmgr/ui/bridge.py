"""A synchronous facade over an async reader that lives on one background event loop.

The Temporal client is async and not thread-safe, while Streamlit reruns its script in many
threads. So one daemon thread owns one event loop, the reader and its client; every page call is
handed to that loop and waited for with a timeout. Never `asyncio.run` per rerun.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from relmgr.errors import ReadTimeoutError, TemporalUnavailableError
from relmgr.models import (
    Control,
    Entity,
    EntityDetail,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.reader.matching import MAX_EXPORT_ROWS, MatchingReleases, matching_releases
from relmgr.reader.protocol import ReaderStats, ReleaseReader
from relmgr.temporal.messages import ControlRequest, ControlResult

if TYPE_CHECKING:
    from relmgr.control import ControlSender

T = TypeVar("T")


class _BackgroundLoop:
    """One daemon thread running one event loop; coroutines are handed to it from any thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """False once the loop's thread has ended (a call handed to it would never run)."""
        return self._thread.is_alive()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop and wait at most `timeout` seconds; on a timeout it is
        cancelled and `concurrent.futures.TimeoutError` raised."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float) -> None:
        """Stop the loop and its thread, and close the loop once the thread has ended."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


def _ignore_failure(future: concurrent.futures.Future[ReleaseReader]) -> None:
    # A failed warm-up is not lost: the next read builds the reader again and reports it.
    if not future.cancelled():
        future.exception()


class SyncReader:
    """Call a `ReleaseReader` from any thread; each call is bounded by `timeout` seconds."""

    def __init__(
        self,
        factory: Callable[[], Awaitable[ReleaseReader]],
        *,
        timeout: float = 5.0,
        name: str = "relmgr-reader-loop",
    ) -> None:
        self.timeout = timeout
        self._background = _BackgroundLoop(name)
        self._factory = factory
        self._reader: ReleaseReader | None = None
        self._reader_lock = asyncio.Lock()
        self._closed = False
        self._warming: concurrent.futures.Future[ReleaseReader] | None = None

    async def _get_reader(self) -> ReleaseReader:
        async with self._reader_lock:
            if self._reader is None:
                self._reader = await self._factory()
            return self._reader

    def warm(self) -> None:
        """Start building the reader on the loop without waiting (once at a time); a failure is
        left for the next read to meet and report."""
        if self._closed or self._reader is not None or not self._background.alive:
            return
        if self._warming is not None and not self._warming.done():
            return
        self._warming = asyncio.run_coroutine_threadsafe(self._get_reader(), self._background.loop)
        self._warming.add_done_callback(_ignore_failure)

    def _run(self, call: Callable[[ReleaseReader], Coroutine[Any, Any, T]], timeout: float) -> T:
        if self._closed:
            raise TemporalUnavailableError("the reader is closed")
        if not self._background.alive:
            # A call handed to a loop that no longer runs would only wait out its timeout.
            raise TemporalUnavailableError("the reader's event loop has stopped")

        async def invoke() -> T:
            return await call(await self._get_reader())

        try:
            return self._background.run(invoke(), timeout)
        except concurrent.futures.TimeoutError:
            raise ReadTimeoutError(f"Temporal did not answer within {timeout:g} s") from None

    def list_releases(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of releases."""
        return self._run(lambda r: r.list_releases(query), self.timeout)

    def matching_releases(
        self, query: ReleaseQuery, *, limit: int = MAX_EXPORT_ROWS
    ) -> MatchingReleases:
        """Every release the query matches, for an export (`relmgr.reader.matching`)."""
        return self._run(lambda r: matching_releases(r, query, limit=limit), self.timeout)

    def get_release(self, release_id: str) -> ReleaseSummary:
        """One release without its tree."""
        return self._run(lambda r: r.get_release(release_id), self.timeout)

    def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        """The whole tree of a release."""
        return self._run(lambda r: r.get_release_hierarchy(release_id), self.timeout)

    def get_entity(self, entity_id: str) -> EntityDetail:
        """Any entity with breadcrumbs and children."""
        return self._run(lambda r: r.get_entity(entity_id), self.timeout)

    def get_live_state(self, entity_id: str) -> Entity:
        """The entity as its running workflow reports it."""
        return self._run(lambda r: r.get_live_state(entity_id), self.timeout)

    def check_ready(self) -> None:
        """Return if Temporal answers."""
        self._run(lambda r: r.check_ready(), self.timeout)

    def stats(self) -> ReaderStats:
        """What the reader has cost Temporal so far."""

        async def read_stats(reader: ReleaseReader) -> ReaderStats:
            return reader.stats()

        return self._run(read_stats, self.timeout)

    def close(self) -> None:
        """Close the reader and stop the loop thread."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            if self._reader is not None:
                await self._reader.aclose()

        try:
            if self._background.alive:
                self._background.run(shutdown(), self.timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        finally:
            self._background.stop(self.timeout)


class SyncController:
    """Send controls from any thread through one `ControlSender` on one background event loop."""

    def __init__(
        self,
        factory: Callable[[], Awaitable[ControlSender]],
        *,
        timeout: float = 6.0,
        name: str = "relmgr-control-loop",
    ) -> None:
        self.timeout = timeout
        self._background = _BackgroundLoop(name)
        self._factory = factory
        self._sender: ControlSender | None = None
        self._lock = asyncio.Lock()

    def send(
        self, action: Control, target_id: str, request: ControlRequest, *, request_id: str
    ) -> ControlResult:
        """Send one control and wait for its result (a `relmgr.errors` error otherwise)."""

        async def invoke() -> ControlResult:
            async with self._lock:
                if self._sender is None:
                    self._sender = await self._factory()
            return await self._sender.send(action, target_id, request, request_id=request_id)

        try:
            return self._background.run(invoke(), self.timeout)
        except concurrent.futures.TimeoutError:
            raise TemporalUnavailableError(
                f"Temporal did not answer within {self.timeout:g} s; nothing was changed"
            ) from None

    def close(self) -> None:
        """Stop the loop thread and close its loop."""
        self._background.stop(self.timeout)
