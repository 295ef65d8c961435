"""Users: the one YAML users file (bcrypt hashes only) and password checks.

The dashboard and the API share both. The file has the layout streamlit-authenticator
expects, so it can be handed over as a dict:

    credentials:
      usernames:
        admin:
          email: admin@example.com
          name: Admin
          password: $2b$12$...        # a bcrypt hash, never plaintext
          roles: [admin]
          session_generation: 1    # optional; `relmgr users revoke` counts it up

Every session and token carries the user's session epoch (`session_epoch`), derived from the
password hash, the roles and `session_generation`: a new password, other roles or a revoke
change it, and every cookie and token that carries the old one is refused from then on.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relmgr.errors import ConfigError

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_BCRYPT_PATTERN = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
BCRYPT_ROUNDS = 12
MIN_PASSWORD_LENGTH = 8


class User(BaseModel):
    """One user of the dashboard and the API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    email: str
    name: str
    password: str = Field(repr=False)
    roles: tuple[str, ...] = ("viewer",)
    session_generation: int = Field(default=0, ge=0)

    @field_validator("password")
    @classmethod
    def _bcrypt_only(cls, value: str) -> str:
        if not _BCRYPT_PATTERN.fullmatch(value):
            raise ValueError(
                "is not a bcrypt hash (plaintext passwords are refused); "
                "set it with `relmgr users add USERNAME --password-stdin`"
            )
        return value


class UsersFile(BaseModel):
    """All users, by username."""

    model_config = ConfigDict(frozen=True)

    users: dict[str, User]

    def get(self, username: str) -> User | None:
        """The user with this username, or None."""
        return self.users.get(username)

    def authenticator_credentials(self) -> dict[str, Any]:
        """The `credentials` dict streamlit-authenticator takes (a copy it may scribble on)."""
        return {
            "usernames": {
                name: {
                    "email": user.email,
                    "name": user.name,
                    "password": user.password,
                    "roles": list(user.roles),
                    "failed_login_attempts": 0,
                    "logged_in": False,
                }
                for name, user in self.users.items()
            }
        }


def session_epoch(user: User) -> str:
    """The user's session epoch: changes with the password hash, the roles or a revoke.

    A digest, so a token shows nothing of the hash; 96 bits, so two epochs never collide.
    """
    material = "\0".join(
        [
            "relmgr-session-epoch",
            user.password,
            ",".join(sorted(user.roles)),
            str(user.session_generation),
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def _parse(raw: Any, source: str) -> UsersFile:
    if not isinstance(raw, dict) or not isinstance(raw.get("credentials"), dict):
        raise ConfigError(f"users file {source}: expected a mapping with 'credentials: usernames:'")
    usernames = raw["credentials"].get("usernames")
    if usernames is None:
        usernames = {}
    if not isinstance(usernames, dict):
        raise ConfigError(f"users file {source}: 'credentials.usernames' must be a mapping")
    users: dict[str, User] = {}
    for name, entry in usernames.items():
        if not isinstance(name, str) or not USERNAME_PATTERN.fullmatch(name):
            raise ConfigError(f"users file {source}: username {name!r} must be 1-64 of [a-z0-9._-]")
        if not isinstance(entry, dict):
            raise ConfigError(f"users file {source}: user {name!r} must be a mapping")
        fields = {k: v for k, v in entry.items() if k in User.model_fields}
        if isinstance(fields.get("roles"), list):
            fields["roles"] = tuple(fields["roles"])
        try:
            users[name] = User(username=name, **fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])} {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"users file {source}: user {name!r}: {problems}") from None
    return UsersFile(users=users)


def load_users(path: Path) -> UsersFile:
    """Read and validate the users file; raise ConfigError naming the problem if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"users file {path} does not exist: create a user with "
            "`relmgr users add USERNAME --email E --name N --password-stdin`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"users file {path} cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"users file {path} is not valid YAML{where}") from None
    return _parse(raw, str(path))


def hash_password(password: str) -> str:
    """A bcrypt hash of the password."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def _cost(password_hash: str) -> int:
    return int(password_hash[4:6])  # "$2b$12$...": the pattern checked on load puts it here


@lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    """A well-formed bcrypt hash of `cost` rounds that no password matches.

    A fresh salt with a made-up checksum: `checkpw` spends the full cost on it (it hashes the
    candidate with the salt, then compares), and building it costs nothing, so even the first
    unknown name in a process takes no longer than a wrong password.
    """
    return bcrypt.gensalt(cost) + b"." * 31


def _unknown_user_hash(users: UsersFile) -> bytes:
    # The cost most users' hashes have: an unknown name then costs what a typical wrong
    # password costs, whatever rounds the file was written with.
    costs = Counter(_cost(user.password) for user in users.users.values())
    cost = costs.most_common(1)[0][0] if costs else BCRYPT_ROUNDS
    return _dummy_hash(cost)


def verify_password(users: UsersFile, username: str, password: str) -> User | None:
    """The user if the password matches its hash, else None; unknown names cost the same."""
    user = users.get(username)
    candidate = password.encode()[:72]
    if user is None:
        bcrypt.checkpw(candidate, _unknown_user_hash(users))
        return None
    if bcrypt.checkpw(candidate, user.password.encode()):
        return user
    return None


def add_user(
    path: Path,
    *,
    username: str,
    email: str,
    name: str,
    password: str,
    roles: tuple[str, ...] = ("viewer",),
) -> User:
    """Add or replace a user in the users file (created, owner-only, if missing)."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise ConfigError(
            f"username {username!r} must be 1-64 of [a-z0-9._-], starting alphanumeric"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > 72:
        raise ConfigError("password must be at most 72 bytes (bcrypt's limit)")
    if "@" not in email:
        raise ConfigError(f"email {email!r} is not an email address")
    current = load_users(path) if path.exists() else UsersFile(users={})
    previous = current.get(username)
    user = User(
        username=username,
        email=email,
        name=name,
        password=hash_password(password),
        roles=roles,
        # Kept: a revoke stays counted (the new hash changes the epoch anyway).
        session_generation=previous.session_generation if previous else 0,
    )
    users = dict(current.users)
    users[username] = user
    write_users(path, users.values())
    return user


def _existing(path: Path, username: str) -> tuple[UsersFile, User]:
    current = load_users(path)
    user = current.get(username)
    if user is None:
        raise ConfigError(f"users file {path} has no user {username!r}")
    return current, user


def remove_user(path: Path, username: str) -> User:
    """Remove a user from the users file (its sessions end); ConfigError if there is none."""
    current, user = _existing(path, username)
    write_users(path, [u for u in current.users.values() if u.username != username])
    return user


def revoke_sessions(path: Path, username: str) -> User:
    """End every session and token of a user by counting up its session generation."""
    current, user = _existing(path, username)
    revoked = user.model_copy(update={"session_generation": user.session_generation + 1})
    write_users(path, [revoked if u.username == username else u for u in current.users.values()])
    return revoked


def write_users(path: Path, users: Iterable[User]) -> None:
    """Replace the users file atomically (owner-only): readers see the old file or the new one.

    Written to a temporary file in the same folder, flushed to disk, then renamed over the old
    one, so a crash or a full disk never leaves a half-written file that locks everyone out.
    """
    entries: dict[str, dict[str, Any]] = {}
    for u in users:
        entry: dict[str, Any] = {
            "email": u.email,
            "name": u.name,
            "password": u.password,
            "roles": list(u.roles),
        }
        if u.session_generation:
            entry["session_generation"] = u.session_generation
        entries[u.username] = entry
    document = {"credentials": {"usernames": entries}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-", suffix=".yaml")
    except OSError as exc:
        raise ConfigError(f"users file {path} cannot be written: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yaml.safe_dump(document, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"users file {path} cannot be written: {reason}") from None
        raise
