"""The data directory of `relmgr dev`: its files, the generated secrets, user `admin`, the lock.

Everything lives in one data directory (`.relmgr/` by default):

    temporal.db      the dev server's SQLite database: releases survive a restart
    users.yaml       the users file of the dashboard and the API (bcrypt hashes)
    secrets.env      RELMGR_JWT_SECRET and RELMGR_COOKIE_KEY, generated once (owner-only)
    admin-password   the generated password of user `admin` (owner-only)
    demo-seeded      written once the demo releases have started, so they start only once
    logs/            temporal.log, api.log, ui.log (the children) and worker.log (this process)
    dev.lock         held while a `relmgr dev` uses the directory
"""

from __future__ import annotations

import fcntl
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from relmgr.auth.users import UsersFile, add_user, load_users, verify_password
from relmgr.errors import ConfigError

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
SECRET_NAMES = ("RELMGR_JWT_SECRET", "RELMGR_COOKIE_KEY")
# Letters and digits only, so the printed password can be copied and typed without quoting.
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105 - an alphabet


@dataclass(frozen=True)
class DataDir:
    """The files of one data directory."""

    root: Path

    @property
    def temporal_db(self) -> Path:
        """The dev server's SQLite database."""
        return self.root / "temporal.db"

    @property
    def users_file(self) -> Path:
        """The users file the API and the dashboard share."""
        return self.root / "users.yaml"

    @property
    def secrets_file(self) -> Path:
        """The generated JWT secret and cookie key."""
        return self.root / "secrets.env"

    @property
    def admin_password_file(self) -> Path:
        """The generated password of `admin`."""
        return self.root / "admin-password"

    @property
    def seed_marker(self) -> Path:
        """Present once the demo releases have been started in this directory."""
        return self.root / "demo-seeded"

    @property
    def lock_file(self) -> Path:
        """Held by the `relmgr dev` using this directory."""
        return self.root / "dev.lock"

    def log(self, name: str) -> Path:
        """The log file of one child process."""
        return self.root / "logs" / f"{name}.log"


def prepare_data_dir(path: Path) -> DataDir:
    """Create the data directory (owner-only) if needed and prove it writable, or say what to do."""
    root = path.expanduser().absolute()
    probe = root / ".write-test"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (root / "logs").mkdir(mode=0o700, exist_ok=True)
        # mkdir's mode applies only to a new folder: an existing one is tightened on every start
        # (it holds the secrets, the users file and the audit log).
        root.chmod(0o700)
        (root / "logs").chmod(0o700)
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot use data directory {root}: {reason}. Choose a writable directory with "
            "--data-dir DIR or RELMGR_DATA_DIR"
        ) from None
    return DataDir(root)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600, never world-readable meanwhile)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def load_or_create_secrets(data: DataDir) -> dict[str, str]:
    """RELMGR_JWT_SECRET and RELMGR_COOKIE_KEY: the environment's, else secrets.env (made once)."""
    stored: dict[str, str] = {}
    if data.secrets_file.exists():
        for line in data.secrets_file.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() in SECRET_NAMES and value.strip():
                stored[name.strip()] = value.strip()
    missing = [name for name in SECRET_NAMES if name not in stored]
    if missing:
        stored.update({name: secrets.token_urlsafe(48) for name in missing})
        write_private(data.secrets_file, "".join(f"{k}={stored[k]}\n" for k in SECRET_NAMES))
    elif data.secrets_file.stat().st_mode & 0o077:
        data.secrets_file.chmod(0o600)
    # An explicit environment variable wins over the generated value.
    return {name: os.environ.get(name) or stored[name] for name in SECRET_NAMES}


@dataclass(frozen=True)
class AdminLogin:
    """How to sign in as `admin`, for the start-up banner."""

    created: bool
    password: str | None = None  # shown only when generated now
    password_file: Path | None = None
    from_environment: bool = False

    def instructions(self) -> str:
        """One line telling the user how to sign in."""
        if self.from_environment:
            return f"Sign in as {ADMIN_USERNAME} with the password in RELMGR_ADMIN_PASSWORD."
        if self.password is not None:
            return (
                f"Sign in as {ADMIN_USERNAME} with password {self.password}  "
                f"(kept in {self.password_file}, readable by you only)"
            )
        if self.password_file is not None:
            return f"Sign in as {ADMIN_USERNAME}; its password is in {self.password_file}"
        return (
            f"Sign in as {ADMIN_USERNAME} (its password was set earlier; change it with "
            f"`relmgr users add {ADMIN_USERNAME} --email ... --name ... --password-stdin`)"
        )


def ensure_admin(data: DataDir, *, environment_password: str | None) -> AdminLogin:
    """Make sure user `admin` exists, with RELMGR_ADMIN_PASSWORD or a generated, kept password."""
    users = load_users(data.users_file) if data.users_file.exists() else UsersFile(users={})
    admin = users.get(ADMIN_USERNAME)
    if environment_password:
        created = (
            admin is None or verify_password(users, ADMIN_USERNAME, environment_password) is None
        )
        if created:
            _add_admin(data, environment_password)
        return AdminLogin(created=created, from_environment=True)
    if admin is not None:
        kept = data.admin_password_file if data.admin_password_file.exists() else None
        return AdminLogin(created=False, password_file=kept)
    password = ""
    if data.admin_password_file.exists():
        password = data.admin_password_file.read_text(encoding="utf-8").strip()
    if not password:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(16))
        write_private(data.admin_password_file, password + "\n")
    _add_admin(data, password)
    return AdminLogin(created=True, password=password, password_file=data.admin_password_file)


def _add_admin(data: DataDir, password: str) -> None:
    add_user(
        data.users_file,
        username=ADMIN_USERNAME,
        email=ADMIN_EMAIL,
        name="Administrator",
        password=password,
        roles=("admin",),
    )


def demo_due(data: DataDir, *, wanted: bool, database_existed: bool) -> bool:
    """True if the demo releases should start now: wanted, and not started in this database yet.

    The marker is dropped with a database that is gone, so a wiped `temporal.db` gets the demo
    again; otherwise a second run carries on with the releases that are there.
    """
    if not database_existed:
        data.seed_marker.unlink(missing_ok=True)
    return wanted and not data.seed_marker.exists()


class DataDirLock:
    """An exclusive lock on a data directory, so two `relmgr dev` never share one database."""

    def __init__(self, data: DataDir) -> None:
        self._path = data.lock_file
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError naming the holder."""
        handle = self._path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"another `relmgr dev` (pid {holder}) is using {self._path.parent}: stop it "
                "first, or give this one its own --data-dir"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let go of the lock."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
