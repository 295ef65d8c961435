"""The processes under test, started and stopped by the harness: the API and the dashboard.

Each runs as a child process on 127.0.0.1 and a free port, configured only through `RELMGR_*`
variables, with its output in a log file under the run's work directory; its PID is what the
harness reads CPU, memory and descriptors from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from relmgr.auth.users import add_user
from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]
USERNAME = "bench"


@dataclass(frozen=True)
class Credentials:
    """The users file every front end of a run shares, and its one user's password."""

    users_file: Path
    username: str
    password: str

    @classmethod
    def create(cls, workdir: Path) -> Credentials:
        """A users file with one bcrypt-hashed viewer (`relmgr.auth.users.add_user`)."""
        password = secrets.token_urlsafe(18)
        users_file = workdir / "users.yaml"
        add_user(
            users_file,
            username=USERNAME,
            email="bench@example.com",
            name="Bench User",
            password=password,
            roles=("viewer",),
        )
        return cls(users_file=users_file, username=USERNAME, password=password)


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a child with its output in `log_path` (returns at once)."""
    with log_path.open("wb") as log:
        # argv is this Python and fixed arguments, env our own settings: nothing untrusted.
        return subprocess.Popen(  # noqa: S603
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )


@dataclass
class ApiServer:
    """`relmgr.api` in its own process (`bench.api_app`), with the reader's counters exposed."""

    workdir: Path
    temporal_address: str
    credentials: Credentials
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    token: str = ""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The API process's ID."""
        assert self._process is not None, "not started"
        return self._process.pid

    def environment(self) -> dict[str, str]:
        """The API's configuration."""
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELMGR_TEMPORAL_ADDRESS": self.temporal_address,
            "RELMGR_JWT_SECRET": secrets.token_urlsafe(48),
            "RELMGR_USERS_FILE": str(self.credentials.users_file),
            "RELMGR_AUDIT_LOG": str(self.workdir / "audit.jsonl"),
            **self.extra_env,
        }

    async def start(self, *, wait_seconds: float = 60.0) -> None:
        """Start the API and return once it reads from Temporal (`/ready`) and we hold a token."""
        log = self.workdir / f"api-{self.port}.log"
        self._process = _spawn(
            [sys.executable, "-m", "bench.api_app", "--port", str(self.port)],
            self.environment(),
            log,
        )
        deadline = time.monotonic() + wait_seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=5, trust_env=False) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the API exited with {self._process.returncode}; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the API was not ready within {wait_seconds:g} s")
                await asyncio.sleep(0.1)
            login = await client.post(
                "/api/auth/login",
                data={"username": self.credentials.username, "password": self.credentials.password},
            )
            login.raise_for_status()
            self.token = login.json()["access_token"]

    async def stats(self) -> dict[str, Any]:
        """The reader's counters now (`/_bench/stats`)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10, trust_env=False) as client:
            response = await client.get("/_bench/stats")
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    async def reset_timings(self) -> None:
        """Empty the app's per-request timings (`/_bench/reset`)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10, trust_env=False) as client:
            (await client.post("/_bench/reset")).raise_for_status()

    async def profile(self, action: str, **params: str) -> dict[str, str]:
        """Start or stop cProfile in the API process."""
        async with httpx.AsyncClient(base_url=self.url, timeout=60, trust_env=False) as client:
            response = await client.post(f"/_bench/profile/{action}", params=params)
            response.raise_for_status()
            result: dict[str, str] = response.json()
            return result

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it hangs."""
        process, self._process = self._process, None
        stop_process(process)


@dataclass
class DashboardServer:
    """The Streamlit dashboard (`streamlit run streamlit_app.py`) on a free port."""

    workdir: Path
    temporal_address: str
    credentials: Credentials
    extra_env: dict[str, str] = field(default_factory=dict)
    # Shared by two dashboards of one run, so that one sign-in cookie opens sessions on both.
    cookie_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The Streamlit process's ID."""
        assert self._process is not None, "not started"
        return self._process.pid

    def environment(self) -> dict[str, str]:
        """The dashboard's configuration: dev mode, so the session cookie key may be random."""
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELMGR_DEV_MODE": "1",
            "RELMGR_TEMPORAL_ADDRESS": self.temporal_address,
            "RELMGR_USERS_FILE": str(self.credentials.users_file),
            "RELMGR_COOKIE_KEY": self.cookie_key,
            **self.extra_env,
        }

    async def start(self, *, wait_seconds: float = 60.0) -> None:
        """Start Streamlit and return once it answers its health check."""
        log = self.workdir / f"streamlit-{self.port}.log"
        self._process = _spawn(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(self.port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            self.environment(),
            log,
        )
        deadline = time.monotonic() + wait_seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=5, trust_env=False) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"streamlit exited with {self._process.returncode}; see {log}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/_stcore/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"streamlit did not answer within {wait_seconds:g} s")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stop Streamlit."""
        process, self._process = self._process, None
        stop_process(process)
