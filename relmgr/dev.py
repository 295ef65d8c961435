"""`relmgr dev`: a real Temporal dev server, the worker, demo releases, the API and the dashboard.

Everything lives in one data directory (`.relmgr/` by default):

    temporal.db      the dev server's SQLite database: releases survive a restart
    users.yaml       the users file of the dashboard and the API (bcrypt hashes)
    secrets.env      RELMGR_JWT_SECRET and RELMGR_COOKIE_KEY, generated once (owner-only)
    admin-password   the generated password of user `admin` (owner-only)
    demo-seeded      written once the demo releases have started, so they start only once
    logs/            temporal.log, api.log, ui.log (the children) and worker.log (this process)
    dev.lock         held while a `relmgr dev` uses the directory

The worker runs in this process; the server, the API and Streamlit are child processes, each in
a process group of its own, so Ctrl-C reaches `relmgr dev` alone and it stops them in order:
dashboard and API, worker, then Temporal (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker

from relmgr.auth import UsersFile, add_user, load_users, verify_password
from relmgr.devserver import dev_server_command, find_temporal_binary, log_tail, wait_until_ready
from relmgr.errors import ConfigError, TemporalUnavailableError
from relmgr.seed import start_demo
from relmgr.settings import Settings, get_settings
from relmgr.worker import build_worker

HOST = "127.0.0.1"
ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
SECRET_NAMES = ("RELMGR_JWT_SECRET", "RELMGR_COOKIE_KEY")
# The package's parent: the repository root in a checkout (where streamlit_app.py lives), and
# what children need on PYTHONPATH when relmgr is not installed.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# Letters and digits only, so the printed password can be copied and typed without quoting.
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105 - an alphabet
_PORT_POLL_SECONDS = 0.2
_WATCH_SECONDS = 0.5
_RECANCEL_SECONDS = 0.5
# A Temporal server that dies is restarted, but not more often than this.
_RESTARTS_ALLOWED = 5
_RESTART_WINDOW_SECONDS = 600.0


class DevConfig(BaseModel):
    """What `relmgr dev` starts, and where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    ui_port: int = Field(default=8501, ge=1, le=65535)
    seed: bool = True
    api: bool = True
    ui: bool = True
    # Children get this long to stop after SIGTERM before they are killed.
    grace_seconds: float = Field(default=5.0, ge=0, le=120)
    ready_seconds: float = Field(default=60.0, gt=0, le=600)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DevConfig:
        """Defaults from `RELMGR_*` settings; options given on the command line win."""
        values: dict[str, object] = {
            "data_dir": settings.data_dir,
            "temporal_port": settings.temporal_port,
            "temporal_ui_port": settings.temporal_ui_port,
            "api_port": settings.api_port,
            "ui_port": settings.ui_port,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def temporal_address(self) -> str:
        """Where the dev server's gRPC front end listens."""
        return f"{HOST}:{self.temporal_port}"


# ---------------------------------------------------------------------------------------------
# The data directory.


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


# ---------------------------------------------------------------------------------------------
# Ports.


@dataclass(frozen=True)
class PortUse:
    """A port `relmgr dev` will listen on, and how the user can change it."""

    port: int
    label: str
    option: str
    variable: str


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on `host:port` (a bind test; TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so a port a stopped server left in TIME_WAIT is usable;
        # on Linux the bind still fails while anything listens on the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(uses: list[PortUse]) -> None:
    """Raise ConfigError for a port given twice or already in use, naming the option to change."""
    seen: dict[int, PortUse] = {}
    for use in uses:
        if use.port in seen:
            other = seen[use.port]
            raise ConfigError(
                f"{other.option} and {use.option} are both {use.port}: give each its own port"
            )
        seen[use.port] = use
    for use in uses:
        if not port_is_free(use.port):
            raise ConfigError(
                f"port {use.port} ({use.label}) is already in use on {HOST}: stop what uses it "
                f"(an earlier `relmgr dev`?) or choose another with {use.option} or {use.variable}"
            )


def port_uses(config: DevConfig, *, api: bool, ui: bool) -> list[PortUse]:
    """The ports this run will listen on."""
    uses = [
        PortUse(config.temporal_port, "Temporal", "--temporal-port", "RELMGR_TEMPORAL_PORT"),
        PortUse(
            config.temporal_ui_port, "Temporal UI", "--temporal-ui-port", "RELMGR_TEMPORAL_UI_PORT"
        ),
    ]
    if api:
        uses.append(PortUse(config.api_port, "API", "--api-port", "RELMGR_API_PORT"))
    if ui:
        uses.append(PortUse(config.ui_port, "dashboard", "--ui-port", "RELMGR_UI_PORT"))
    return uses


async def wait_for_port(port: int, child: ChildProcess, within_seconds: float) -> bool:
    """True once something accepts connections on `port`; False if `child` exits or time is up."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline and child.exit_status() is None:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(_PORT_POLL_SECONDS)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Child processes.


@dataclass
class ChildProcess:
    """A child of `relmgr dev`: in its own process group, output appended to its log file."""

    name: str
    argv: list[str]
    log_file: Path
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start (or restart) the process; raise ConfigError if it cannot be executed."""
        self._close_log()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            self._log = self.log_file.open("ab")
            self._log.write(f"\n=== {stamp} relmgr dev starts: {' '.join(self.argv)}\n".encode())
            self._log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - argv built by relmgr, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # A group of its own: Ctrl-C in the terminal reaches relmgr dev only, which
                # stops children in order; the group signal also reaches their own children.
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise ConfigError(
                f"cannot start {self.name} ({self.argv[0]}): {exc.strerror}"
            ) from None

    def exit_status(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    @property
    def pid(self) -> int | None:
        """The process ID, once started."""
        return None if self.process is None else self.process.pid

    def _signal_group(self, signum: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    async def stop(self, grace_seconds: float, hurry: asyncio.Event) -> None:
        """SIGTERM the group, wait up to `grace_seconds` (less if `hurry` is set), then SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            # A child's exit is not awaitable through Popen; a short poll is the simple way.
            while (  # noqa: ASYNC110
                self.process.poll() is None and time.monotonic() < deadline and not hurry.is_set()
            ):
                await asyncio.sleep(0.05)
        # Whatever is left of the group (the leader, or children it left behind) is killed.
        self._signal_group(signal.SIGKILL)
        while self.process.poll() is None:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.05)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def child_environment(
    config: DevConfig, data: DataDir, secret_values: dict[str, str]
) -> dict[str, str]:
    """The environment of the API and Streamlit: this one, pointed at the embedded server."""
    env = {
        name: value
        for name, value in os.environ.items()
        # A TLS or Cloud setup in the caller's shell must not leak into the local dev server's.
        if not name.startswith(("RELMGR_TEMPORAL_TLS", "RELMGR_TEMPORAL_API_KEY"))
    }
    python_path = [str(PACKAGE_PARENT)]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env.update(
        {
            "RELMGR_DEV_MODE": "1",
            "RELMGR_TEMPORAL_ADDRESS": config.temporal_address,
            "RELMGR_TEMPORAL_NAMESPACE": "default",
            "RELMGR_USERS_FILE": str(data.users_file),
            "RELMGR_API_URL": f"http://{HOST}:{config.api_port}",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            **secret_values,
        }
    )
    return env


def api_available() -> bool:
    """True if this installation has the REST API (`relmgr/api/server.py`)."""
    return (Path(__file__).resolve().parent / "api" / "server.py").is_file()


def streamlit_app() -> Path:
    """Where the dashboard's entry point is in a checkout."""
    return PACKAGE_PARENT / "streamlit_app.py"


def api_command(config: DevConfig) -> list[str]:
    """The argv of the API child."""
    return [sys.executable, "-m", "relmgr", "api", "--host", HOST, "--port", str(config.api_port)]


def ui_command(config: DevConfig) -> list[str]:
    """The argv of the Streamlit child."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(streamlit_app()),
        "--server.port",
        str(config.ui_port),
        "--server.address",
        HOST,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[None]:
    """Send this process's logs (the worker's, the SDK core's) to `path` instead of the terminal.

    The terminal is for the banner; a simulated deploy failing is logged with a traceback by the
    SDK, which is worth keeping but not worth showing to someone watching the demo.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.handlers[:]
    root.handlers = [handler]
    # The SDK's Rust core logs to stderr unless told to forward to Python logging; this must be
    # set before the first client is made.
    Runtime.set_default(
        Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                    forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
                )
            )
        ),
        error_if_already_set=False,
    )
    try:
        yield
    finally:
        root.handlers = previous
        handler.close()


# ---------------------------------------------------------------------------------------------
# The session.


class DevSession:
    """One run of `relmgr dev`: start everything, watch it, stop it all on the way out."""

    def __init__(self, config: DevConfig, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.hurry = asyncio.Event()
        self.stopping = False
        self.children: list[ChildProcess] = []
        self.worker: Worker | None = None
        self.worker_task: asyncio.Task[None] | None = None
        self.temporal: ChildProcess | None = None
        self.client: Client | None = None
        self.settings = dev_settings(config)
        self._restarts: list[float] = []
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        """A line for the person at the terminal."""
        print(text, file=self.out, flush=True)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._started:.1f} s"

    async def run(self) -> None:
        """Start, serve until cancelled (Ctrl-C) or until Temporal or the worker dies, then stop."""
        config = self.config
        # Everything that can be wrong before a process starts is checked first, in this order.
        binary = find_temporal_binary()
        data = prepare_data_dir(config.data_dir)
        lock = DataDirLock(data)
        lock.acquire()
        try:
            check_ports(port_uses(config, api=self._wants_api(), ui=self._wants_ui()))
            with logs_to_file(data.log("worker")):
                await self._serve(config, data, binary)
        finally:
            self.stopping = True
            await self._stop_all()
            lock.release()

    def _wants_api(self) -> bool:
        return self.config.api and api_available()

    def _wants_ui(self) -> bool:
        return self.config.ui and streamlit_app().is_file()

    async def _serve(self, config: DevConfig, data: DataDir, binary: Path) -> None:
        try:
            secret_values = load_or_create_secrets(data)
            admin = ensure_admin(data, environment_password=os.environ.get("RELMGR_ADMIN_PASSWORD"))
        except OSError as exc:
            raise ConfigError(
                f"cannot use {exc.filename or data.root}: {exc.strerror}. Fix its permissions "
                "or choose another --data-dir"
            ) from None
        first_run = not data.temporal_db.exists()
        seed_now = demo_due(data, wanted=config.seed, database_existed=not first_run)

        self.say(
            f"relmgr dev: {'creating' if first_run else 'reopening'} {data.temporal_db}; "
            f"starting Temporal on {config.temporal_address}"
        )
        self.temporal = ChildProcess(
            name="Temporal dev server",
            argv=dev_server_command(
                binary,
                port=config.temporal_port,
                ui_port=config.temporal_ui_port,
                db_file=data.temporal_db,
            ),
            log_file=data.log("temporal"),
            env=dict(os.environ),
            cwd=data.root,
        )
        self.children.append(self.temporal)
        self.temporal.start()
        self.client = await self._temporal_ready()
        self.say(f"  Temporal is up ({self._elapsed()}); starting the worker")
        self.worker = build_worker(self.client)
        self.worker_task = asyncio.create_task(self.worker.run())

        if seed_now:
            await self._seed(data)

        env = child_environment(config, data, secret_values)
        starting: list[tuple[ChildProcess, int]] = []
        if self._wants_api():
            api = ChildProcess("API", api_command(config), data.log("api"), env, data.root)
            starting.append((api, config.api_port))
        elif config.api:
            self.say("  note: the REST API (relmgr/api) is not in this checkout yet; skipping it")
        if self._wants_ui():
            ui = ChildProcess("dashboard", ui_command(config), data.log("ui"), env, PACKAGE_PARENT)
            starting.append((ui, config.ui_port))
        elif config.ui:
            self.say(f"  note: {streamlit_app()} is not there yet; skipping the dashboard")
        for child, _ in starting:
            self.children.append(child)
            child.start()
        # Temporal's Web UI comes up a little after its gRPC front end: wait for it as well.
        waits = {"Temporal UI": (self.temporal, config.temporal_ui_port)}
        waits.update({child.name: (child, port) for child, port in starting})
        answered = await asyncio.gather(
            *(wait_for_port(port, child, config.ready_seconds) for child, port in waits.values())
        )
        running: set[str] = set()
        for (name, (child, _)), ok in zip(waits.items(), answered, strict=True):
            if ok:
                running.add(name)
            else:
                self.say(
                    f"  warning: the {name} did not start (see {child.log_file}): "
                    f"{log_tail(child.log_file, 2) or 'no output'}"
                )
        self._banner(data, admin, running)
        await self._watch()

    async def _temporal_ready(self) -> Client:
        assert self.temporal is not None
        return await wait_until_ready(
            self.settings,
            exit_status=self.temporal.exit_status,
            log_file=self.temporal.log_file,
            within_seconds=self.config.ready_seconds,
        )

    async def _restart_temporal(self, status: int) -> None:
        """Start a Temporal server that died again; the worker reconnects by itself."""
        assert self.temporal is not None
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW_SECONDS]
        if len(self._restarts) >= _RESTARTS_ALLOWED:
            raise TemporalUnavailableError(
                f"the Temporal dev server keeps stopping (last status {status}; log: "
                f"{self.temporal.log_file}): {log_tail(self.temporal.log_file, 2)}"
            )
        self._restarts.append(now)
        self.say(f"  warning: the Temporal dev server stopped ({status}); restarting it")
        self.temporal.start()
        await self._temporal_ready()
        self.say(f"  Temporal is back ({self.temporal.log_file})")

    async def _seed(self, data: DataDir) -> None:
        assert self.client is not None
        self.say("  starting the demo releases (first run in this data directory):")
        started: list[str] = []
        async for demo, is_new in start_demo(self.client):
            started.append(demo.release_id)
            note = demo.shows if is_new else "already there"
            self.say(f"    {demo.release_id:<28} {note}")
        data.seed_marker.write_text("\n".join(started) + "\n", encoding="utf-8")

    def _banner(self, data: DataDir, admin: AdminLogin, running: set[str]) -> None:
        config = self.config
        lines = [
            "",
            f"relmgr dev is ready in {self._elapsed()} (data in {data.root})",
        ]
        if "dashboard" in running:
            lines.append(f"  Dashboard     http://{HOST}:{config.ui_port}")
        if "API" in running:
            lines.append(f"  API docs      http://{HOST}:{config.api_port}/docs")
        if "Temporal UI" in running:
            lines.append(f"  Temporal UI   http://{HOST}:{config.temporal_ui_port}")
        lines += [
            f"  Temporal      {config.temporal_address}  (for other shells: "
            f"export RELMGR_TEMPORAL_ADDRESS={config.temporal_address})",
            f"  {admin.instructions()}",
            f"  Logs in {data.root / 'logs'}",
            "Press Ctrl-C to stop.",
        ]
        for line in lines:
            self.say(line)

    async def _watch(self) -> None:
        """Never return: restart Temporal if it dies; raise if it keeps dying or the worker dies."""
        reported: set[str] = set()
        while True:
            assert self.temporal is not None
            assert self.worker_task is not None
            status = self.temporal.exit_status()
            if status is not None:
                await self._restart_temporal(status)
            if self.worker_task.done():
                problem = self.worker_task.exception()
                raise TemporalUnavailableError(
                    f"the worker stopped: {problem or 'no reason given'}"
                )
            for child in self.children:
                status = child.exit_status()
                if child is not self.temporal and status is not None and child.name not in reported:
                    reported.add(child.name)
                    self.say(
                        f"  warning: the {child.name} stopped ({status}); see {child.log_file}"
                    )
            await asyncio.sleep(_WATCH_SECONDS)

    async def _stop_all(self) -> None:
        """Stop the dashboard and the API, then the worker, then Temporal."""
        others = [c for c in self.children if c is not self.temporal]
        await asyncio.gather(*(c.stop(self.config.grace_seconds, self.hurry) for c in others))
        if self.worker is not None and self.worker_task is not None:
            if not self.worker_task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.worker.shutdown(), self.config.grace_seconds + 1)
            if not self.worker_task.done():
                self.worker_task.cancel()
            await asyncio.gather(self.worker_task, return_exceptions=True)
        if self.temporal is not None:
            await self.temporal.stop(self.config.grace_seconds, self.hurry)


