"""The revoked sessions store: `jti`s only, expiry pruning, atomic shared writes, a cheap cached
read, and an unusable file that refuses cookies and tokens without being overwritten."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from relmgr.auth import sessions
from relmgr.auth.sessions import RevocationStore, is_jti, new_jti
from relmgr.errors import ConfigError
from relmgr.settings import Settings

NOW = 1_900_000_000.0
LATER = NOW + 3600


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the file goes (it does not exist yet)."""
    return tmp_path / "shared" / "revoked-sessions.json"


def jti(name: str) -> str:
    """A well-formed `jti` standing for `name` in a test."""
    return name.encode().hex().ljust(32, "0")[:32]


def revoke(path: Path, names: dict[str, float], *, now: float) -> None:
    """Revoke the `jti`s standing for `names`."""
    RevocationStore(path).revoke({jti(n): e for n, e in names.items()}, now=now)


def is_revoked(path: Path, name: str) -> bool:
    """Whether the `jti` standing for `name` is revoked."""
    return RevocationStore(path).is_revoked(jti(name))


def accepted(path: Path, name: str) -> bool:
    """Whether the `jti` standing for `name` may be used."""
    return RevocationStore(path).accepts(jti(name))


def age(path: Path, seconds: float = 60) -> None:
    """Date the file's last change `seconds` back, past the window in which it is re-read."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_missing_file_revokes_nothing(path: Path) -> None:
    """Before the first logout every cookie is accepted and none is revoked."""
    assert is_revoked(path, "token") is False
    assert accepted(path, "token") is True


def test_a_revoked_session_is_listed_as_its_jti_with_its_expiry(path: Path) -> None:
    """The file (made with its folder, owner-only) holds the `jti` and its expiry only."""
    revoke(path, {"the-token": LATER}, now=NOW)
    assert is_revoked(path, "the-token") is True
    assert accepted(path, "the-token") is False
    assert is_revoked(path, "another-token") is False
    assert accepted(path, "another-token") is True
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"version": 2, "revoked": {jti("the-token"): LATER}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "value",
    ["", "abc", "A" * 32, "g" * 32, "0" * 31, "0" * 33, "0" * 32 + "\n", " " + "0" * 31, None, 7],
)
def test_a_malformed_jti_is_never_accepted(path: Path, value: object) -> None:
    """Only 32 lowercase hex digits, the whole string, are a `jti`; anything else is refused."""
    assert is_jti(value) is False
    assert RevocationStore(path).accepts(value) is False


def test_new_jtis_are_well_formed_and_distinct() -> None:
    """Fresh `jti`s are 32 hex digits and never repeat."""
    made = {new_jti() for _ in range(1000)}
    assert len(made) == 1000
    assert all(is_jti(j) for j in made)


def test_a_version_1_file_of_digests_reads_as_empty(path: Path) -> None:
    """The old format listed digests of cookies without a `jti` (all refused now): it is empty."""
    path.parent.mkdir()
    path.write_text('{"version": 1, "revoked": {"ab": 1e12}}', encoding="utf-8")
    assert accepted(path, "token") is True
    revoke(path, {"token": LATER}, now=NOW)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "version": 2,
        "revoked": {jti("token"): LATER},
    }


def test_expired_entries_are_dropped_when_the_file_is_written(path: Path) -> None:
    """A write keeps entries still in force, drops expired ones, and never adds an expired one."""
    revoke(path, {"old": NOW + 10, "current": LATER}, now=NOW)
    revoke(path, {"new": LATER + 5, "already-expired": NOW + 15}, now=NOW + 20)
    listed = json.loads(path.read_text(encoding="utf-8"))["revoked"]
    assert listed == {jti("current"): LATER, jti("new"): LATER + 5}


def test_the_write_is_atomic_and_leaves_no_temporary_file(path: Path) -> None:
    """Only the list and its lock file are in the folder after writes."""
    revoke(path, {"a": LATER}, now=NOW)
    revoke(path, {"b": LATER}, now=NOW)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".revoked-sessions.json.lock",
        "revoked-sessions.json",
    ]


def test_concurrent_logouts_all_land(path: Path) -> None:
    """Eight writers at once (replicas sharing the file) lose none of each other's entries."""
    tokens = [f"t-{i}-{j}" for i in range(8) for j in range(5)]
    start = threading.Barrier(8)

    def writer(i: int) -> None:
        start.wait()
        for j in range(5):
            revoke(path, {f"t-{i}-{j}": LATER}, now=NOW)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = json.loads(path.read_text(encoding="utf-8"))["revoked"]
    assert sorted(listed) == sorted(jti(t) for t in tokens)


