"""The users file as the API sees it: loaded once at start-up, reloaded when its mtime changes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from relmgr.auth import User, UsersFile, load_users, verify_password
from relmgr.errors import ConfigError

logger = logging.getLogger("relmgr.api")


class UsersStore:
    """The current users; a file edited while the API runs is picked up on the next request."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Raises ConfigError naming the problem: an unusable users file stops the start-up.
        self._users = load_users(path)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self._path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def current(self) -> UsersFile:
        """The users, re-read first if the file changed; a broken edit keeps the previous users."""
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self._users = load_users(self._path)
            except ConfigError as exc:
                # Keep serving the last good users rather than locking everyone out mid-edit.
                logger.warning("users file not reloaded, keeping the previous users: %s", exc)
            self._stamp = stamp
        return self._users

    def get(self, username: str) -> User | None:
        """The user with this name, as the file says now."""
        return self.current().get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches (slow on purpose: bcrypt; run it off the event loop)."""
        return verify_password(self.current(), username, password)
