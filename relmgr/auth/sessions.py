"""Ended sessions and tokens: the `jti` of each, in one file every replica and front end shares.

Dashboard cookies and API tokens are stateless JWTs, each carrying a random `jti` (32 hex
digits). Signing out or `POST /api/auth/logout` lists the `jti` here, and every use of a cookie
or token checks it. The key is the `jti`, never the token's text: JWTs have equivalent spellings
(padding, whitespace) that decode to the same claims, and each would hash differently. The file:

    {"version": 2, "revoked": {"<jti>": <expiry, Unix seconds>, ...}}

A write takes an exclusive lock on a sibling `.lock` file, so that two replicas signing out at
once both land, drops expired entries and replaces the file atomically, so readers need no lock.
Reads are cached by the file's identity (inode, mtime, size): the check each use costs a `stat`.
A version 1 file (digests of cookies without a `jti`, which are all refused now) reads as empty.

A file that exists but cannot be read or parsed is logged as a warning naming it, and then no
cookie or token is accepted until it is fixed or removed (signing in with a password still
works): treating it as empty would silently bring back every session it ended.

`RevocationStore` is the interface the front ends use. The file is this replica's own record (it
holds across restarts, and while Temporal is unreachable); given an `AuthLedger`
(`relmgr.auth.ledger`), a sign-out also goes to the ledger every replica reads, and a session
ended on any replica is refused here within one refresh, with no file shared between replicas.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TypeGuard

from relmgr.auth.ledger import AuthLedger
from relmgr.errors import ConfigError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_LEGACY_VERSION = 1
JTI_PATTERN = re.compile(r"[0-9a-f]{32}")
# A file changed this recently may change again within the same mtime tick, with the same size
# and a recycled inode; such a file is read afresh rather than trusted to the cache.
_RACY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Listing:
    """One version of the file: digest -> expiry, or the problem that makes it unusable."""

    entries: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None


def new_jti() -> str:
    """A fresh random session ID (128 bits, 32 hex digits)."""
    return secrets.token_hex(16)


def is_jti(value: object) -> TypeGuard[str]:
    """Whether `value` is a well-formed session ID (the whole string)."""
    return isinstance(value, str) and JTI_PATTERN.fullmatch(value) is not None


def _parse(text: str) -> Mapping[str, float]:
    """The entries of the file's text; ValueError saying what is wrong."""
    document = json.loads(text)  # json.JSONDecodeError is a ValueError
    if isinstance(document, dict) and document.get("version") == _LEGACY_VERSION:
        return MappingProxyType({})
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise ValueError(f'expected an object with "version": {FORMAT_VERSION}')
    revoked = document.get("revoked")
    if not isinstance(revoked, dict):
        raise ValueError('expected "revoked" to be an object')
    entries: dict[str, float] = {}
    for jti, expiry in revoked.items():
        # bool is an int to Python, and NaN or infinity never expire: none is an expiry.
        if isinstance(expiry, bool) or not isinstance(expiry, int | float):
            raise ValueError(f"the expiry of {jti[:32]!r} is not a number")
        if not math.isfinite(expiry):
            raise ValueError(f"the expiry of {jti[:32]!r} is not finite")
        entries[jti] = float(expiry)
    return MappingProxyType(entries)


def _load(path: Path) -> _Listing:
    """Read the file now (no cache); a missing file is an empty list."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _Listing()
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or type(exc).__name__
        return _unusable(path, f"cannot be read: {problem}")
    try:
        return _Listing(entries=_parse(text))
    except ValueError as exc:
        return _unusable(path, f"is not a revocation list: {exc}")


def _unusable(path: Path, problem: str) -> _Listing:
    logger.warning(
        "revoked sessions file %s %s; no sign-in cookie or API token is accepted until it is "
        "fixed or removed (signing in with a password still works)",
        path,
        problem,
    )
    return _Listing(problem=problem)


@lru_cache(maxsize=16)
def _load_version(path: str, inode: int, mtime_ns: int, size: int) -> _Listing:
    return _load(Path(path))


@lru_cache(maxsize=16)
def _unstattable(path: str, problem: str) -> _Listing:
    # Cached so that a directory that cannot be searched is logged once, not on every run.
    return _unusable(Path(path), problem)


def _current(path: Path) -> _Listing:
    try:
        info = path.stat()
    except FileNotFoundError:
        return _Listing()
    except OSError as exc:
        return _unstattable(str(path), f"cannot be read: {exc.strerror}")
    if time.time() - info.st_mtime < _RACY_SECONDS:
        return _load(path)
    return _load_version(str(path), info.st_ino, info.st_mtime_ns, info.st_size)


def _write(path: Path, entries: Mapping[str, float]) -> None:
    document = {"version": FORMAT_VERSION, "revoked": dict(sorted(entries.items()))}
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=0)
            out.flush()
            # On disk before it replaces the old list: a crash never leaves an empty file.
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _revoke(path: Path, jtis: Mapping[str, float], *, now: float | None = None) -> None:
    moment = time.time() if now is None else now
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            listing = _load(path)  # under the lock, never from the cache
            if listing.problem is not None:
                raise ConfigError(
                    f"revoked sessions file {path} {listing.problem}; not overwritten. Fix or "
                    "remove it (no sign-in cookie or token is accepted meanwhile)"
                )
            entries = {j: e for j, e in listing.entries.items() if e > moment}
            entries.update({j: e for j, e in jtis.items() if e > moment and is_jti(j)})
            _write(path, entries)
    except OSError as exc:
        raise ConfigError(
            f"revoked sessions file {path} cannot be written: {exc.strerror or exc}"
        ) from None


class RevocationStore:
    """Which sessions (by `jti`) have been ended before their expiry.

    The one interface the dashboard, the API and the CLI use; backed by the file above and, if
    given, the auth ledger every replica shares.
    """

    def __init__(self, path: Path, ledger: AuthLedger | None = None) -> None:
        self.path = path
        self.ledger = ledger

    def revoke(self, jtis: Mapping[str, float], *, now: float | None = None) -> None:
        """End these sessions (`jti` -> its expiry, Unix seconds).

        Expired entries are dropped on the way. Raises ConfigError, naming the file, if it cannot
        be written, or if it exists but is unusable (it is left as it is, for a person to look
        at; meanwhile no cookie or token is accepted, so the sign-out still holds). Once the
        file has it, the ledger gets it (in the background; see `relmgr.auth.ledger`).
        """
        _revoke(self.path, jtis, now=now)
        if self.ledger is not None:
            moment = time.time() if now is None else now
            self.ledger.revoke({j: e for j, e in jtis.items() if e > moment and is_jti(j)})

    def is_revoked(self, jti: str) -> bool:
        """True if the session `jti` was ended (a session using it must end now)."""
        if self.ledger is not None and self.ledger.is_revoked(jti):
            return True
        return jti in _current(self.path).entries

    def accepts(self, jti: object) -> bool:
        """True if `jti` may be used: well-formed, not ended, and the store usable."""
        if not is_jti(jti):
            return False
        if self.ledger is not None and self.ledger.is_revoked(jti):
            return False
        listing = _current(self.path)
        return listing.problem is None and jti not in listing.entries
