"""Start-up refusals, security headers, CORS, the audit log, and /docs working offline."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from relmgr.api import create_app, serve
from relmgr.errors import ConfigError
from relmgr.settings import Settings
from tests.api.conftest import PASSWORD, SECRET, http_client

# --- refusing to start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "missing or a placeholder"),
        ("changeme", "missing or a placeholder"),
        ("dev-secret-change-me-dev-secret-change-me", "missing or a placeholder"),
        ("short-but-random-Zq81", "too short"),
        ("x" * 31, "too short"),
    ],
)
def test_app_refuses_weak_jwt_secrets(
    settings_for: Callable[..., Settings], secret: str, problem: str
) -> None:
    """Outside dev mode a missing, placeholder or short secret stops create_app with ConfigError."""
    with pytest.raises(ConfigError, match="RELMGR_JWT_SECRET") as raised:
        create_app(settings_for(jwt_secret=SecretStr(secret)))
    assert problem in raised.value.message
    if secret:
        assert secret not in raised.value.message


def test_dev_mode_accepts_a_short_secret(settings_for: Callable[..., Settings]) -> None:
    """Dev mode (where `relmgr dev` generates the secret) tolerates a short one."""
    app = create_app(settings_for(jwt_secret=SecretStr("short"), dev_mode=True))
    assert isinstance(app, FastAPI)


def test_serve_refuses_before_listening(
    settings_for: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve() raises ConfigError for a bad secret and never reaches uvicorn."""
    import uvicorn

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("uvicorn.run was called")

    monkeypatch.setattr(uvicorn, "run", must_not_run)
    with pytest.raises(ConfigError, match="RELMGR_JWT_SECRET is too short"):
        serve(settings_for(jwt_secret=SecretStr("y" * 20)), host="127.0.0.1", port=1)