def test_a_settled_file_is_read_once_for_many_checks(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks against an unchanged file reuse one read; a change is seen at the next check."""
    revoke(path, {"first": LATER}, now=NOW)
    age(path)
    reads: list[Path] = []
    load = sessions._load

    def counting_load(target: Path) -> sessions._Listing:
        reads.append(target)
        return load(target)

    monkeypatch.setattr(sessions, "_load", counting_load)
    assert [is_revoked(path, "first") for _ in range(50)] == [True] * 50
    assert len(reads) == 1

    revoke(path, {"second": LATER}, now=NOW)  # as another replica would
    age(path, 30)
    assert is_revoked(path, "second") is True
    assert is_revoked(path, "first") is True
    assert len(reads) == 3  # the write's own read under the lock, then the new version


def test_a_fresh_file_is_not_trusted_to_the_cache(path: Path) -> None:
    """An in-place edit keeping size and mtime is still seen while the file is fresh."""
    revoke(path, {"aaaa": LATER}, now=NOW)
    assert is_revoked(path, "aaaa") is True
    before = path.stat()
    text = path.read_text(encoding="utf-8").replace(jti("aaaa"), jti("bbbb"))
    with path.open("r+", encoding="utf-8") as out:
        out.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert is_revoked(path, "aaaa") is False
    assert is_revoked(path, "bbbb") is True


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "is not a revocation list: Expecting property name"),
        (b'{"revoked": {}}', 'is not a revocation list: expected an object with "version": 2'),
        (b"[]", 'is not a revocation list: expected an object with "version": 2'),
        (b'{"version": 2, "revoked": []}', 'expected "revoked" to be an object'),
        (b'{"version": 2, "revoked": {"abc": "soon"}}', "the expiry of 'abc' is not a number"),
        (b'{"version": 2, "revoked": {"abc": true}}', "the expiry of 'abc' is not a number"),
        (b'{"version": 2, "revoked": {"abc": NaN}}', "the expiry of 'abc' is not finite"),
        (b"\xff\xfe{}", "cannot be read: UnicodeDecodeError"),
    ],
    ids=["not-json", "no-version", "a-list", "revoked-list", "text", "bool", "nan", "not-utf8"],
)
def test_an_unusable_file_refuses_cookies_and_is_not_overwritten(
    path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    """A broken file is logged by name; no cookie is accepted, live sessions go on, and a logout
    raises a ConfigError naming the file instead of replacing it."""
    path.parent.mkdir()
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="relmgr.auth.sessions"):
        assert accepted(path, "token") is False
    assert is_revoked(path, "token") is False
    [message] = {r.getMessage() for r in caplog.records if r.name == "relmgr.auth.sessions"}
    assert message.startswith(f"revoked sessions file {path} ")
    assert problem in message
    with pytest.raises(ConfigError) as raised:
        revoke(path, {"token": LATER}, now=NOW)
    assert raised.value.message.startswith(f"revoked sessions file {path} ")
    assert raised.value.message.endswith(
        "; not overwritten. Fix or remove it (no sign-in cookie or token is accepted meanwhile)"
    )
    assert path.read_bytes() == content


def test_a_file_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    """A path whose folder is a file gives a ConfigError naming the path, not an OSError."""
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    path = tmp_path / "not-a-folder" / "revoked-sessions.json"
    with pytest.raises(ConfigError) as raised:
        revoke(path, {"token": LATER}, now=NOW)
    assert raised.value.message.startswith(f"revoked sessions file {path} cannot be written: ")


def test_the_default_file_sits_beside_the_users_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, the file is `revoked-sessions.json` next to the users file; the setting wins."""
    monkeypatch.delenv("RELMGR_REVOKED_SESSIONS_FILE", raising=False)
    users = tmp_path / "data" / "users.yaml"
    assert Settings(users_file=users).revoked_sessions_path == (
        tmp_path / "data" / "revoked-sessions.json"
    )
    chosen = tmp_path / "shared" / "revoked.json"
    assert Settings(users_file=users, revoked_sessions_file=chosen).revoked_sessions_path == chosen
