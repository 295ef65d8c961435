"""One run of `relmgr dev`: start everything, watch it, stop it all on Ctrl-C, SIGTERM or failure.

The worker runs in this process; the server, the API and Streamlit are child processes, each in
a process group of its own, so Ctrl-C reaches `relmgr dev` alone and it stops them in order:
dashboard and API, worker, then Temporal (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker

from relmgr.cli.dashboard import find_dashboard
from relmgr.cli.dev.children import (
    ChildProcess,
    api_command,
    child_environment,
    ui_command,
)
from relmgr.cli.dev.config import HOST, DevConfig
from relmgr.cli.dev.datadir import (
    AdminLogin,
    DataDir,
    DataDirLock,
    demo_due,
    ensure_admin,
    load_or_create_secrets,
    prepare_data_dir,
)
from relmgr.cli.dev.ports import check_ports, port_uses, wait_for_port
from relmgr.cli.devserver import (
    dev_server_command,
    find_temporal_binary,
    log_tail,
    wait_until_ready,
)
from relmgr.errors import ConfigError, TemporalUnavailableError
from relmgr.settings import Settings, get_settings
from relmgr.temporal.seed import start_demo
from relmgr.temporal.worker import build_worker

_WATCH_SECONDS = 0.5
_RECANCEL_SECONDS = 0.5
# A Temporal server that dies is restarted, but not more often than this.
_RESTARTS_ALLOWED = 5
_RESTART_WINDOW_SECONDS = 600.0


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
        return self.config.api

    def _wants_ui(self) -> bool:
        return self.config.ui and find_dashboard() is not None

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
        dashboard = find_dashboard() if config.ui else None
        if dashboard is not None:
            # Started in the data directory: the dashboard's Streamlit settings are its flags,
            # not whatever .streamlit/ the directory `relmgr dev` was run from holds.
            ui_argv = ui_command(config, dashboard)
            ui = ChildProcess("dashboard", ui_argv, data.log("ui"), env, data.root)
            starting.append((ui, config.ui_port))
        elif config.ui:
            self.say("  note: this installation has no dashboard; skipping it")
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
