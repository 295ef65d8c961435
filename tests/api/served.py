"""A test API served by a real uvicorn on 127.0.0.1 (a free port), in a thread or a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import uvicorn
from fastapi import FastAPI

from relmgr.api import create_app
from relmgr.reader.fake import FakeReader
from relmgr.settings import Settings
from tests.api.conftest import SECRET, demo_trees
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def write_users(path: Path, password: str) -> Path:
    """A users file with `admin`, hashed at bcrypt's minimum cost so that tests stay fast."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    path.write_text(
        "credentials:\n  usernames:\n    admin:\n      email: admin@example.com\n"
        f"      name: Admin\n      password: '{hashed}'\n      roles: [admin]\n"
    )
    return path


def build_app() -> FastAPI:
    """The uvicorn factory for a subprocess: settings from RELMGR_* variables, the demo trees."""
    return create_app(Settings(), reader=FakeReader(demo_trees()))


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free port in a thread; yield its base URL; stop it afterwards."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.025)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass(frozen=True)
class ServedProcess:
    """Where the subprocess serves, and its PID (to read its CPU time)."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve_in_subprocess(workdir: Path, password: str) -> Iterator[ServedProcess]:
    """Serve the demo app from its own process (its own GIL, as in production)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RELMGR_JWT_SECRET": SECRET,
        "RELMGR_USERS_FILE": str(write_users(workdir / "users.yaml", password)),
        "RELMGR_AUDIT_LOG": str(workdir / "audit.jsonl"),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "tests.api.served:build_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield ServedProcess(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
