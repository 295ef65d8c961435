"""The thread-to-loop bridge (`relmgr.ui.bridge.SyncReader`): one reader on one background loop,
called from many threads, every call bounded by its timeout, even when the loop has died."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from relmgr.errors import NotFoundError, ReadTimeoutError, TemporalUnavailableError
from relmgr.models import Entity, ReleaseSummary
from relmgr.reader.protocol import ReleaseReader
from relmgr.testing.factories import make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.bridge import SyncReader

# Generous slack for a 2-core machine shared with other test runs: a bounded call must end within
# its timeout plus this; an unbounded one would not end at all.
SLACK_S = 2.0


class ProbeReader(FakeReader):
    """A fake reader that records which thread each call ran in, can be made to hang, can stop
    its own event loop (a dying loop), and counts how often it was closed."""

    def __init__(self) -> None:
        super().__init__([make_hierarchy(f"r{n}") for n in range(8)])
        self.threads: set[str] = set()
        self.hang = asyncio.Event()  # never set: a call that waits for it never answers
        self.cancelled = threading.Event()
        self.closed = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def get_release(self, release_id: str) -> ReleaseSummary:
        """The fake's answer, after one turn of the loop so that concurrent calls overlap."""
        self.threads.add(threading.current_thread().name)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return await super().get_release(release_id)
        finally:
            self.in_flight -= 1

    async def check_ready(self) -> None:
        """Never answers; notes when the bridge gives up on it and cancels it."""
        try:
            await self.hang.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def get_live_state(self, entity_id: str) -> Entity:
        """Stops the loop it runs on, as a reader bug or a fatal error would, and never returns."""
        asyncio.get_running_loop().stop()
        await self.hang.wait()
        raise AssertionError("unreachable: nothing sets the event")

    async def aclose(self) -> None:
        self.closed += 1


class Factory:
    """Builds the probe reader; counts calls; can fail the first `failures` times."""

    def __init__(self, *, failures: int = 0, delay: float = 0.0) -> None:
        self.reader = ProbeReader()
        self.calls = 0
        self.failures = failures
        self.delay = delay

    async def __call__(self) -> ReleaseReader:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.calls <= self.failures:
            raise TemporalUnavailableError("cannot connect to Temporal at 127.0.0.1:1")
        return self.reader


@pytest.fixture
def factory() -> Factory:
    """A factory of one probe reader."""
    return Factory()


@pytest.fixture
def bridge(factory: Factory) -> Iterator[SyncReader]:
    """A bridge with a short timeout, closed after the test."""
    sync = SyncReader(factory, timeout=0.3, name="test-bridge-loop")
    try:
        yield sync
    finally:
        sync.close()


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "test-bridge-loop"]


def test_calls_run_on_the_loop_thread_with_a_reader_built_once_on_first_use(
    bridge: SyncReader, factory: Factory
) -> None:
    """Nothing is built until the first call; every call runs on the bridge's one loop thread
    (never the caller's) against the same reader."""
    assert factory.calls == 0
    assert bridge.get_release("rel-r1").id == "rel-r1"
    assert bridge.get_release("rel-r2").id == "rel-r2"
    assert factory.calls == 1
    assert factory.reader.threads == {"test-bridge-loop"}
    assert factory.reader.calls == ["get_release", "get_release"]


def test_the_readers_errors_reach_the_caller_unchanged(bridge: SyncReader) -> None:
    """A relmgr error raised on the loop is raised in the calling thread as itself."""
    with pytest.raises(NotFoundError, match="release rel-none not found"):
        bridge.get_release("rel-none")


def test_a_call_that_never_answers_times_out_is_cancelled_and_the_bridge_still_works(
    bridge: SyncReader, factory: Factory
) -> None:
    """A hung read raises ReadTimeoutError after the timeout (naming it), its coroutine is
    cancelled on the loop, and the next call is answered normally."""
    began = time.monotonic()
    with pytest.raises(ReadTimeoutError, match=r"Temporal did not answer within 0\.3 s"):
        bridge.check_ready()
    waited = time.monotonic() - began
    assert 0.29 <= waited < 0.3 + SLACK_S
    assert factory.reader.cancelled.wait(SLACK_S), "the abandoned read was never cancelled"
    assert bridge.get_release("rel-r3").id == "rel-r3"


