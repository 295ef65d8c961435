"""Fixtures of the deployment tests: one Temporal stack (dev server, worker, one finished release)
and one Chromium for the package, and a users file with the browser tests' account."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from relmgr.auth.users import add_user
from relmgr.temporal.messages import DeployOptions
from relmgr.testing.factories import make_plan
from relmgr.testing.passwords import cheap_bcrypt
from relmgr.testing.ports import free_port
from tests.browser.conftest import LOAD_TIMEOUT_MS
from tests.browser.stack import (
    CHROMIUM,
    DEFAULT_ACCOUNT,
    Account,
    LoopThread,
    PortTakenError,
    TemporalStack,
    launch_chromium,
)


@dataclass(frozen=True)
class Backend:
    """What a dashboard needs to run: Temporal with a worker, a finished release, a user."""

    temporal: TemporalStack
    release_id: str
    users_file: Path
    account: Account
    cookie_key: str

    def dashboard_env(self, **extra: str) -> dict[str, str]:
        """The environment of a dashboard process: this one without RELMGR_* or PYTHONPATH,
        plus the settings that point it at this backend."""
        base = {
            k: v for k, v in os.environ.items() if not k.startswith("RELMGR_") and k != "PYTHONPATH"
        }
        return {
            **base,
            "RELMGR_TEMPORAL_ADDRESS": self.temporal.address,
            "RELMGR_USERS_FILE": str(self.users_file),
            "RELMGR_COOKIE_KEY": self.cookie_key,
            "RELMGR_REFRESH_SECONDS": "1",
            "RELMGR_UI_REFRESH_SECONDS": "1",
            **extra,
        }


# What a server prints when its port was taken between `free_port()` and its bind: Streamlit's
# "Port N is not available", uvicorn's "[Errno 98] ... address already in use".
_PORT_TAKEN = re.compile(r"Port \d+ is not available|address already in use", re.IGNORECASE)


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log_file: Path, path: str = "/_stcore/health"
) -> None:
    """Until a server at `url` answers 200 at `path` (a dashboard's health by default); fails
    with its log if it exits (`PortTakenError` if its port was taken) or takes over 60 s."""
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            log = log_file.read_text(errors="replace")
            raise (PortTakenError if _PORT_TAKEN.search(log) else AssertionError)(log)
        try:
            if httpx.get(f"{url}{path}", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log_file.read_text()
        time.sleep(0.2)


@dataclass(frozen=True)
class ServerSpec:
    """A server process to start: its command (`--port N` is added), where it runs and logs."""

    command: Sequence[str | Path]
    env: Mapping[str, str]
    cwd: Path
    log_file: Path
    health_path: str = "/_stcore/health"


@dataclass(frozen=True)
class Served:
    """A server started by `start_servers`, healthy."""

    url: str
    port: int
    process: subprocess.Popen[bytes]


def _launch(spec: ServerSpec, port: int) -> subprocess.Popen[bytes]:
    with spec.log_file.open("wb") as log:
        return subprocess.Popen(
            [*map(str, spec.command), "--port", str(port)],
            cwd=spec.cwd,
            env=dict(spec.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def start_servers(
    specs: Sequence[ServerSpec], started: list[subprocess.Popen[bytes]]
) -> list[Served]:
    """Start every server at once, each on a free port, and wait until each is healthy. A server
    whose port another process took between `free_port()` and its bind is started again on
    another port (at most 3 times). Every process started is appended to `started` at once, for
    the caller to stop, whatever happens."""
    ports = [free_port() for _ in specs]
    processes = [_launch(spec, port) for spec, port in zip(specs, ports, strict=True)]
    started.extend(processes)
    served: list[Served] = []
    for spec, port, process in zip(specs, ports, processes, strict=True):
        for moves_left in range(3, -1, -1):
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_healthy(url, process, spec.log_file, path=spec.health_path)
                break
            except PortTakenError:
                if moves_left == 0:
                    raise
                port = free_port()
                process = _launch(spec, port)
                started.append(process)
        served.append(Served(url=url, port=port, process=process))
    return served


@pytest.fixture(scope="package")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One dev server and worker for the package's dashboards, with one finished release."""
    workdir = tmp_path_factory.mktemp("deploy-backend")
    users_file = workdir / "users.yaml"
    with cheap_bcrypt():  # the tests are about the dashboard, not the hash's cost
        add_user(
            users_file,
            username=DEFAULT_ACCOUNT.username,
            email="alice@example.com",
            name=DEFAULT_ACCOUNT.name,
            password=DEFAULT_ACCOUNT.password,
        )
    loop = LoopThread("deploy-tests-loop")
    try:
        temporal = TemporalStack.start(
            loop, workdir / "temporal.db", f"deploy-{secrets.token_hex(4)}"
        )
        try:
            release_id = f"rel-deploy{secrets.token_hex(3)}"
            temporal.start_release(
                release_id, make_plan(1, 1, 1), DeployOptions(min_seconds=0.05, max_seconds=0.1)
            )
            temporal.result(release_id, timeout=60)
            yield Backend(
                temporal, release_id, users_file, DEFAULT_ACCOUNT, secrets.token_urlsafe(48)
            )
        finally:
            temporal.stop()
    finally:
        loop.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per module: Playwright's sync API keeps an event loop running in
    this thread while it is open, which the package's async tests cannot share."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}")
    expect.set_options(timeout=LOAD_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
            expect.set_options(timeout=None)
