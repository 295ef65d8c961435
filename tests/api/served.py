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
from relmgr.settings import Settings
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.ports import bound_socket, port_of
from tests.api.conftest import SECRET, demo_trees

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 10.0  # a started server answers within ms; a loaded machine needs a few s


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
    """Serve `app` on a socket the kernel gave a free port, in a thread; yield its base URL once
    it serves; stop it afterwards. Raises if it has not started within 10 s."""
    sock = bound_socket()
    port = port_of(sock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on 127.0.0.1:{port} did not start")
            time.sleep(0.025)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass(frozen=True)
class ServedProcess:
    """Where the subprocess serves, and its PID (to read its CPU time)."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serve_in_subprocess(workdir: Path, password: str) -> Iterator[ServedProcess]:
    """Serve the demo app from its own process (its own GIL, as in production), on a socket
    bound here and handed to uvicorn (`--fd`). Raises if /health has not answered within 20 s."""
    sock = bound_socket()
    port = port_of(sock)
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
        "--fd",
        str(sock.fileno()),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, pass_fds=(sock.fileno(),))
    sock.close()  # the child holds the port now
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 2 * READY_SECONDS
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode} before serving")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn at {url} did not answer /health within 20 s")
            time.sleep(0.05)
        yield ServedProcess(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
