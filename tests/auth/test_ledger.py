"""The auth ledger's state and one replica's view of it: pure logic, no Temporal."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from relmgr.auth.ledger import AuthLedger, failure_key
from relmgr.auth.sessions import RevocationStore, new_jti
from relmgr.auth.store import UsersStore
from relmgr.auth.throttle import LoginLimiter
from relmgr.auth.users import revoke_sessions, session_epoch
from relmgr.temporal.ledger_state import (
    FAILURE_WINDOW_SECONDS,
    MAX_FAILURES_PER_KEY,
    MAX_REVOKED,
    LedgerEvent,
    LedgerEventKind,
    LedgerState,
)
from tests.api.served import write_users

NOW = 1_800_000_000.0


class Recorder:
    """A `LedgerWriter` that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[LedgerEvent] = []

    def submit(self, event: LedgerEvent) -> None:
        self.events.append(event)


def revoke(jti: str, expires: float) -> LedgerEvent:
    return LedgerEvent(kind=LedgerEventKind.REVOKE, jti=jti, expires=expires)


def failure(key: str, at: float, origin: str) -> LedgerEvent:
    return LedgerEvent(kind=LedgerEventKind.FAILURE, key=key, at=at, origin=origin)


def memo_of(state: LedgerState) -> bytes:
    """The memo payload's bytes, as visibility hands them over."""
    return json.dumps(state.to_memo()).encode()


def test_the_state_round_trips_through_its_memo_and_applying_twice_changes_nothing() -> None:
    """A revocation, a generation and a failure survive the memo; a repeated write is one."""
    state = LedgerState()
    events = [
        revoke("a" * 32, NOW + 60),
        LedgerEvent(kind=LedgerEventKind.GENERATION, username="alice", generation=3),
        failure("user:alice", NOW - 1, "r1"),
    ]
    for event in [*events, *events]:
        state.apply(event)
    again = LedgerState.from_memo_bytes(memo_of(state))
    assert again == state
    assert again.revoked == {"a" * 32: NOW + 60}
    assert again.generations == {"alice": 3}
    assert again.failures == {"user:alice": [(NOW - 1, "r1")]}


def test_generations_only_rise_and_merging_is_a_union() -> None:
    """A lower generation never lowers the one in force; merge keeps both sides' entries."""
    mine, theirs = LedgerState(), LedgerState()
    mine.apply(LedgerEvent(kind=LedgerEventKind.GENERATION, username="alice", generation=5))
    mine.apply(LedgerEvent(kind=LedgerEventKind.GENERATION, username="alice", generation=2))
    theirs.apply(LedgerEvent(kind=LedgerEventKind.GENERATION, username="bob", generation=1))
    theirs.apply(revoke("b" * 32, NOW + 10))
    mine.merge(theirs)
    assert mine.generations == {"alice": 5, "bob": 1}
    assert mine.revoked == {"b" * 32: NOW + 10}


def test_pruning_drops_expired_sessions_and_failures_outside_the_window() -> None:
    """Expired jtis and failures older than the window leave; live ones stay."""
    state = LedgerState()
    state.apply(revoke("a" * 32, NOW - 1))
    state.apply(revoke("b" * 32, NOW + 1))
    state.apply(failure("user:alice", NOW - FAILURE_WINDOW_SECONDS - 1, "r1"))
    state.apply(failure("user:alice", NOW - 5, "r1"))
    state.apply(failure("user:bob", NOW - FAILURE_WINDOW_SECONDS - 1, "r1"))
    state.prune(NOW)
    assert state.revoked == {"b" * 32: NOW + 1}
    assert state.failures == {"user:alice": [(NOW - 5, "r1")]}


