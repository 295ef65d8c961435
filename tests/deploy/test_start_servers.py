"""`start_servers`, the deployment tests' way to start servers: a port taken between
`free_port()` and the server's bind moves the server to another port instead of failing."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process
from tests.browser.stack import PortTakenError
from tests.deploy import conftest
from tests.deploy.conftest import ServerSpec, start_servers

# A server taking `--port N`, which fails the way uvicorn does when the port is taken.
SERVER = (
    "import http.server, sys\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[-1])),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something is bound to (not listening: a health check sent there is refused at
    once instead of waiting for an answer that never comes)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _spec(tmp_path: Path) -> ServerSpec:
    return ServerSpec(
        command=[sys.executable, "-c", SERVER],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_file=tmp_path / "server.log",
        health_path="/",
    )


def test_a_server_whose_port_was_taken_starts_again_on_another(
    taken: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first port handed out is taken: the server exits, is started on the next port, and
    is healthy there; both processes are handed to the caller to stop."""
    handed = iter([taken])
    monkeypatch.setattr(conftest, "free_port", lambda: next(handed, None) or free_port())
    started: list[subprocess.Popen[bytes]] = []
    try:
        [served] = start_servers([_spec(tmp_path)], started)
        assert served.port != taken
        assert httpx.get(served.url, trust_env=False).status_code == 200
        assert len(started) == 2
        assert started[0].poll() not in (None, 0)  # the one that found its port taken
    finally:
        for process in started:
            stop_process(process)


def test_a_port_taken_four_times_fails_with_the_servers_output(
    taken: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three moves at most: a port that is always taken ends in the server's own words."""
    monkeypatch.setattr(conftest, "free_port", lambda: taken)
    started: list[subprocess.Popen[bytes]] = []
    try:
        with pytest.raises(PortTakenError, match="Address already in use"):
            start_servers([_spec(tmp_path)], started)
        assert len(started) == 4
    finally:
        for process in started:
            stop_process(process)
