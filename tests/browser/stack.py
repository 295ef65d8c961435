"""What the browser tests run against: a Temporal dev server, a worker, and `streamlit run
streamlit_app.py`, each a real process or thread owned (and stopped) by whoever started it.

The Temporal client is async; the browser tests are synchronous (Playwright's sync API refuses to
run inside a running event loop). So the client, the worker and every call into Temporal live on
one event loop in a background thread (`LoopThread`), and the tests call into it with `run`.

`dashboard(workdir)` starts the whole stack; the pytest fixtures and the README screenshot script
(`python -m tests.browser.readme_screenshot`) both use it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Browser, Playwright
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from relmgr.auth.users import add_user
from relmgr.models import ReleasePlan
from relmgr.temporal.messages import DeployOptions, Outcome
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.chromium import CHROMIUM, CHROMIUM_ARGS
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.passwords import cheap_bcrypt
from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
COOKIE_NAME = "relmgr_session"  # Settings.cookie_name's default, which the app runs with
T = TypeVar("T")


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))


class LoopThread:
    """An asyncio event loop running in a daemon thread, for code that must stay on one loop."""

    def __init__(self, name: str = "browser-tests-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coroutine` on the loop; its result arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coroutine` on the loop and wait for its result."""
        return self.submit(coroutine).result(timeout)

    def close(self) -> None:
        """Cancel what is still pending, stop the loop and join its thread."""

        async def cancel_pending() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_pending(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class TemporalStack:
    """A dev server we can kill and restart on its port, a client, and a worker on its own queue."""

    loop: LoopThread
    server: DevServerProcess
    client: Client
    task_queue: str
    worker: Worker
    worker_run: concurrent.futures.Future[None]
    handles: dict[str, WorkflowHandle[Any, Outcome]] = field(default_factory=dict)

    @classmethod
    def start(cls, loop: LoopThread, db_file: Path, task_queue: str) -> TemporalStack:
        """Start the server (SQLite in `db_file`, so workflows survive a restart) and a worker."""
        server = DevServerProcess(db_file=db_file)
        client = loop.run(server.start(), timeout=90)

        async def make_worker() -> Worker:
            # Built on the loop: the worker binds to the running loop when it is created.
            return build_worker(client, task_queue)

        worker = loop.run(make_worker())
        return cls(loop, server, client, task_queue, worker, loop.submit(worker.run()))

    @property
    def address(self) -> str:
        """host:port of the dev server."""
        return self.server.address

    def start_release(
        self,
        release_id: str,
        plan: ReleasePlan,
        options: DeployOptions,
        start_delay: timedelta | None = None,
    ) -> WorkflowHandle[Any, Outcome]:
        """Start a release on this stack's worker queue (PENDING for `start_delay` first)."""
        handle = self.loop.run(
            start_release(
                self.client,
                release_id,
                plan,
                options,
                task_queue=self.task_queue,
                start_delay=start_delay,
            )
        )
        self.handles[release_id] = handle
        return handle

    def result(self, release_id: str, timeout: float = 60.0) -> Outcome:
        """Wait for a release to finish and return its outcome (a failed release raises)."""
        return self.loop.run(self.handles[release_id].result(), timeout=timeout)

    def finished_at(self, release_id: str) -> concurrent.futures.Future[float]:
        """A future set to `time.monotonic()` the moment the release's workflow completes."""

        async def watch() -> float:
            with contextlib.suppress(Exception):  # a failed release is finished too
                await self.handles[release_id].result()
            return time.monotonic()

        return self.loop.submit(watch())

    def kill_server(self) -> None:
        """Stop the dev server process; the worker and the client stay."""
        self.server.stop()

    def restart_server(self) -> None:
        """Start the dev server again on the same port and database; returns once it answers."""
        fresh = self.loop.run(self.server.start(), timeout=90)
        # The worker and our client reconnect by themselves; this second client only proved
        # that the server answers.
        del fresh

    def stop(self) -> None:
        """Stop the worker, then the server."""
        with contextlib.suppress(Exception):
            self.loop.run(self.worker.shutdown(), timeout=30)
        with contextlib.suppress(Exception):
            self.worker_run.result(timeout=10)
        self.server.stop()


class PortTakenError(RuntimeError):
    """The server exited because another process had taken its port."""


class StreamlitServer:
    """`python -m relmgr.ui.server run streamlit_app.py` (from `root`, a checkout of relmgr; plain
    `streamlit run` for a checkout that predates that module) on a free 127.0.0.1 port, with the
    given RELMGR_* env."""

    def __init__(self, env: Mapping[str, str], log_file: Path, root: Path = ROOT) -> None:
        self.port = free_port()
        # free_port() may race another process for the port; the first start may move.
        self._may_move = True
        self.log_file = log_file
        self.root = root
        # Nothing from the outer environment's RELMGR_* settings may leak into the app.
        base = {k: v for k, v in os.environ.items() if not k.startswith("RELMGR_")}
        self._env = {**base, **env}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The dashboard's base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_seconds: float = 60.0) -> None:
        """Start the server and wait until `/_stcore/health` answers ok; on the first start, a
        server that found its port taken is started again on another (later starts keep it)."""
        for _ in range(3 if self._may_move else 0):
            try:
                self._start(wait_seconds)
                break
            except PortTakenError:
                self.port = free_port()
        else:
            self._start(wait_seconds)
        self._may_move = False

    def _start(self, wait_seconds: float) -> None:
        launcher = "relmgr.ui.server"
        if not (self.root / "relmgr" / "ui" / "server.py").is_file():
            launcher = "streamlit"
        command = [
            sys.executable,
            "-m",
            launcher,
            "run",
            "streamlit_app.py",
            "--server.port",
            str(self.port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self.root, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + wait_seconds
        while True:
            if self._process.poll() is not None:
                if self._may_move and "is not available" in self.log_tail():
                    raise PortTakenError(self.log_tail())
                raise RuntimeError(
                    f"streamlit exited with {self._process.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.url}/_stcore/health", timeout=2)
                if answer.status_code == 200 and answer.text.strip() == "ok":
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not become healthy: {self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output, for failure messages."""
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        process, self._process = self._process, None
        stop_process(process)


@dataclass(frozen=True)
class Account:
    """The one user of the dashboard under test."""

    username: str
    name: str
    password: str


DEFAULT_ACCOUNT = Account(username="alice", name="Alice Browser", password="browser-pass-1")


@dataclass
class Dashboard:
    """The running stack: Temporal (with a worker), the dashboard, its user and cookie key."""

    temporal: TemporalStack
    streamlit: StreamlitServer
    account: Account
    cookie_key: str
    users_file: Path | None = None

    @property
    def url(self) -> str:
        """The dashboard's base URL (no trailing slash)."""
        return self.streamlit.url


@contextlib.contextmanager
def dashboard(
    workdir: Path,
    *,
    seed: Callable[[TemporalStack], None] | None = None,
    ui_refresh_seconds: float = 1.0,
    app_root: Path = ROOT,
    account: Account = DEFAULT_ACCOUNT,
    temporal_ui_url: str = "",
) -> Iterator[Dashboard]:
    """Start Temporal, a worker, `seed` (if given; overlapping the dashboard's start-up), and the
    dashboard in dev mode with `account` as a bcrypt user; stop all of it on the way out."""
    users_file = workdir / "users.yaml"
    with cheap_bcrypt():  # the tests are about the dashboard, not the hash's cost
        add_user(
            users_file,
            username=account.username,
            email="alice@example.com",
            name=account.name,
            password=account.password,
        )
    cookie_key = secrets.token_urlsafe(48)
    loop = LoopThread()
    try:
        temporal = TemporalStack.start(
            loop, workdir / "temporal.db", f"browser-{secrets.token_hex(4)}"
        )
        try:
            server = StreamlitServer(
                {
                    "RELMGR_DEV_MODE": "1",
                    "RELMGR_TEMPORAL_ADDRESS": temporal.address,
                    "RELMGR_USERS_FILE": str(users_file),
                    "RELMGR_COOKIE_KEY": cookie_key,
                    "RELMGR_REFRESH_SECONDS": "1",
                    "RELMGR_UI_REFRESH_SECONDS": f"{ui_refresh_seconds:g}",
                    "RELMGR_TEMPORAL_UI_URL": temporal_ui_url,
                },
                workdir / "streamlit.log",
                app_root,
            )
            with concurrent.futures.ThreadPoolExecutor(1, "browser-tests-seed") as pool:
                seeded = pool.submit(seed, temporal) if seed is not None else None
                server.start()
            try:
                if seeded is not None:
                    seeded.result()
                yield Dashboard(temporal, server, account, cookie_key, users_file)
            finally:
                server.stop()
        finally:
            temporal.stop()
    finally:
        loop.close()