def dev_settings(config: DevConfig) -> Settings:
    """This process's settings, pointed at the embedded server (no TLS, no API key)."""
    return get_settings().model_copy(
        update={
            "dev_mode": True,
            "temporal_address": config.temporal_address,
            "temporal_namespace": "default",
            "temporal_tls": False,
            "temporal_tls_ca": None,
            "temporal_tls_cert": None,
            "temporal_tls_key": None,
            "temporal_tls_server_name": None,
            "temporal_api_key": None,
        }
    )


def run_dev(config: DevConfig, *, out: TextIO = sys.stdout) -> None:
    """Run `relmgr dev` until Ctrl-C or SIGTERM; raise RelmgrError for what stops it early."""
    asyncio.run(_run_until_signalled(config, out))


async def _run_until_signalled(config: DevConfig, out: TextIO) -> None:
    loop = asyncio.get_running_loop()
    session = DevSession(config, out)
    task = asyncio.create_task(session.run())
    interrupted = False

    def cancel_until_stopping() -> None:
        # A cancellation can be lost (asyncio.wait_for in Python 3.11 swallows one that arrives
        # as its inner call completes), so repeat it until the session is stopping.
        if not task.done() and not session.stopping:
            task.cancel()
            loop.call_later(_RECANCEL_SECONDS, cancel_until_stopping)

    def on_signal(signum: signal.Signals) -> None:
        nonlocal interrupted
        if session.stopping:
            # Ctrl-C again while stopping: no more grace, kill what is left.
            session.hurry.set()
            session.say("relmgr dev: stopping now")
            return
        if not interrupted:
            interrupted = True
            session.say(f"\nrelmgr dev: {signum.name} received, stopping everything it started ...")
        cancel_until_stopping()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
        session.say("relmgr dev: stopped")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
