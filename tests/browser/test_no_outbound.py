"""The dashboard makes no outbound call: foreign-Origin websocket handshakes (which make a plain
Streamlit 1.67 look its address up at checkip.amazonaws.com, blocking its event loop) are refused
without any connection through the process's proxy, and without slowing the server down."""

from __future__ import annotations

import secrets
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from relmgr.auth.users import add_user
from relmgr.testing.ports import free_port
from tests.browser.stack import StreamlitServer

FOREIGN_ORIGINS = ("http://evil.example", "https://203.0.113.9:8501", "null")


class ConnectionRecorder:
    """A TCP listener on 127.0.0.1 that records each connection and never answers (as a proxy on
    a network without egress would): a client that uses it waits for its own timeout."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: list[bytes] = []
        self._socket = socket.create_server(("127.0.0.1", self.port))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="recorder", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            connection.settimeout(0.5)
            try:
                first = connection.recv(200)
            except TimeoutError:
                first = b""
            self.connections.append(first)
            self._held.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._socket.close()


@pytest.fixture
def recorder() -> Iterator[ConnectionRecorder]:
    """The proxy stand-in, stopped after the test."""
    listening = ConnectionRecorder()
    try:
        yield listening
    finally:
        listening.close()


@pytest.fixture
def dashboard_behind_proxy(
    tmp_path: Path, recorder: ConnectionRecorder
) -> Iterator[StreamlitServer]:
    """The real dashboard, started as relmgr starts it, with every proxy variable pointing at the
    recorder (so any outbound HTTP(S) request from it lands there)."""
    users_file = tmp_path / "users.yaml"
    add_user(users_file, username="alice", email="a@example.com", name="A", password="pw-alice-1")
    proxy = f"http://127.0.0.1:{recorder.port}"
    env = {
        "RELMGR_USERS_FILE": str(users_file),
        "RELMGR_COOKIE_KEY": secrets.token_urlsafe(48),
        "RELMGR_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing there; never read
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    server = StreamlitServer(env, tmp_path / "streamlit.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def health_latency(url: str) -> float:
    """Seconds for one `/_stcore/health` answer."""
    started = time.perf_counter()
    answer = httpx.get(f"{url}/_stcore/health", timeout=10)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    return elapsed


def median_latency(url: str, samples: int = 15) -> float:
    """The median of `samples` health latencies, in seconds."""
    return statistics.median(health_latency(url) for _ in range(samples))


def foreign_handshake(url: str, origin: str) -> int:
    """Open the dashboard's websocket with a foreign Origin; the HTTP status it was refused with."""
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        with connect(ws_url, origin=origin, open_timeout=10):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def record_handshake(url: str, origin: str, statuses: list[int]) -> None:
    """A foreign handshake (in a thread of its own), its status appended to `statuses`."""
    statuses.append(foreign_handshake(url, origin))


def test_foreign_origin_handshakes_make_no_outbound_call_and_no_stall(
    dashboard_behind_proxy: StreamlitServer, recorder: ConnectionRecorder
) -> None:
    """Each foreign-Origin handshake is refused (403) at once; the proxy sees zero connections; a
    health check made during a handshake, and those after, are as fast as before."""
    url = dashboard_behind_proxy.url
    before = median_latency(url)
    during: list[float] = []
    handshakes: list[float] = []
    statuses: list[int] = []
    for origin in FOREIGN_ORIGINS * 2:
        started = time.perf_counter()
        shaking = threading.Thread(target=record_handshake, args=(url, origin, statuses))
        shaking.start()
        during.append(health_latency(url))
        shaking.join(timeout=30)
        handshakes.append(time.perf_counter() - started)
    after = median_latency(url)
    print(
        f"\nhealth latency median before {before * 1000:.1f} ms, after {after * 1000:.1f} ms; "
        f"during foreign handshakes max {max(during) * 1000:.1f} ms; handshakes max "
        f"{max(handshakes) * 1000:.1f} ms; outbound connections {len(recorder.connections)}"
    )
    assert statuses == [403] * len(FOREIGN_ORIGINS) * 2
    assert recorder.connections == []
    # A plain Streamlit 1.67 stalls ~2 s per handshake here (two 1 s lookups through the proxy);
    # the bounds leave room for a busy machine, not for a lookup.
    assert max(during) < 1.0
    assert max(handshakes) < 1.0
    assert after < before + 0.25


def test_a_same_origin_handshake_is_still_accepted(
    dashboard_behind_proxy: StreamlitServer, recorder: ConnectionRecorder
) -> None:
    """The dashboard's own origin still opens the websocket, so the refusals above are about the
    origin, not a broken server; still no outbound connection."""
    assert foreign_handshake(dashboard_behind_proxy.url, dashboard_behind_proxy.url) == 101
    assert recorder.connections == []
