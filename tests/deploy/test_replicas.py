"""Replicas that share nothing but Temporal: two API and two dashboard processes, each with its
own data directory (its own copy of the users file, its own revoked sessions file), against one
dev server. A logout, a login throttle and a `relmgr users revoke` on one replica hold on the
others within 5 s, through the auth ledger (relmgr.auth.ledger); and each replica's refresh
costs Temporal one list call per cycle, whatever its viewers."""

from __future__ import annotations

import itertools
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from relmgr.auth.users import add_user
from relmgr.testing.processes import stop_process
from tests.browser.conftest import LOAD_TIMEOUT_MS, log_out
from tests.browser.stack import COOKIE_NAME
from tests.deploy.conftest import Backend, ServerSpec, start_servers

pytestmark = pytest.mark.integration  # real Temporal, uvicorn and Streamlit processes

# The bound; every replica refreshes each second here (RELMGR_REFRESH_SECONDS=1).
WITHIN_SECONDS = 5.0
ATTEMPTS_PER_MINUTE = 3
# The throttle test's user: guessed at, so that the others' user is never held up.
GUESSED, GUESSED_PASSWORD = "bob", "bobs-correct-horse-1"


@dataclass(frozen=True)
class Replicas:
    """Where each replica serves, and its data directory."""

    apis: tuple[str, str]
    dashboards: tuple[str, str]
    data_dirs: tuple[Path, ...]
    jwt_secret: str