def test_the_state_is_bounded() -> None:
    """Beyond the bounds, the soonest-expiring jtis and the oldest failures of a key go first."""
    state = LedgerState()
    for number in range(MAX_REVOKED + 10):
        state.apply(revoke(f"{number:032x}", NOW + 100 + number))
    for number in range(MAX_FAILURES_PER_KEY + 5):
        state.apply(failure("client:10.0.0.1", NOW - 30 + number * 0.1, "r1"))
    state.prune(NOW)
    assert len(state.revoked) == MAX_REVOKED
    assert min(state.revoked.values()) == NOW + 100 + 10
    kept = state.failures["client:10.0.0.1"]
    assert len(kept) == MAX_FAILURES_PER_KEY
    assert kept[0][0] == pytest.approx(NOW - 30 + 5 * 0.1)


@pytest.mark.parametrize(
    "document",
    [[], {"revoked": []}, {"generations": "x"}, {"failures": 3}],
    ids=["list", "revoked-list", "generations-text", "failures-number"],
)
def test_a_malformed_memo_is_refused_with_the_reason(document: object) -> None:
    """A memo that is not the ledger's shape raises ValueError (the view logs and ignores it)."""
    with pytest.raises(ValueError, match="auth ledger memo"):
        LedgerState.from_memo(document)


def test_a_malformed_memo_leaves_the_view_as_it_was(caplog: pytest.LogCaptureFixture) -> None:
    """The view keeps what it knew and logs a warning."""
    ledger = AuthLedger()
    ledger.revoke({"c" * 32: time.time() + 60})
    ledger.apply_memo(b"not json")
    assert ledger.is_revoked("c" * 32)
    assert "cannot be read" in caplog.text


def test_a_local_write_holds_at_once_and_is_sent() -> None:
    """The replica that ends a session refuses it at once, before any refresh, and sends it."""
    ledger, writer = AuthLedger(), Recorder()
    ledger.attach(writer)
    jti = new_jti()
    ledger.revoke({jti: time.time() + 60})
    assert ledger.is_revoked(jti)
    assert [e.kind for e in writer.events] == [LedgerEventKind.REVOKE]
    assert writer.events[0].jti == jti


def test_writes_made_before_temporal_is_reached_are_sent_once_it_is() -> None:
    """A logout taken while the replica had no writer yet holds at once and is sent on attach."""
    ledger, writer = AuthLedger(), Recorder()
    jti = new_jti()
    ledger.revoke({jti: time.time() + 60})
    assert ledger.is_revoked(jti)
    ledger.attach(writer)
    assert [(e.kind, e.jti) for e in writer.events] == [(LedgerEventKind.REVOKE, jti)]
    ledger.revoke({new_jti(): time.time() + 60})
    assert len(writer.events) == 2


def test_a_session_ended_on_another_replica_is_refused_after_a_read(tmp_path: Path) -> None:
    """Replica B's store accepts the jti until B reads the ledger A wrote to, then refuses it."""
    a, b = AuthLedger("replica-a"), AuthLedger("replica-b")
    shared = LedgerState()
    writer = Recorder()
    a.attach(writer)
    store_a = RevocationStore(tmp_path / "a" / "revoked.json", a)
    store_b = RevocationStore(tmp_path / "b" / "revoked.json", b)
    jti = new_jti()
    store_a.revoke({jti: time.time() + 600})
    assert not store_a.accepts(jti)
    assert store_b.accepts(jti)
    for event in writer.events:  # what the workflow does with the signals
        shared.apply(event)
    b.apply_memo(memo_of(shared))
    assert not store_b.accepts(jti)
    assert store_b.is_revoked(jti)


