"""The reference deployment in deploy/: its systemd units pass `systemd-analyze verify`, and its
nginx config, run as written (ports and paths substituted), fronts two dashboard replicas: TLS
and HTTP/2, the security headers, /_stcore/metrics closed, size limits, and sticky sessions that
keep each browser on one replica through sign-in and live refreshes in Chromium."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from relmgr.cli.main import build_parser
from relmgr.temporal.messages import DeployOptions
from relmgr.testing.factories import make_plan
from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process
from tests.browser.conftest import LOAD_TIMEOUT_MS, expect_page_title
from tests.browser.stack import COOKIE_NAME
from tests.deploy.certs import Authority
from tests.deploy.conftest import Backend, ServerSpec, start_servers
from tests.deploy.nginx import main_config, running_nginx

pytestmark = pytest.mark.integration  # real nginx, Streamlit and Temporal; systemd-analyze

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = ("relmgr-worker.service", "relmgr-api.service", "relmgr-dashboard@.service")
INSTALLED_RELMGR = "/opt/relmgr/venv/bin/relmgr"
ROUTE_COOKIE = "relmgr_route"


# ---------------------------------------------------------------------------------------------
# systemd units.


def _exec_start(unit: Path) -> list[str]:
    (line,) = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_runs_a_relmgr_command_that_exists(name: str) -> None:
    """ExecStart is the installed `relmgr` with a subcommand and options its parser accepts."""
    argv = _exec_start(DEPLOY / "systemd" / name)
    assert argv[0] == INSTALLED_RELMGR
    args = build_parser().parse_args([part.replace("%i", "8501") for part in argv[1:]])
    assert args.command in {"worker", "api", "dashboard"}


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say (no error, no warning) about the units, with
    ExecStart pointed at this environment's relmgr so that the binary check applies."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    relmgr = Path(sys.executable).parent / "relmgr"
    assert relmgr.is_file()
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        assert text.count(INSTALLED_RELMGR) == 1
        (tmp_path / name).write_text(text.replace(INSTALLED_RELMGR, str(relmgr)))
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


# ---------------------------------------------------------------------------------------------
# nginx in front of two dashboard replicas.


@dataclass(frozen=True)
class Front:
    """nginx running deploy/nginx/relmgr.conf, and the two replicas behind it."""

    url: str
    port: int
    http_port: int
    ca: Path
    replicas: tuple[str, str]  # "127.0.0.1:port" of each dashboard
    access_log: Path

    def routes(self) -> list[tuple[str, str, str, str]]:
        """(route cookie, upstream, status, URI) of each request so far."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            route, upstream, status, uri = line.split(" ", 3)
            rows.append((route, upstream, status, uri))
        return rows