def test_a_failed_build_is_raised_and_retried_on_the_next_call() -> None:
    """A factory that fails (Temporal down at start-up) is not cached: the next call builds anew."""
    factory = Factory(failures=1)
    sync = SyncReader(factory, timeout=1.0)
    try:
        with pytest.raises(TemporalUnavailableError, match="cannot connect"):
            sync.get_release("rel-r1")
        assert sync.get_release("rel-r1").id == "rel-r1"
        assert factory.calls == 2
    finally:
        sync.close()


def test_many_threads_share_one_reader_and_their_calls_overlap_on_the_loop() -> None:
    """32 threads call at once (the first calls racing a slow build): one build, every thread
    gets its own answer, all run on the loop thread, and the calls run concurrently there."""
    factory = Factory(delay=0.2)
    sync = SyncReader(factory, timeout=10.0, name="test-bridge-loop")
    threads_count, calls_each = 32, 5
    start = threading.Barrier(threads_count)
    answers: dict[int, list[str]] = {}
    failures: list[BaseException] = []

    def caller(number: int) -> None:
        start.wait()
        try:
            answers[number] = [
                sync.get_release(f"rel-r{(number + k) % 8}").id for k in range(calls_each)
            ]
        except BaseException as error:  # reported below, with the thread that raised it
            failures.append(error)

    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads_count)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert not [w for w in workers if w.is_alive()], "a caller is still waiting"
    finally:
        sync.close()
    assert failures == []
    assert answers == {
        n: [f"rel-r{(n + k) % 8}" for k in range(calls_each)] for n in range(threads_count)
    }
    assert factory.calls == 1
    assert factory.reader.threads == {"test-bridge-loop"}
    assert factory.reader.most_in_flight > 1


def test_after_the_loop_dies_calls_fail_at_once_instead_of_waiting(factory: Factory) -> None:
    """A read that stops the bridge's loop ends that loop's thread and fails with ReadTimeoutError
    within its timeout; every later read fails at once, naming the stopped loop (before the fix it
    waited out a full timeout each); close() returns promptly."""
    sync = SyncReader(factory, timeout=0.3, name="test-bridge-loop")
    assert sync.get_release("rel-r1").id == "rel-r1"
    began = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        sync.get_live_state("rel-r1")
    assert time.monotonic() - began < 0.3 + SLACK_S
    for thread in _loop_threads():
        thread.join(SLACK_S)
    assert _loop_threads() == [], "the loop thread outlived its loop"
    began = time.monotonic()
    with pytest.raises(TemporalUnavailableError, match="the reader's event loop has stopped"):
        sync.get_release("rel-r2")
    assert time.monotonic() - began < 0.1
    began = time.monotonic()
    sync.close()
    assert time.monotonic() - began < 0.1
    assert factory.reader.closed == 0  # its loop is gone: nothing can run its aclose


def test_close_closes_the_reader_once_stops_the_thread_and_refuses_later_calls(
    factory: Factory,
) -> None:
    """close() closes the reader and ends the loop thread; a second close does nothing; a call
    after it fails at once with TemporalUnavailableError, and builds nothing."""
    sync = SyncReader(factory, timeout=1.0, name="test-bridge-loop")
    assert sync.get_release("rel-r1").id == "rel-r1"
    sync.close()
    sync.close()
    assert factory.reader.closed == 1
    assert _loop_threads() == []
    began = time.monotonic()
    with pytest.raises(TemporalUnavailableError, match="the reader is closed"):
        sync.get_release("rel-r1")
    assert time.monotonic() - began < 0.1
    assert factory.calls == 1


def test_close_before_any_call_builds_no_reader(factory: Factory) -> None:
    """A bridge closed unused never calls its factory (nothing to connect, nothing to close)."""
    sync = SyncReader(factory, timeout=1.0, name="test-bridge-loop")
    sync.close()
    assert (factory.calls, factory.reader.closed) == (0, 0)
    assert _loop_threads() == []