def test_failures_elsewhere_count_toward_the_limit_but_own_ones_only_once() -> None:
    """Two failures on A and one on B: B (limit 3) is throttled; A's own are not counted twice."""
    a, b = AuthLedger("replica-a"), AuthLedger("replica-b")
    writer_a, writer_b = Recorder(), Recorder()
    a.attach(writer_a)
    b.attach(writer_b)
    limiter_a, limiter_b = LoginLimiter(3, ledger=a), LoginLimiter(3, ledger=b)
    for limiter, name in ((limiter_a, "alice"), (limiter_a, "alice"), (limiter_b, "alice")):
        assert limiter.start(name) is None
        limiter.finish(name, failed=True)
    shared = LedgerState()
    for event in [*writer_a.events, *writer_b.events]:
        shared.apply(event)
    a.apply_memo(memo_of(shared))
    b.apply_memo(memo_of(shared))
    assert b.others_failures(failure_key("user", "alice")) != []
    throttle_b = limiter_b.start("alice")
    assert throttle_b is not None
    assert throttle_b.scope == "user"
    assert 50 <= throttle_b.retry_after <= 60
    throttle_a = limiter_a.start("alice")
    assert throttle_a is not None  # two of A's own (counted once) + one of B's
    assert limiter_b.start("bob") is None


def test_without_the_ledger_a_replica_counts_only_its_own_failures() -> None:
    """The old behaviour, for contrast: B's limiter knows nothing of A's failures."""
    limiter_a, limiter_b = LoginLimiter(2), LoginLimiter(2)
    for _ in range(2):
        assert limiter_a.start("alice") is None
        limiter_a.finish("alice", failed=True)
    assert limiter_a.start("alice") is not None
    assert limiter_b.start("alice") is None


def test_a_generation_raised_anywhere_changes_the_epoch_everywhere(tmp_path: Path) -> None:
    """`relmgr users revoke` against A's copy of the users file ends the epoch on B too; a revoke
    then run against B's copy (its file still at 0) raises the generation in force again."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    file_a = write_users(tmp_path / "a" / "users.yaml", "secret-password")
    file_b = tmp_path / "b" / "users.yaml"
    file_b.write_text(file_a.read_text())
    a, b = AuthLedger("replica-a"), AuthLedger("replica-b")
    writer = Recorder()
    a.attach(writer)
    store_a, store_b = UsersStore(file_a, a), UsersStore(file_b, b)
    before = session_epoch(store_b.get("admin"))  # type: ignore[arg-type]
    assert before == session_epoch(store_a.get("admin"))  # type: ignore[arg-type]
    revoke_sessions(file_a, "admin")
    raised_a = store_a.get("admin")
    assert raised_a is not None
    assert raised_a.session_generation == 1
    shared = LedgerState()
    for event in writer.events:
        shared.apply(event)
    b.apply_memo(memo_of(shared))
    after = store_b.get("admin")
    assert after is not None
    assert after.session_generation == 1
    assert session_epoch(after) == session_epoch(raised_a) != before
    revoke_sessions(file_b, "admin")  # B's file: 0 -> 1, but 1 is already in force
    again = store_b.get("admin")
    assert again is not None
    assert again.session_generation == 2


def test_the_first_read_is_awaited_once_and_then_never_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before any read, the first wait lasts its bound and says so; later waits return at once
    (this replica then judges by its own records), and a read ends any wait."""
    ledger = AuthLedger()
    assert not ledger.first_read_settled
    began = time.monotonic()
    assert ledger.await_first_read(0.3) is False
    assert ledger.first_read_settled
    first = time.monotonic() - began
    assert 0.3 <= first < 1.5
    assert "the auth ledger was not read within 0.3 s" in caplog.text
    began = time.monotonic()
    assert ledger.await_first_read(5.0) is False
    assert time.monotonic() - began < 0.1
    ledger.loaded.set()
    assert ledger.await_first_read(5.0) is True


def test_a_wait_for_the_first_read_ends_when_the_read_comes() -> None:
    """A wait begun before the first read returns as soon as the refresher has read the ledger."""
    ledger = AuthLedger()
    reader = threading.Timer(0.2, ledger.loaded.set)
    began = time.monotonic()
    reader.start()
    try:
        assert ledger.await_first_read(10.0) is True
    finally:
        reader.cancel()
    assert 0.15 <= time.monotonic() - began < 5.0