def test_serve_runs_uvicorn_with_the_app(
    settings_for: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With good settings serve() hands the app, host and port to uvicorn, with uvicorn's own
    proxy-header rewriting off: X-Forwarded-For is believed only from RELMGR_TRUSTED_PROXIES."""
    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: object, **kwargs: object) -> None:
        seen["app"] = app
        seen.update(kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    serve(settings_for(), host="127.0.0.1", port=8123)
    assert isinstance(seen["app"], FastAPI)
    assert (seen["host"], seen["port"], seen["proxy_headers"]) == ("127.0.0.1", 8123, False)
    assert seen["server_header"] is False


def test_missing_users_file_stops_start_up(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    """A users file that does not exist is a ConfigError naming the file."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        create_app(settings_for(users_file=missing))


def test_plaintext_password_in_users_file_stops_start_up(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    """A users file with a plaintext password is refused at start-up."""
    path = tmp_path / "users.yaml"
    path.write_text(
        "credentials:\n  usernames:\n    bob:\n      email: b@example.com\n"
        "      name: Bob\n      password: hunter22\n"
    )
    with pytest.raises(ConfigError, match="not a bcrypt hash"):
        create_app(settings_for(users_file=path))


# --- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/health", "/api/releases", "/api/nothing", "/openapi.json"])
async def test_security_headers_on_every_response(api: httpx.AsyncClient, url: str) -> None:
    """nosniff, DENY, no-referrer and a strict CSP on answers of every kind; no HSTS on http."""
    response = await api.get(url)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers
    assert "server" not in response.headers


async def test_hsts_only_over_https(app: FastAPI) -> None:
    """A request that came over TLS gets Strict-Transport-Security."""
    async with http_client(app, base_url="https://testserver") as api:
        response = await api.get("/health")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_cors_allows_only_configured_origins(
    settings_for: Callable[..., Settings], app_for: Callable[..., FastAPI]
) -> None:
    """A listed origin gets CORS headers (ETag exposed); any other origin gets none."""
    app = app_for(settings_for(cors_origins=["https://ops.example.com"]))
    async with http_client(app) as api:
        allowed = await api.get("/health", headers={"Origin": "https://ops.example.com"})
        refused = await api.get("/health", headers={"Origin": "https://evil.example.com"})
        preflight = await api.options(
            "/api/releases",
            headers={
                "Origin": "https://ops.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
    assert "ETag" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in refused.headers
    assert preflight.status_code == 200
    assert "x-content-type-options" in preflight.headers


async def test_no_cors_headers_without_configuration(api: httpx.AsyncClient) -> None:
    """With no allow-list, no origin gets CORS headers."""
    response = await api.get("/health", headers={"Origin": "https://ops.example.com"})
    assert "access-control-allow-origin" not in response.headers


# --- audit log -----------------------------------------------------------------------------------


def _audit(app: FastAPI) -> list[dict[str, object]]:
    path = app.state.api.settings.audit_log
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_audit_log_records_logins_and_rejections_without_secrets(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    """Success, failure, throttling and a rejected token each write one JSON line; no secrets."""
    wrong = "Wrong-Password-Value-123"
    good = await api.post("/api/auth/login", data={"username": "admin", "password": PASSWORD})
    token = good.json()["access_token"]
    for _ in range(3):
        await api.post("/api/auth/login", data={"username": "viewer", "password": wrong})
    await api.post("/api/auth/login", data={"username": "viewer", "password": wrong})
    await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}x"})
    # A password typed into the username box is not logged either.
    await api.post("/api/auth/login", data={"username": f"P@ss {wrong}", "password": "x"})

    records = _audit(app)
    assert [(r["event"], r.get("user"), r.get("reason")) for r in records] == [
        ("login_succeeded", "admin", None),
        ("login_failed", "viewer", None),
        ("login_failed", "viewer", None),
        ("login_failed", "viewer", None),
        ("login_throttled", "viewer", "user"),
        ("token_rejected", None, "bad_signature"),
        ("login_failed", "(malformed)", None),
    ]
    assert all(r["client"] == "127.0.0.1" for r in records)
    assert all(str(r["ts"]).endswith("Z") for r in records)
    text = app.state.api.settings.audit_log.read_text()
    for secret in (PASSWORD, wrong, token, token.split(".")[2], "test-jwt-secret"):
        assert secret not in text


async def test_audit_goes_to_standard_error_whatever_the_log_level(
    settings_for: Callable[..., Settings],
    app_for: Callable[..., FastAPI],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no audit file, records go to standard error as JSON lines through the audit logger's
    own handler, even when the process logs at WARNING (as `relmgr api` does)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.WARNING)
    app = app_for(settings_for(audit_log=None))
    capsys.readouterr()
    async with http_client(app) as api:
        await api.post("/api/auth/login", data={"username": "admin", "password": "nope-nope"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["user"]) for line in lines] == [("login_failed", "admin")]


# --- /docs offline -------------------------------------------------------------------------------


async def test_docs_page_loads_only_local_assets(api: httpx.AsyncClient) -> None:
    """The docs page references no external URL, and every asset it names is served here."""
    page = await api.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text
    assert "https://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == [
        "/docs/init.js",
        "/docs/static/favicon.png",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    for asset in assets:
        response = await api.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    assert "<script>" not in page.text  # no inline script: the CSP forbids it


async def test_docs_csp_allows_only_self(api: httpx.AsyncClient) -> None:
    """The docs page's CSP lets it load its own script and the spec, nothing from elsewhere."""
    csp = (await api.get("/docs")).headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "script-src 'self' 'unsafe-inline'" not in csp


async def test_openapi_document_is_served_and_names_the_bearer_scheme(
    api: httpx.AsyncClient,
) -> None:
    """The spec is public and declares the OAuth2 password flow at the login route."""
    spec = (await api.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/auth/login"


# --- what is never logged -------------------------------------------------------------------------


def test_the_access_log_never_shows_a_query_string() -> None:
    """uvicorn's access line for `/api/releases?access_token=...` keeps the path, not the query."""
    from relmgr.api.server import RedactQueryFilter, log_config

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/releases?access_token=eyJ.secret.sig&q=x", "1.1", 401),
        None,
    )
    assert RedactQueryFilter().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5000 - "GET /api/releases?[redacted] HTTP/1.1" 401'
    config = log_config()
    assert config["handlers"]["access"]["filters"] == ["redact_query"]
    assert config["filters"]["redact_query"]["()"] is RedactQueryFilter


async def test_no_secret_token_or_password_reaches_any_log(
    settings_for: Callable[..., Settings],
    app_for: Callable[..., FastAPI],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logins, refused and logged-out tokens, a token in the query and a broken users file log
    none of the password, the token (or its signature), or the signing secret, anywhere."""
    settings = settings_for(audit_log=None)
    app = app_for(settings)
    with caplog.at_level(logging.DEBUG):
        async with http_client(app) as api:
            token = (
                await api.post("/api/auth/login", data={"username": "admin", "password": PASSWORD})
            ).json()["access_token"]
            await api.post("/api/auth/login", data={"username": "admin", "password": "Wr0ng-pw!"})
            await api.get("/api/auth/me", params={"access_token": token})
            await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}x"})
            await api.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
            await api.get("/api/releases", headers={"Authorization": f"Bearer {token}"})
    # The test's own HTTP client (httpx) logs its request URLs; everything else is the server's.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = capsys.readouterr().err + "\n".join(r.getMessage() for r in server)
    assert '"event":"logout"' in logged
    for secret in (PASSWORD, "Wr0ng-pw!", token, token.split(".")[2], SECRET):
        assert secret not in logged


async def test_an_id_with_a_trailing_newline_is_422(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`/api/releases/rel-x%0A` is a malformed ID (422), not an unknown one (404)."""
    for url in ("/api/releases/rel-demo%0A", "/api/entities/rel-demo.wave-1%0A"):
        response = await api.get(url, headers=auth)
        assert response.status_code == 422, url
        assert response.json()["error"]["code"] == "invalid_id"
    response = await api.get("/api/releases", params={"q": "demo\n"}, headers=auth)
    assert response.status_code == 422
