"""Revoked dashboard sessions: digests of signed-out cookies, in one file every replica shares.

The dashboard's cookie is a stateless JWT: signing out deletes it from that browser only, and a
copy stays valid until it expires. So logout lists the cookie here and the dashboard refuses a
listed cookie. The file holds the SHA-256 of each token (never the token) and its expiry:

    {"version": 1, "revoked": {"<sha256 hex>": <expiry, Unix seconds>, ...}}

A write takes an exclusive lock on a sibling `.lock` file, so that two replicas signing out at
once both land, drops expired entries and replaces the file atomically, so readers need no lock.
Reads are cached by the file's identity (inode, mtime, size): the check each run costs a `stat`.

A file that exists but cannot be read or parsed is logged as a warning naming it, and then no
cookie signs a new session in (signing in with a password still works, and sessions already
signed in go on) until it is fixed or removed: treating it as empty would silently bring back
every copied cookie it listed, and refusing password sign-ins would lock everybody out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from relmgr.errors import ConfigError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# A file changed this recently may change again within the same mtime tick, with the same size
# and a recycled inode; such a file is read afresh rather than trusted to the cache.
_RACY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Listing:
    """One version of the file: digest -> expiry, or the problem that makes it unusable."""

    entries: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a cookie token is listed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(text: str) -> Mapping[str, float]:
    """The entries of the file's text; ValueError saying what is wrong."""
    document = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise ValueError(f'expected an object with "version": {FORMAT_VERSION}')
    revoked = document.get("revoked")
    if not isinstance(revoked, dict):
        raise ValueError('expected "revoked" to be an object')
    entries: dict[str, float] = {}
    for digest, expiry in revoked.items():
        # bool is an int to Python, and NaN or infinity never expire: none is an expiry.
        if isinstance(expiry, bool) or not isinstance(expiry, int | float):
            raise ValueError(f"the expiry of {digest[:16]!r} is not a number")
        if not math.isfinite(expiry):
            raise ValueError(f"the expiry of {digest[:16]!r} is not finite")
        entries[digest] = float(expiry)
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
        "revoked sessions file %s %s; no sign-in cookie is accepted until it is fixed or "
        "removed (signing in with a password still works)",
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


def is_revoked(path: Path, token: str) -> bool:
    """True if this cookie token is listed as signed out (a session using it must end)."""
    return token_digest(token) in _current(path).entries


def cookie_accepted(path: Path, token: str) -> bool:
    """True if this cookie token may sign a new session in: not listed, and the file usable."""
    listing = _current(path)
    return listing.problem is None and token_digest(token) not in listing.entries


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


def revoke(path: Path, tokens: Mapping[str, float], *, now: float | None = None) -> None:
    """List these cookie tokens (token -> its expiry, Unix seconds) as signed out.

    Entries that have expired are dropped on the way. Raises ConfigError, naming the file, if it
    cannot be written, or if it exists but is unusable (it is left as it is, for a person to look
    at; meanwhile no cookie is accepted, so the sign-out still holds).
    """
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
                    "remove it (no sign-in cookie is accepted meanwhile)"
                )
            entries = {d: e for d, e in listing.entries.items() if e > moment}
            entries.update({token_digest(t): e for t, e in tokens.items() if e > moment})
            _write(path, entries)
    except OSError as exc:
        raise ConfigError(
            f"revoked sessions file {path} cannot be written: {exc.strerror or exc}"
        ) from None
