"""The users file as the dashboard and the API both see it: one store, one behaviour on bad edits.

Loaded once at start-up (an unusable file then stops the start with a ConfigError naming the
problem) and re-read whenever the file changes. A broken edit (a YAML error, a plaintext password)
does not lock anybody out and brings nobody back: the last good users stay in force, the error is
logged naming the file and line, and `problem` holds it so the dashboard can show admins a banner.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

from relmgr.auth.users import User, UsersFile, load_users, verify_password
from relmgr.errors import ConfigError

logger = logging.getLogger("relmgr.users")


class UsersStore:
    """The current users; a file edited while running is picked up at its next use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        # Raises ConfigError naming the problem: an unusable users file stops the start-up.
        self._users = load_users(path)
        self._problem: str | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self._path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    @property
    def problem(self) -> str | None:
        """Why the file on disk is not the one in force (a broken edit), or None."""
        self.current()
        return self._problem

    def current(self) -> UsersFile:
        """The users, re-read first if the file changed; a broken edit keeps the last good ones."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._users
        with self._lock:
            if stamp == self._stamp:
                return self._users
            try:
                self._users = load_users(self._path)
                self._problem = None
            except ConfigError as exc:
                # Keep the last good users rather than locking everyone out mid-edit, or letting
                # a removed user back in through an older copy.
                self._problem = exc.message
                logger.error("users file not reloaded, the last good users stay in force: %s", exc)
            self._stamp = stamp
        return self._users

    def get(self, username: str) -> User | None:
        """The user with this name, as the file in force says."""
        return self.current().get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches (slow on purpose: bcrypt; run it off the event loop)."""
        return verify_password(self.current(), username, password)


@lru_cache(maxsize=4)
def shared_store(path: Path) -> UsersStore:
    """This process's store for `path` (the dashboard's sessions share one); ConfigError if the
    file is unusable at first use (not cached: the next call tries again)."""
    return UsersStore(path)
