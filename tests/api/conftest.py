"""Fixtures for the API tests: a users file, settings, a fake reader, the app and an HTTP client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from relmgr.api import create_app
from relmgr.auth.sessions import new_jti
from relmgr.auth.users import add_user, load_users, session_epoch
from relmgr.errors import NotFoundError
from relmgr.models import Control, EntityState
from relmgr.reader.protocol import ReleaseReader
from relmgr.settings import Settings
from relmgr.temporal.messages import ControlRequest, ControlResult
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.passwords import cheap_bcrypt

SECRET = "test-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
PASSWORD = "correct-horse-battery"
VIEWER_PASSWORD = "viewer-password-1"
OPERATOR_PASSWORD = "operator-password-1"
BASE_URL = "http://testserver"

# The session epoch of each test user, filled in when the session's users file is made (copies
# of it hold the same hashes, so the same epochs).
EPOCHS: dict[str, str] = {}

# A failed app in the demo release, for trees that are not all SUCCEEDED.
FAILED_APP = "rel-demo.wave-2.cluster-c1.bundle-core.app-a2"


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with `admin`, `viewer` and `operator`, bcrypt-hashed once per session (at
    the cheapest cost: these tests are about the API, not about the hash's cost)."""
    path = tmp_path_factory.mktemp("users") / "users.yaml"
    with cheap_bcrypt():
        add_user(
            path,
            username="admin",
            email="admin@example.com",
            name="Admin",
            password=PASSWORD,
            roles=("admin",),
        )
        add_user(
            path,
            username="viewer",
            email="viewer@example.com",
            name="Viewer",
            password=VIEWER_PASSWORD,
        )
        add_user(
            path,
            username="operator",
            email="operator@example.com",
            name="Operator",
            password=OPERATOR_PASSWORD,
            roles=("operator",),
        )
    EPOCHS.update({u.username: session_epoch(u) for u in load_users(path).users.values()})
    return path


@pytest.fixture
def settings_for(users_file: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test app; keyword arguments override fields."""

    def build(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "jwt_secret": SECRET,
            "users_file": users_file,
            "audit_log": tmp_path / "audit.jsonl",
            "login_attempts_per_minute": 3,
            "token_minutes": 15,
            "revoked_sessions_file": tmp_path / "revoked-sessions.json",
        }
        fields.update(overrides)
        return Settings(**fields)

    return build


@pytest.fixture
def settings(settings_for: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return settings_for()


def demo_trees() -> list[Any]:
    """Three releases: rel-demo (one failed app), rel-payments (running), rel-old (succeeded)."""
    return [
        make_hierarchy(
            "demo",
            states={
                FAILED_APP: EntityState.FAILED,
                "rel-demo.wave-2.cluster-c1.bundle-core": EntityState.FAILED,
                "rel-demo.wave-2.cluster-c1": EntityState.FAILED,
                "rel-demo.wave-2": EntityState.FAILED,
                "rel-demo": EntityState.FAILED,
            },
            errors={FAILED_APP: '=HYPERLINK("http://evil")'},
            started_at=T0,
        ),
        make_hierarchy(
            "payments",
            waves=1,
            clusters=1,
            apps=2,
            default=EntityState.IN_PROGRESS,
            states={"rel-payments.wave-1.cluster-c1.bundle-core.app-a1": EntityState.SUCCEEDED},
            started_at=T0 + timedelta(hours=1),
        ),
        make_hierarchy("old", waves=1, clusters=1, apps=1, started_at=T0 - timedelta(days=1)),
    ]


class FakeController:
    """Accepts every control on an entity of `known` releases; 404 for any other."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.sent: list[tuple[Control, str, ControlRequest, str]] = []

    async def send(
        self, action: Control, target_id: str, request: ControlRequest, *, request_id: str
    ) -> ControlResult:
        """Record the control and accept it."""
        if target_id.split(".", 1)[0] not in self.known:
            raise NotFoundError(f"{target_id} not found in Temporal", entity_id=target_id)
        self.sent.append((action, target_id, request, request_id))
        return ControlResult(
            entity_id=target_id, action=action, state=EntityState.IN_PROGRESS, message="ok"
        )


@pytest.fixture
def reader() -> FakeReader:
    """A fake reader holding the demo trees."""
    return FakeReader(demo_trees())


@pytest.fixture
def app_for(settings: Settings, reader: FakeReader) -> Callable[..., FastAPI]:
    """Build an app with the test settings and the fake reader (both overridable)."""

    def build(settings_: Settings | None = None, reader_: ReleaseReader | None = None) -> FastAPI:
        known = {tree.release.id for tree in demo_trees()}
        return create_app(
            settings_ or settings, reader=reader_ or reader, controller=FakeController(known)
        )

    return build


@pytest.fixture
def app(app_for: Callable[..., FastAPI]) -> FastAPI:
    """The app under test."""
    return app_for()


def http_client(
    app: FastAPI, *, base_url: str = BASE_URL, raise_errors: bool = True
) -> httpx.AsyncClient:
    """An in-process HTTP client of the app."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app under test."""
    async with http_client(app) as client:
        yield client


def sign(claims: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    """A token with exactly these claims."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims_for(username: str = "admin", *, age: int = 0, lifetime: int = 900) -> dict[str, Any]:
    """Valid claims (a fresh `jti`, the user's current epoch) issued `age` seconds ago."""
    now = int(time.time()) - age
    return {
        "sub": username,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti(),
        "ep": EPOCHS.get(username, "no-such-user"),
    }


@pytest.fixture
def token() -> str:
    """A valid token for `admin`."""
    return sign(claims_for())


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    """Headers carrying a valid bearer token."""
    return {"Authorization": f"Bearer {token}"}