@pytest.fixture(scope="module")
def replicas(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two `relmgr api` and two `relmgr dashboard` processes, each in a data directory of its
    own, sharing only the dev server (and a ledger workflow ID of this module's own)."""
    work = tmp_path_factory.mktemp("replicas")
    users_file = work / "users.yaml"
    shutil.copyfile(backend.users_file, users_file)
    add_user(
        users_file, username=GUESSED, email="b@example.com", name="Bob", password=GUESSED_PASSWORD
    )
    ledger_id = f"relmgr-auth-ledger-{secrets.token_hex(4)}"
    jwt_secret = secrets.token_urlsafe(48)
    processes: list[subprocess.Popen[bytes]] = []
    data_dirs: list[Path] = []
    specs: list[ServerSpec] = []
    try:
        for kind in ("api-a", "api-b", "dashboard-a", "dashboard-b"):
            data_dir = work / kind
            data_dir.mkdir()
            own_users = data_dir / "users.yaml"
            shutil.copyfile(users_file, own_users)
            data_dirs.append(data_dir)
            env = backend.dashboard_env(
                RELMGR_USERS_FILE=str(own_users),
                RELMGR_REVOKED_SESSIONS_FILE=str(data_dir / "revoked-sessions.json"),
                RELMGR_AUTH_LEDGER_WORKFLOW_ID=ledger_id,
                RELMGR_AUTH_LEDGER_TASK_QUEUE=ledger_id,
                RELMGR_JWT_SECRET=jwt_secret,
                RELMGR_AUDIT_LOG=str(data_dir / "audit.jsonl"),
                RELMGR_LOGIN_ATTEMPTS_PER_MINUTE=str(ATTEMPTS_PER_MINUTE),
            )
            command = "api" if kind.startswith("api") else "dashboard"
            specs.append(
                ServerSpec(
                    command=[sys.executable, "-m", "relmgr", command],
                    env=env,
                    cwd=data_dir,
                    log_file=data_dir / f"{kind}.log",
                    health_path="/ready" if command == "api" else "/_stcore/health",
                )
            )
        served = start_servers(specs, processes)
        yield Replicas(
            apis=(served[0].url, served[1].url),
            dashboards=(served[2].url, served[3].url),
            data_dirs=tuple(data_dirs),
            jwt_secret=jwt_secret,
        )
    finally:
        for process in processes:
            stop_process(process)


def _login(api: str, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{api}/api/auth/login",
        data={"username": username, "password": password},
        timeout=10,
        trust_env=False,
    )


def _token(api: str, backend: Backend) -> str:
    response = _login(api, backend.account.username, backend.account.password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _me(api: str, token: str) -> int:
    response = httpx.get(
        f"{api}/api/auth/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        trust_env=False,
    )
    return response.status_code


def _seconds_until(check: Callable[[], bool], limit: float = 15.0) -> float:
    """Seconds from now until `check()` first holds, polling every 0.1 s; fails past `limit`."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < limit, f"still not after {limit:g} s"
        time.sleep(0.1)
    return time.monotonic() - began


def test_a_logout_on_one_api_is_refused_by_the_other_within_5_s(
    replicas: Replicas, backend: Backend
) -> None:
    """A token from API A works on API B; after POST /api/auth/logout on A it is 401 on A at
    once and on B within 5 s, though B's revoked sessions file never lists it."""
    api_a, api_b = replicas.apis
    token = _token(api_a, backend)
    assert _me(api_b, token) == 200
    logout = httpx.post(
        f"{api_a}/api/auth/logout",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        trust_env=False,
    )
    assert logout.status_code == 204
    assert _me(api_a, token) == 401
    seconds = _seconds_until(lambda: _me(api_b, token) == 401)
    print(f"\n[replicas] logout on API A refused by API B after {seconds:.2f} s")
    assert seconds < WITHIN_SECONDS
    b_file = replicas.data_dirs[1] / "revoked-sessions.json"
    assert not b_file.exists() or token not in b_file.read_text()


def test_a_throttle_reached_on_one_api_holds_on_the_other(
    replicas: Replicas, backend: Backend
) -> None:
    """Three wrong passwords for bob on API A: A answers 429; within 5 s so does B, even to
    bob's right password (B itself saw no failure), with a Retry-After of most of a minute."""
    api_a, api_b = replicas.apis
    statuses = [_login(api_a, GUESSED, "wrong-password-1").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    assert _login(api_a, GUESSED, GUESSED_PASSWORD).status_code == 429
    answers: list[httpx.Response] = []

    def throttled_on_b() -> bool:
        answers.append(_login(api_b, GUESSED, GUESSED_PASSWORD))
        return answers[-1].status_code == 429

    seconds = _seconds_until(throttled_on_b)
    print(f"\n[replicas] throttle on API A held by API B after {seconds:.2f} s")
    assert seconds < WITHIN_SECONDS
    assert 30 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_a_revoke_against_one_replicas_users_file_ends_tokens_on_the_other(
    replicas: Replicas, backend: Backend
) -> None:
    """`relmgr users revoke` run against API A's copy of the users file (B's copy unchanged):
    a token issued by B is refused by B within 5 s of A next reading its file."""
    api_a, api_b = replicas.apis
    token_b = _token(api_b, backend)
    token_a = _token(api_a, backend)
    assert _me(api_b, token_b) == 200
    done = subprocess.run(
        [sys.executable, "-m", "relmgr", "users", "revoke", backend.account.username],
        env={
            **backend.dashboard_env(),
            "RELMGR_USERS_FILE": str(replicas.data_dirs[0] / "users.yaml"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _me(api_a, token_a) == 401  # A reads its file: the token's epoch is gone
    seconds = _seconds_until(lambda: _me(api_b, token_b) == 401)
    print(f"\n[replicas] revoke on A's users file refused by API B after {seconds:.2f} s")
    assert seconds < WITHIN_SECONDS
    assert "session_generation" not in (replicas.data_dirs[1] / "users.yaml").read_text()


def _between_cycles(client: httpx.Client, api: str) -> dict[str, Any]:
    """The API's `/ready` counters at a moment no refresh cycle is under way (mid-cycle, its
    list call is counted and the cycle not yet)."""
    deadline = time.monotonic() + 10
    while True:
        ready: dict[str, Any] = client.get(f"{api}/ready").json()
        if not ready["refreshing"]:
            return ready
        assert time.monotonic() < deadline, "a refresh cycle lasted 10 s"
        time.sleep(0.05)


def test_each_api_costs_temporal_one_list_call_per_refresh_cycle(
    replicas: Replicas, backend: Backend
) -> None:
    """With four viewers polling the release list and a release on each API, the list calls
    each API makes grow exactly as its refresh cycles do: one call per cycle, the auth ledger
    included, whatever the viewers."""
    headers = {"Authorization": f"Bearer {_token(replicas.apis[0], backend)}"}
    with httpx.Client(headers=headers, timeout=10, trust_env=False) as client:

        def view_all() -> None:
            for api in replicas.apis:
                for path in ("/api/releases", f"/api/releases/{backend.release_id}/hierarchy"):
                    assert client.get(f"{api}{path}").status_code == 200

        view_all()  # cold loads (full lists) happen here, before counting
        time.sleep(1.5)
        view_all()
        before = [_between_cycles(client, api) for api in replicas.apis]
        stop = time.monotonic() + 6
        while time.monotonic() < stop:
            for _ in range(4):  # four viewers
                view_all()
            time.sleep(0.2)
        after = [_between_cycles(client, api) for api in replicas.apis]
    for name, old, new in zip(("A", "B"), before, after, strict=True):
        cycles = new["refresh_cycles"] - old["refresh_cycles"]
        calls = new["list_calls"] - old["list_calls"]
        print(f"\n[replicas] API {name}: {calls} list calls in {cycles} refresh cycles")
        assert cycles >= 4
        assert calls == cycles


def _sign_in(page: Page, backend: Backend) -> None:
    """Sign in through the form (a click dropped by the cookie component's rerun is retried)."""
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("iframe[src*='CookieManager']")).to_have_count(1)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.get_by_role("textbox", name="Username").fill(backend.account.username)
    page.get_by_role("textbox", name="Password").fill(backend.account.password)
    button = page.get_by_role("button", name="Sign in")
    for attempt in range(1, 4):
        if attempt == 1 or button.is_visible():
            button.click()
        try:
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=LOAD_TIMEOUT_MS // 3)
            break
        except AssertionError:
            if attempt == 3:
                raise
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while not any(c["name"] == COOKIE_NAME for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the session cookie was never set"
        page.wait_for_timeout(100)


def _signed_in_or_form(page: Page, url: str) -> bool:
    """Load `url`: True if the cookie signed the page in, False if the sign-in form shows."""
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    signed_in = page.get_by_text("Signed in as")
    form = page.get_by_role("button", name="Sign in")
    expect(signed_in.or_(form).first).to_be_visible()
    return signed_in.is_visible()


def _accepted_within(chromium: Browser, cookie: Any, url: str, seconds: float) -> None:
    """Load `url` in fresh browsers given `cookie` until one is signed in by it."""
    deadline = time.monotonic() + seconds
    for attempt in itertools.count(1):
        context = chromium.new_context()
        try:
            context.add_cookies([cookie])
            page = context.new_page()
            page.set_default_timeout(LOAD_TIMEOUT_MS)
            if _signed_in_or_form(page, url):
                if attempt > 1:
                    print(f"\n[replicas] dashboard B took the cookie at try {attempt}")
                return
        finally:
            context.close()
        assert time.monotonic() < deadline, f"dashboard B refused a valid cookie for {seconds} s"
        time.sleep(0.5)


@pytest.mark.browser
def test_a_dashboard_logout_is_refused_by_the_other_dashboard_within_5_s(
    replicas: Replicas, backend: Backend, chromium: Browser
) -> None:
    """A browser signs in on dashboard A; a second browser given a copy of its cookie is signed
    in by dashboard B. Once A logs out, B shows the copy the sign-in form, at a load begun
    within 5 s of the logout."""
    dashboard_a, dashboard_b = replicas.dashboards
    owner = chromium.new_context()
    other = chromium.new_context()
    try:
        page = owner.new_page()
        page.set_default_timeout(LOAD_TIMEOUT_MS)
        page.goto(dashboard_a, timeout=LOAD_TIMEOUT_MS)
        _sign_in(page, backend)
        [cookie] = [c for c in owner.cookies() if c["name"] == COOKIE_NAME]
        copied = {"name": cookie["name"], "value": cookie["value"], "url": dashboard_b}
        # Dashboard B judges cookies once it has read the ledger (an earlier test raised this
        # user's generation there, not in B's users file); on a loaded machine its first read
        # can take longer than the 5 s its first cookie check waits, and a refused cookie is
        # deleted: so each try is a fresh browser, until B signs the copy in.
        _accepted_within(chromium, copied, dashboard_b, seconds=30)
        other.add_cookies([copied])
        copy = other.new_page()
        copy.set_default_timeout(LOAD_TIMEOUT_MS)
        assert _signed_in_or_form(copy, dashboard_b)
        log_out(page)
        logged_out = time.monotonic()
        while True:
            began = time.monotonic() - logged_out
            if not _signed_in_or_form(copy, dashboard_b):
                break
            assert began < 15, "dashboard B still accepts the cookie"
            copy.wait_for_timeout(200)
        print(f"\n[replicas] dashboard logout refused by dashboard B {began:.2f} s after it")
        assert began < WITHIN_SECONDS
    finally:
        owner.close()
        other.close()
