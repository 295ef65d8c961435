"""Fixtures for the dashboard tests: settings in the environment, a users file, a fake reader
behind the UI's seam, and AppTest instances of the real entry point, signed in or not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from streamlit.components.v2 import manifest_scanner
from streamlit.components.v2.manifest_scanner import ComponentManifest
from streamlit.runtime.context import ContextProxy, StreamlitCookies
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from relmgr.auth.store import shared_store
from relmgr.auth.users import add_user, load_users
from relmgr.models import EntityState, ReleaseHierarchy
from relmgr.reader.protocol import ReleaseReader
from relmgr.settings import Settings, get_settings
from relmgr.testing.factories import make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.passwords import cheap_bcrypt
from relmgr.ui import runtime
from relmgr.ui.login import SESSION_KEY, SessionRecord, login_limiter

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
USERNAME = "alice"
NAME = "Alice Example"
OPERATOR = "olga"
PASSWORD = "correct horse battery"
COOKIE_KEY = "k" * 16 + "0123456789abcdefghijklmnopqrstuv"  # 48 bytes, no placeholder word

# The demo release: 2 waves x 2 clusters x 1 bundle x 2 apps; one app failed, one retrying.
FAILED_APP = "rel-demo.wave-2.cluster-c1.bundle-core.app-a2"
RETRYING_APP = "rel-demo.wave-2.cluster-c2.bundle-core.app-a1"


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once() -> Iterator[None]:
    """Each AppTest scans every installed package's metadata for Streamlit components on its
    first run (about 0.6 s on an idle machine, half of a short test); the installed packages do
    not change during the session, so the first scan's answer serves every AppTest."""
    scanned = manifest_scanner.scan_component_manifests()

    def scan(max_workers: int | None = None) -> list[tuple[ComponentManifest, Path]]:
        return list(scanned)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", scan)  # raises if renamed
        yield


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with a viewer (alice) and an operator, bcrypt-hashed once per session (at
    the cheapest cost: these tests are about signing in, not about the hash's cost)."""
    path = tmp_path_factory.mktemp("ui-users") / "users.yaml"
    with cheap_bcrypt():
        add_user(path, username=USERNAME, email="alice@example.com", name=NAME, password=PASSWORD)
        add_user(
            path,
            username=OPERATOR,
            email="olga@example.com",
            name="Olga Operator",
            password=PASSWORD,
            roles=("operator",),
        )
    return path


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, users_file: Path, tmp_path: Path
) -> Iterator[None]:
    """The settings the dashboard reads (RELMGR_*), fresh for each test.

    Each test has its own revoked sessions file and starts with no failed sign-ins counted."""
    for name in (
        "RELMGR_DEV_MODE",
        "RELMGR_UI_REFRESH_SECONDS",
        "RELMGR_LOGIN_ATTEMPTS_PER_MINUTE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELMGR_USERS_FILE", str(users_file))
    monkeypatch.setenv("RELMGR_COOKIE_KEY", COOKIE_KEY)
    monkeypatch.setenv("RELMGR_REVOKED_SESSIONS_FILE", str(tmp_path / "revoked-sessions.json"))
    # No Temporal here: the gate must not start a real reader for the auth ledger.
    monkeypatch.setenv("RELMGR_AUTH_LEDGER", "false")
    for cached in (get_settings, login_limiter, shared_store, runtime.auth_ledger):
        cached.cache_clear()
    yield
    for cached in (get_settings, login_limiter, shared_store, runtime.auth_ledger):
        cached.cache_clear()


def demo_tree() -> ReleaseHierarchy:
    """The demo release with a failed and a retrying app (both with a last error)."""
    return make_hierarchy(
        "demo",
        states={
            FAILED_APP: EntityState.FAILED,
            "rel-demo.wave-2.cluster-c1.bundle-core": EntityState.FAILED,
            "rel-demo.wave-2.cluster-c1": EntityState.FAILED,
            "rel-demo.wave-2": EntityState.IN_PROGRESS,
            "rel-demo": EntityState.IN_PROGRESS,
            RETRYING_APP: EntityState.RETRYING,
            "rel-demo.wave-2.cluster-c2.bundle-core": EntityState.IN_PROGRESS,
            "rel-demo.wave-2.cluster-c2": EntityState.IN_PROGRESS,
            # Not started yet: a PENDING placeholder from the plan.
            "rel-demo.wave-2.cluster-c2.bundle-core.app-a2": None,  # type: ignore[dict-item]
        },
        errors={FAILED_APP: "deploy failed: exit code 3", RETRYING_APP: "timeout talking to api"},
    )


@pytest.fixture
def fake(environment: None) -> Iterator[FakeReader]:
    """A fake reader with the demo release and two finished ones, installed behind the seam."""
    reader = FakeReader(
        [
            demo_tree(),
            make_hierarchy("done-one"),
            make_hierarchy("done-two", default=EntityState.FAILED),
        ]
    )

    async def factory(settings: Settings) -> ReleaseReader:
        return reader

    runtime.set_reader_factory(factory)
    yield reader
    runtime.set_reader_factory(None)


@pytest.fixture
def steady_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs behave as in a server process past its first run: Streamlit's folder mode is off.

    AppTest forgets the mode before every run, so with `pages/` beside the entry point each run
    would start in folder mode, and `frame.enter()` would spend it on a rerun that drops the
    clicks the test just made. tests/ui/test_frame.py covers folder mode itself.
    """
    original_init = PagesManager.__init__

    def init_after_first_run(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_after_first_run)


@pytest.fixture
def new_app(fake: FakeReader, steady_process: None) -> Callable[[], AppTest]:
    """A fresh AppTest of the entry point, not signed in."""
    return lambda: AppTest.from_file(str(APP), default_timeout=30)


def sign_in(at: AppTest, username: str = USERNAME) -> AppTest:
    """Put the session into the signed-in state a password sign-in leaves (with its record)."""
    user = load_users(get_settings().users_file).users[username]
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = NAME if username == USERNAME else "Olga Operator"
    at.session_state[SESSION_KEY] = asdict(SessionRecord.new(user, 1.0))
    return at


@pytest.fixture
def app(new_app: Callable[[], AppTest]) -> AppTest:
    """A signed-in AppTest of the entry point (not run yet)."""
    return sign_in(new_app())


def open_page(at: AppTest, page: str, **params: str) -> AppTest:
    """Run the app once, switch to `page` with query parameters, and run it there."""
    at.run()
    at.switch_page(page)
    at.query_params.clear()
    at.query_params.update(params)
    return at.run()


def browser_sends(monkeypatch: pytest.MonkeyPatch, cookies: dict[str, str]) -> None:
    """Make `st.context.cookies` hold `cookies`, as a browser's first request would (the dict
    is read at every run, so a test can change it between runs)."""
    monkeypatch.setattr(
        ContextProxy, "cookies", property(lambda self: StreamlitCookies(dict(cookies)))
    )
