"""The login limiter: failures per username (and client) in a minute, in-flight logins counted."""

from __future__ import annotations

import threading

from relmgr.auth.throttle import LoginLimiter, Throttle


def fail(limiter: LoginLimiter, username: str, client: str | None = None) -> Throttle | None:
    """One failed login: its `start` answer (None when it was let through)."""
    throttle = limiter.start(username, client)
    if throttle is None:
        limiter.finish(username, client, failed=True)
    return throttle


def test_the_nth_plus_one_failure_waits_and_successes_do_not_count() -> None:
    """Three failures a minute allowed: the fourth attempt waits most of a minute."""
    limiter = LoginLimiter(3)
    for _ in range(5):
        assert limiter.start("alice") is None
        limiter.finish("alice", failed=False)
    assert [fail(limiter, "alice") for _ in range(3)] == [None, None, None]
    throttle = limiter.start("alice")
    assert throttle is not None
    assert throttle.scope == "user"
    assert 55 <= throttle.retry_after <= 60


def test_usernames_are_counted_apart_and_case_blind() -> None:
    """Bob is not held up by Alice's failures; ' ALICE ' is Alice."""
    limiter = LoginLimiter(2)
    fail(limiter, "alice")
    fail(limiter, " ALICE ")
    assert limiter.start("alice") is not None
    assert limiter.start("bob") is None


def test_a_client_is_limited_across_usernames() -> None:
    """Guessing many names from one address trips the (looser) client key."""
    limiter = LoginLimiter(2, 3)
    fail(limiter, "a", "10.0.0.1")
    fail(limiter, "b", "10.0.0.1")
    fail(limiter, "c", "10.0.0.1")
    throttle = limiter.start("d", "10.0.0.1")
    assert throttle is not None
    assert throttle.scope == "client"
    assert limiter.start("c", "10.0.0.2") is None


def test_logins_in_flight_count_as_possible_failures() -> None:
    """With two allowed, a third parallel attempt waits a moment (1 s) for the first two."""
    limiter = LoginLimiter(2)
    assert limiter.start("alice") is None
    assert limiter.start("alice") is None
    assert limiter.start("alice") == Throttle(scope="user", retry_after=1)
    limiter.finish("alice", failed=False)
    assert limiter.start("alice") is None


def test_parallel_threads_never_let_more_than_the_limit_through() -> None:
    """Twenty threads starting at once: exactly the limit get through."""
    limiter = LoginLimiter(5)
    barrier = threading.Barrier(20)
    let_through: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        passed = limiter.start("alice") is None
        with lock:
            let_through.append(passed)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(let_through) == [False] * 15 + [True] * 5


def test_failing_other_names_does_not_lock_a_named_user_out() -> None:
    """Twice the per-username limit of failures for random names, from one client, leaves the
    client key open: `admin` with the right password is still let through."""
    limiter = LoginLimiter(5)
    for i in range(10):
        assert fail(limiter, f"random-{i}", "10.0.0.1") is None
    assert limiter.start("admin", "10.0.0.1") is None