def _substitute(text: str, old: str, new: str, count: int) -> str:
    """Replace `old`, which must occur exactly `count` times (so the config cannot drift)."""
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times, not {count}"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def front(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """Two `relmgr dashboard` replicas and nginx with the reference config, on loopback."""
    work = tmp_path_factory.mktemp("front")
    ca = Authority.create(work, "front-ca")
    cert = ca.issue(work, "front", server=True, dns_name="relmgr.example.com", ip="127.0.0.1")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        dashboard = ServerSpec(
            command=[sys.executable, "-m", "relmgr", "dashboard"],
            env=backend.dashboard_env(),
            cwd=work,
            log_file=work / "dashboard.log",
        )
        api = ServerSpec(
            command=[sys.executable, "-m", "relmgr", "api"],
            env=backend.dashboard_env(
                RELMGR_JWT_SECRET=secrets.token_urlsafe(48),
                RELMGR_AUDIT_LOG=str(work / "audit.jsonl"),
                # As deploy/systemd/relmgr-api.service: nginx on loopback is the trusted proxy,
                # so its X-Forwarded-Proto (https) reaches the API and HSTS is sent once.
                RELMGR_TRUSTED_PROXIES="127.0.0.1",
            ),
            cwd=work,
            log_file=work / "api.log",
            health_path="/health",
        )
        replica_a, replica_b, api_server = start_servers(
            [dashboard, replace(dashboard, log_file=work / "dashboard-b.log"), api], processes
        )
        ports = [replica_a.port, replica_b.port]
        api_port = api_server.port

        https_port, http_port = free_port(), free_port()
        config = (DEPLOY / "nginx" / "relmgr.conf").read_text()
        config = _substitute(
            config, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;", 2
        )
        config = _substitute(config, "listen 80;", f"listen 127.0.0.1:{http_port};", 1)
        config = _substitute(config, "server 127.0.0.1:8501 ", f"server 127.0.0.1:{ports[0]} ", 1)
        config = _substitute(config, "server 127.0.0.1:8502 ", f"server 127.0.0.1:{ports[1]} ", 1)
        config = _substitute(config, "server 127.0.0.1:8000;", f"server 127.0.0.1:{api_port};", 1)
        config = _substitute(config, "/etc/relmgr/tls/relmgr.crt", str(cert.cert), 2)
        config = _substitute(config, "/etc/relmgr/tls/relmgr.key", str(cert.key), 2)
        prefix = work / "nginx"
        with running_nginx(prefix, main_config(prefix, config), [https_port, http_port]):
            yield Front(
                url=f"https://127.0.0.1:{https_port}",
                port=https_port,
                http_port=http_port,
                ca=ca.cert_file,
                replicas=(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"),
                access_log=prefix / "access.log",
            )
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture(scope="module")
def https(front: Front) -> Iterator[httpx.Client]:
    """An HTTPS client that trusts the test CA."""
    with httpx.Client(
        verify=ssl.create_default_context(cafile=front.ca), trust_env=False
    ) as client:
        yield client


def test_tls_with_http2(front: Front) -> None:
    """The dashboard's server offers HTTP/2 over TLS 1.2+ (ALPN h2)."""
    context = ssl.create_default_context(cafile=front.ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_security_headers_and_a_route_cookie(front: Front, https: httpx.Client) -> None:
    """The page comes with HSTS, a CSP, X-Frame-Options and the route cookie; a browser that
    has the cookie is not given another."""
    first = https.get(f"{front.url}/")
    assert first.status_code == 200
    headers = first.headers
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert "object-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["x-content-type-options"] == "nosniff"
    route = re.fullmatch(
        rf"{ROUTE_COOKIE}=([0-9a-f]{{32}}); Path=/; Secure; HttpOnly; SameSite=Lax",
        headers["set-cookie"],
    )
    assert route is not None, headers["set-cookie"]
    again = https.get(f"{front.url}/", headers={"Cookie": f"{ROUTE_COOKIE}={route.group(1)}"})
    assert again.status_code == 200
    assert "set-cookie" not in again.headers


def test_metrics_are_closed_and_big_bodies_refused(front: Front, https: httpx.Client) -> None:
    """/_stcore/metrics, which a replica serves, is 404 through the proxy; a body over the
    limit is refused with 413 before it reaches Streamlit."""
    direct = httpx.get(f"http://{front.replicas[0]}/_stcore/metrics", trust_env=False)
    assert direct.status_code == 200
    assert https.get(f"{front.url}/_stcore/metrics").status_code == 404
    refused = https.post(f"{front.url}/_stcore/upload_file/x/y", content=b"x" * 100_000)
    assert refused.status_code == 413


def test_the_api_is_served_under_its_own_name(front: Front, https: httpx.Client) -> None:
    """Host api.relmgr.example.com reaches the API (ready: Temporal is up); HSTS comes once (the
    API's own, for a request forwarded as HTTPS), the route cookie not at all; a login body over
    16 KB is refused with 413."""
    host = {"Host": "api.relmgr.example.com"}
    ready = https.get(f"{front.url}/ready", headers=host)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["temporal"] == "ok"
    assert ready.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "set-cookie" not in ready.headers
    too_big = https.post(
        f"{front.url}/api/auth/login", headers=host, content=b"username=" + b"x" * 20_000
    )
    assert too_big.status_code == 413


def test_http_redirects_to_https(front: Front) -> None:
    """Plain HTTP is sent to HTTPS, path kept."""
    answer = httpx.get(f"http://127.0.0.1:{front.http_port}/release?release=rel-x", trust_env=False)
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://127.0.0.1/release?release=rel-x"


def _route_to(front: Front, https: httpx.Client, replica: str) -> str:
    """A route cookie value that nginx sends to `replica` (found by asking, as a browser would)."""
    for _ in range(64):
        route = secrets.token_hex(16)
        https.get(f"{front.url}/_stcore/health", headers={"Cookie": f"{ROUTE_COOKIE}={route}"})
        served = {up for r, up, _, uri in front.routes() if r == route}
        if served == {replica}:
            return route
    raise AssertionError(f"no route to {replica} in 64 tries")


def _sign_in(page: Page, backend: Backend) -> None:
    """Sign in as tests/browser/conftest.py does, without its `wait_for_function` checks: those
    evaluate strings in the page, which the proxy's CSP (rightly) forbids."""
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # The cookie component reruns the script once its iframe has loaded; wait for both.
    expect(page.locator("iframe[src*='CookieManager']")).to_have_count(1)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.get_by_role("textbox", name="Username").fill(backend.account.username)
    page.get_by_role("textbox", name="Password").fill(backend.account.password)
    # A click that lands in the cookie component's rerun is dropped (the same race that
    # tests/browser/conftest.py narrows with a JavaScript wait): the user clicks again, and so
    # does this, at most twice more; the attempts are printed.
    signed_in = page.get_by_text("Signed in as")
    button = page.get_by_role("button", name="Sign in")
    for attempt in range(1, 4):
        if attempt == 1 or button.is_visible():  # a slow sign-in has no button left to click
            button.click()
        try:
            expect(signed_in).to_be_visible(timeout=LOAD_TIMEOUT_MS // 3)
        except AssertionError:
            if attempt == 3:
                raise
            continue
        print(f"\n[front] signed in through nginx at attempt {attempt}")
        break
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while not any(c["name"] == COOKIE_NAME for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the session cookie was never set"
        page.wait_for_timeout(100)  # polling the browser's cookie jar for the component's write


@pytest.mark.browser
def test_two_replicas_sign_in_and_refresh_live_through_the_proxy(
    front: Front, https: httpx.Client, backend: Backend, chromium: Browser
) -> None:
    """A browser on each replica signs in through nginx (websocket and all over TLS); one of
    them sees a release change state without reloading. Every request of a browser reached its
    own replica, and the page raised no error and no CSP violation."""
    routes = [_route_to(front, https, replica) for replica in front.replicas]
    problems: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        # Streamlit's own probes of path prefixes (/release/_stcore/health) log 404s: not ours.
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    for index, route in enumerate(routes):
        context = chromium.new_context(ignore_https_errors=True)
        context.set_default_timeout(LOAD_TIMEOUT_MS)
        context.add_cookies([{"name": ROUTE_COOKIE, "value": route, "url": front.url}])
        try:
            page = context.new_page()
            page.on("console", watch)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(front.url, timeout=LOAD_TIMEOUT_MS)
            _sign_in(page, backend)
            if index == 0:
                release = f"rel-front{secrets.token_hex(3)}"
                backend.temporal.start_release(
                    release,
                    make_plan(1, 1, 1),
                    DeployOptions(min_seconds=3.0, max_seconds=3.0),
                    start_delay=timedelta(seconds=2),
                )
                page.goto(f"{front.url}/release?release={release}", timeout=LOAD_TIMEOUT_MS)
                expect_page_title(page, f"Release {release}")
                header = page.get_by_test_id("stMarkdownContainer")
                expect(
                    header.filter(has_text=re.compile(r"^\s*(PENDING|IN_PROGRESS)\s+waves"))
                ).to_be_visible()
                page.evaluate("window.relmgrNoReload = 'same document'")
                expect(
                    header.filter(has_text=re.compile(r"^\s*SUCCEEDED\s+waves 1/1"))
                ).to_be_visible(timeout=60_000)
                assert page.evaluate("window.relmgrNoReload") == "same document"
        finally:
            context.close()
    assert problems == [], "\n".join(problems)
    # nginx logs a websocket when it closes, a moment after its browser has gone.
    deadline = time.monotonic() + 10
    while not all(_websocket_logged(front, route) for route in routes):
        assert time.monotonic() < deadline, f"no websocket in the log: {front.routes()}"
        time.sleep(0.1)
    for route, replica in zip(routes, front.replicas, strict=True):
        assert {up for r, up, _, _ in front.routes() if r == route} == {replica}


def _websocket_logged(front: Front, route: str) -> bool:
    return any(r == route and uri == "/_stcore/stream" for r, _, _, uri in front.routes())
