"""The users file as the dashboard and the API both see it: one store, one behaviour on bad edits.

Loaded once at start-up (an unusable file then stops the start with a ConfigError naming the
problem) and re-read whenever the file changes. A broken edit (a YAML error, a plaintext password)
does not lock anybody out and brings nobody back: the last good users stay in force, the error is
logged naming the file and line, and `problem` holds it so the dashboard can show admins a banner.

Given an `AuthLedger`, each user's `session_generation` is the higher of the file's and the
ledger's, and a generation raised in the file (`relmgr users revoke`) is sent to the ledger when
the store next reads the file, so a revoke run against any replica's users file ends the user's
sessions on every replica (`relmgr.auth.ledger`).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

from relmgr.auth.ledger import AuthLedger
from relmgr.auth.users import User, UsersFile, load_users, verify_password
from relmgr.errors import ConfigError

logger = logging.getLogger("relmgr.users")


class UsersStore:
    """The current users; a file edited while running is picked up at its next use."""

    def __init__(self, path: Path, ledger: AuthLedger | None = None) -> None:
        self._path = path
        self.ledger = ledger
        # (users from the file, ledger generations version, the users with them applied).
        self._overlay: tuple[UsersFile, int, UsersFile] | None = None
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
        """The users, re-read first if the file changed; a broken edit keeps the last good ones.

        With a ledger, each user's generation is at least the ledger's.
        """
        users = self._from_file()
        if self.ledger is None:
            return users
        version = self.ledger.generations_version
        overlay = self._overlay
        if overlay is not None and overlay[0] is users and overlay[1] == version:
            return overlay[2]
        raised = self.ledger.generations()
        merged = UsersFile(
            users={
                name: user
                if raised.get(name, 0) <= user.session_generation
                else user.model_copy(update={"session_generation": raised[name]})
                for name, user in users.users.items()
            }
        )
        self._overlay = (users, version, merged)
        return merged

    def _from_file(self) -> UsersFile:
        stamp = self._stat()
        if stamp == self._stamp:
            return self._users
        with self._lock:
            if stamp == self._stamp:
                return self._users
            try:
                previous, self._users = self._users, load_users(self._path)
                self._problem = None
                self._publish_raised(previous, self._users)
            except ConfigError as exc:
                # Keep the last good users rather than locking everyone out mid-edit, or letting
                # a removed user back in through an older copy.
                self._problem = exc.message
                logger.error("users file not reloaded, the last good users stay in force: %s", exc)
            self._stamp = stamp
        return self._users

    def _publish_raised(self, previous: UsersFile, users: UsersFile) -> None:
        """Send to the ledger each generation this file raised (`relmgr users revoke` ran).

        The generation in force is raised by as much as the file's was: the ledger may already
        be ahead of this replica's file (a revoke run against another replica's copy).
        """
        if self.ledger is None:
            return
        for name, user in users.users.items():
            old = previous.get(name)
            if old is None or user.session_generation <= old.session_generation:
                continue
            in_force = max(old.session_generation, self.ledger.generation(name))
            raised = in_force + user.session_generation - old.session_generation
            self.ledger.raise_generation(name, raised)

    def get(self, username: str) -> User | None:
        """The user with this name, as the file in force says."""
        return self.current().get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches (slow on purpose: bcrypt; run it off the event loop)."""
        return verify_password(self.current(), username, password)


@lru_cache(maxsize=4)
def shared_store(path: Path, ledger: AuthLedger | None = None) -> UsersStore:
    """This process's store for `path` (the dashboard's sessions share one); ConfigError if the
    file is unusable at first use (not cached: the next call tries again)."""
    return UsersStore(path, ledger)
