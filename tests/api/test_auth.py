"""Logging in, `/api/auth/me`, every way a token can be bad, rate limiting and the users file."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from relmgr.auth.users import (
    add_user,
    load_users,
    remove_user,
    revoke_sessions,
    session_epoch,
    write_users,
)
from relmgr.settings import Settings
from relmgr.temporal.ledger_state import LedgerEvent, LedgerEventKind, LedgerState
from tests.api.conftest import PASSWORD, SECRET, claims_for, http_client, sign


async def _login(api: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await api.post("/api/auth/login", data={"username": username, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_bearer_token_for_the_user(api: httpx.AsyncClient) -> None:
    """The right password gives an HS256 JWT for the user with exp, iat, sub and jti."""
    response = await _login(api, "admin", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "admin"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert len(claims["jti"]) == 32
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


async def test_token_from_login_opens_me(api: httpx.AsyncClient) -> None:
    """The token from login answers /me with the user's profile and never the password hash."""
    token = (await _login(api, "admin", PASSWORD)).json()["access_token"]
    response = await api.get("/api/auth/me", headers=_bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "username": "admin",
        "name": "Admin",
        "email": "admin@example.com",
        "roles": ["admin"],
    }
    assert "$2b$" not in response.text


async def test_each_login_gets_a_new_token_id(api: httpx.AsyncClient) -> None:
    """Two logins in the same second still give two distinct tokens (distinct jti)."""
    first = (await _login(api, "admin", PASSWORD)).json()["access_token"]
    second = (await _login(api, "admin", PASSWORD)).json()["access_token"]
    assert first != second


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong-password"), ("nobody", PASSWORD), ("ADMIN", PASSWORD)],
)
async def test_bad_credentials_get_401_in_the_error_shape(
    api: httpx.AsyncClient, username: str, password: str
) -> None:
    """A wrong password or an unknown user gets the same 401, which does not say which it was."""
    response = await _login(api, username, password)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "invalid_credentials",
            "message": "wrong username or password",
            "details": None,
        }
    }


async def test_login_without_a_password_is_422(api: httpx.AsyncClient) -> None:
    """A form without its password field is a 422 naming the missing field."""
    response = await api.post("/api/auth/login", data={"username": "admin"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["details"] == [
        {"location": "body", "name": "password", "problem": "Field required"}
    ]


async def test_repeated_failures_for_one_user_get_429_with_retry_after(
    api: httpx.AsyncClient,
) -> None:
    """After 3 failures (the test limit) the username is throttled, even with the right password."""
    for _ in range(3):
        assert (await _login(api, "admin", "wrong-password")).status_code == 401
    response = await _login(api, "admin", PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_requests"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.json()["error"]["details"] == {"retry_after": retry_after}


async def test_failures_across_usernames_throttle_the_client(
    settings_for: Callable[..., Settings], app_for: Callable[..., FastAPI]
) -> None:
    """One client guessing many usernames is throttled by its address, at the client limit."""
    app = app_for(settings_for(login_attempts_per_client_per_minute=4))
    async with http_client(app) as api:
        for name in ("u1", "u2", "u3", "u4"):
            assert (await _login(api, name, "wrong-password")).status_code == 401
        response = await _login(api, "viewer", "viewer-password-1")
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_failing_random_names_does_not_lock_admin_out(api: httpx.AsyncClient) -> None:
    """Ten failures for random names from one client (over three times the per-username limit)
    do not stop `admin` with the right password, from that same client."""
    for n in range(10):
        assert (await _login(api, f"random-{n}", "wrong-password")).status_code == 401
    assert (await _login(api, "admin", PASSWORD)).status_code == 200


def _audit_clients(settings: Settings) -> list[str]:
    assert settings.audit_log is not None
    lines = settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["client"] for line in lines if '"login_failed"' in line]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    settings_for: Callable[..., Settings], app_for: Callable[..., FastAPI]
) -> None:
    """Without RELMGR_TRUSTED_PROXIES, rotating X-Forwarded-For does not dodge the client limit."""
    settings = settings_for(login_attempts_per_client_per_minute=3)
    async with http_client(app_for(settings)) as api:
        for n in range(3):
            headers = {"X-Forwarded-For": f"203.0.113.{n}"}
            response = await api.post(
                "/api/auth/login", data={"username": f"u{n}", "password": "x"}, headers=headers
            )
            assert response.status_code == 401
        response = await api.post(
            "/api/auth/login",
            data={"username": "u9", "password": "x"},
            headers={"X-Forwarded-For": "203.0.113.99"},
        )
    assert response.status_code == 429
    assert _audit_clients(settings) == ["127.0.0.1"] * 3


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    settings_for: Callable[..., Settings], app_for: Callable[..., FastAPI]
) -> None:
    """Behind a trusted proxy each client has its own key: one outsider failing many names does
    not hold up `admin` coming from another address through the same proxy."""
    settings = settings_for(
        login_attempts_per_client_per_minute=3, trusted_proxies="10.0.0.0/8, 127.0.0.1"
    )
    outsider = {"X-Forwarded-For": "198.51.100.7, 10.1.2.3"}
    async with http_client(app_for(settings)) as api:
        for n in range(3):
            response = await api.post(
                "/api/auth/login", data={"username": f"u{n}", "password": "x"}, headers=outsider
            )
            assert response.status_code == 401
        response = await api.post(
            "/api/auth/login", data={"username": "u9", "password": "x"}, headers=outsider
        )
        assert response.status_code == 429
        response = await api.post(
            "/api/auth/login",
            data={"username": "admin", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.1"},
        )
    assert response.status_code == 200
    assert _audit_clients(settings) == ["198.51.100.7"] * 3


async def test_parallel_guesses_cannot_outrun_the_limit(api: httpx.AsyncClient) -> None:
    """Ten wrong passwords sent at once: only 3 (the limit) are even checked, 7 get 429."""
    responses = await asyncio.gather(*(_login(api, "admin", f"guess-{n}") for n in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 3 + [429] * 7


async def test_successful_logins_do_not_count_towards_the_limit(api: httpx.AsyncClient) -> None:
    """Only failures are counted: four good logins in a row all succeed."""
    for _ in range(4):
        assert (await _login(api, "admin", PASSWORD)).status_code == 200


async def _me(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.get("/api/auth/me", headers=_bearer(token))


def _tamper(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _alg_none(claims: dict[str, object]) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}."


def _hs512(claims: dict[str, object]) -> str:
    # The same secret under another algorithm: refused because only HS256 is accepted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return sign(claims, algorithm="HS512")


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "bad signature": lambda: sign(claims_for(), secret="another-secret-of-at-least-32-bytes!!"),
    "alg none": lambda: _alg_none(claims_for()),
    "alg HS512, same secret": lambda: _hs512(claims_for()),
    "expired": lambda: sign(claims_for(age=3600, lifetime=900)),
    "unknown user": lambda: sign(claims_for("ghost")),
    "tampered subject": lambda: _tamper(sign(claims_for("viewer")), sub="admin"),
    "tampered expiry": lambda: _tamper(sign(claims_for(age=3600, lifetime=900)), exp=2**40),
    "no jti": lambda: sign({k: v for k, v in claims_for().items() if k != "jti"}),
    "no exp": lambda: sign({k: v for k, v in claims_for().items() if k != "exp"}),
    "issued in the future": lambda: sign(claims_for(age=-3600)),
    "not a jwt": lambda: "not-a-jwt",
    "garbage segments": lambda: "a.b.c",
}


BAD_TOKENS.update(
    {
        "jti not 32 hex digits": lambda: sign({**claims_for(), "jti": "test-jti"}),
        "no session epoch": lambda: sign({k: v for k, v in claims_for().items() if k != "ep"}),
        "another user's epoch": lambda: sign(
            {**claims_for("admin"), "ep": claims_for("viewer")["ep"]}
        ),
        "old session epoch": lambda: sign({**claims_for(), "ep": "0" * 24}),
    }
)
REFUSED = {
    "error": {
        "code": "invalid_token",
        "message": (
            "the bearer token is invalid or has expired: log in again at POST /api/auth/login"
        ),
        "details": None,
    }
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_bad_tokens_all_get_the_same_401(api: httpx.AsyncClient, kind: str) -> None:
    """Every kind of bad token gets the same 401 and `WWW-Authenticate`, with no hint which check
    refused it."""
    response = await _me(api, BAD_TOKENS[kind]())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == REFUSED


async def test_me_is_never_cached(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """`/api/auth/me` answers with `Cache-Control: no-store`, like the login response."""
    response = await api.get("/api/auth/me", headers=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_a_token_in_the_query_string_is_never_accepted(
    api: httpx.AsyncClient, token: str
) -> None:
    """`?access_token=` is not a way to authenticate: 401 as if no token were sent."""
    response = await api.get("/api/auth/me", params={"access_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- Logout, and sessions that follow the user ----------------------------------------------------


def _spellings(token: str) -> dict[str, str]:
    """The token and other spellings of it that decode to the same claims."""
    header, payload, signature = token.split(".")
    return {
        "as issued": token,
        "trailing =": token + "=",
        "trailing ==": token + "==",
        "padded signature": f"{header}.{payload}.{signature}{'=' * (-len(signature) % 4)}",
        "padded payload": f"{header}.{payload}{'=' * (-len(payload) % 4)}.{signature}",
        "trailing space": token + " ",
        "trailing tab": token + "\t",
    }


async def test_logout_ends_the_token_in_every_spelling(api: httpx.AsyncClient) -> None:
    """`POST /api/auth/logout` answers 204; afterwards the token, and every other spelling of it
    that was accepted before, gets the same 401."""
    token = (await _login(api, "admin", PASSWORD)).json()["access_token"]
    accepted = [
        kind
        for kind, spelled in _spellings(token).items()
        if (await _me(api, spelled)).status_code == 200
    ]
    assert {"as issued", "trailing ="} <= set(accepted)
    response = await api.post("/api/auth/logout", headers=_bearer(token + "="))
    assert response.status_code == 204
    assert response.content == b""
    for kind, spelled in _spellings(token).items():
        refused = await _me(api, spelled)
        assert refused.status_code == 401, kind
        assert refused.json() == REFUSED, kind
    assert (await api.get("/api/releases", headers=_bearer(token))).status_code == 401
    # Another token of the same user goes on.
    other = (await _login(api, "admin", PASSWORD)).json()["access_token"]
    assert (await _me(api, other)).status_code == 200


async def test_logout_needs_a_valid_token(api: httpx.AsyncClient) -> None:
    """Logout without a token, or with a refused one, is a 401 like any other route."""
    assert (await api.post("/api/auth/logout")).status_code == 401
    response = await api.post("/api/auth/logout", headers=_bearer("a.b.c"))
    assert response.json() == REFUSED


def _touch(path: Path, seconds: int) -> None:
    # Some filesystems keep whole-second mtimes; make the change visible regardless.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


@pytest.mark.parametrize("change", ["new password", "new role", "revoke", "removed"])
async def test_a_change_to_the_user_ends_its_tokens(
    settings_for: Callable[..., Settings],
    app_for: Callable[..., FastAPI],
    tmp_path: Path,
    users_file: Path,
    change: str,
) -> None:
    """A new password or role, `relmgr users revoke`, or removing the user ends every token the
    user had, at the next users-file reload; other users' tokens go on."""
    path = _copy(users_file, tmp_path)
    app = app_for(settings_for(users_file=path))
    async with http_client(app) as api:
        token = (await _login(api, "viewer", "viewer-password-1")).json()["access_token"]
        admin = (await _login(api, "admin", PASSWORD)).json()["access_token"]
        assert (await api.get("/api/releases", headers=_bearer(token))).status_code == 200
        if change == "new password":
            add_user(
                path,
                username="viewer",
                email="viewer@example.com",
                name="Viewer",
                password="a-new-password-2",
            )
        elif change == "new role":
            user = load_users(path).users["viewer"]
            write_users(
                path,
                [
                    *load_users(path).users.values(),
                    user.model_copy(update={"roles": ("operator",)}),
                ],
            )
        elif change == "revoke":
            revoke_sessions(path, "viewer")
        else:
            remove_user(path, "viewer")
        _touch(path, 2)
        for route in ("/api/auth/me", "/api/releases"):
            response = await api.get(route, headers=_bearer(token))
            assert response.status_code == 401, route
            assert response.json() == REFUSED
        assert (await _me(api, admin)).status_code == 200
        if change == "new password":
            fresh = (await _login(api, "viewer", "a-new-password-2")).json()["access_token"]
            assert (await _me(api, fresh)).status_code == 200


async def test_a_login_body_over_the_limit_is_413_before_parsing(api: httpx.AsyncClient) -> None:
    """A login body of 10 KB (declared, or chunked without a length) is refused with 413."""
    big = {"username": "admin", "password": "x" * 10_000}
    response = await api.post("/api/auth/login", data=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"username=admin&password="
        for _ in range(100):
            yield b"x" * 1000

    response = await api.post(
        "/api/auth/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    # A body under the limit is still parsed as usual.
    assert (await _login(api, "admin", PASSWORD)).status_code == 200


async def test_missing_token_gets_401_not_authenticated(api: httpx.AsyncClient) -> None:
    """No Authorization header: 401 `not_authenticated` with a plain `WWW-Authenticate: Bearer`."""
    response = await api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_basic_auth_is_not_a_bearer_token(api: httpx.AsyncClient) -> None:
    """Another scheme in Authorization counts as no token at all."""
    response = await api.get("/api/auth/me", headers={"Authorization": "Basic YWRtaW46eA=="})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def _copy(users_file: Path, directory: Path) -> Path:
    path = directory / "users.yaml"
    path.write_bytes(users_file.read_bytes())
    return path


async def test_users_file_changes_are_picked_up_without_restart(
    settings_for: Callable[..., Settings],
    app_for: Callable[..., FastAPI],
    tmp_path: Path,
    users_file: Path,
) -> None:
    """A user added to the file can log in; a removed user's token stops working at once."""
    path = _copy(users_file, tmp_path)
    app = app_for(settings_for(users_file=path))
    async with http_client(app) as api:
        viewer_token = sign(claims_for("viewer"))
        assert (await _me(api, viewer_token)).status_code == 200
        assert (await _login(api, "carol", "carol-password")).status_code == 401
        add_user(
            path, username="carol", email="c@example.com", name="Carol", password="carol-password"
        )
        # Some filesystems keep whole-second mtimes; make the change visible regardless.
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
        assert (await _login(api, "carol", "carol-password")).status_code == 200
        text = path.read_text()
        start = text.index("    viewer:")
        path.write_text(text[:start])  # viewer was the last user in the sorted file
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 4_000_000_000))
        response = await _me(api, viewer_token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_broken_users_file_edit_keeps_the_previous_users(
    settings_for: Callable[..., Settings],
    app_for: Callable[..., FastAPI],
    tmp_path: Path,
    users_file: Path,
) -> None:
    """A half-written users file does not lock everyone out: the last good users stay."""
    path = _copy(users_file, tmp_path)
    app = app_for(settings_for(users_file=path))
    async with http_client(app) as api:
        path.write_text("credentials: [unclosed")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
        response = await _me(api, sign(claims_for("admin")))
    assert response.status_code == 200


def _read_later(app: FastAPI, shared: LedgerState, seconds: float) -> None:
    """Have the app's reader read the ledger `shared` in `seconds` (its first read)."""
    state = app.state.api
    state.reads_ledger = True  # as when the app's own reader follows the ledger

    def read() -> None:
        state.ledger.apply_memo(json.dumps(shared.to_memo()).encode())
        state.ledger.loaded.set()

    asyncio.get_running_loop().call_later(seconds, read)


async def test_a_fresh_replicas_first_token_carries_the_generation_the_ledger_holds(
    app_for: Callable[..., FastAPI],
) -> None:
    """Another replica raised admin's generation to 3; this replica's file says 0 and it has not
    read the ledger yet. Its first login waits for that read, so the token is of generation 3
    (one of generation 0 would be refused by every replica moments later)."""
    app = app_for()
    shared = LedgerState()
    shared.apply(LedgerEvent(kind=LedgerEventKind.GENERATION, username="admin", generation=3))
    _read_later(app, shared, 0.3)
    async with http_client(app) as api:
        response = await _login(api, "admin", PASSWORD)
        assert response.status_code == 200
        token = response.json()["access_token"]
        raised = app.state.api.users.get("admin")
        assert raised.session_generation == 3
        assert jwt.decode(token, SECRET, algorithms=["HS256"])["ep"] == session_epoch(raised)
        assert (await api.get("/api/auth/me", headers=_bearer(token))).status_code == 200


async def test_a_fresh_replica_refuses_a_token_ended_elsewhere_from_its_first_request(
    app_for: Callable[..., FastAPI],
) -> None:
    """A token logged out on another replica is refused by a fresh one even on its first
    request, which waits for the first read of the ledger that lists it."""
    app = app_for()
    claims = claims_for("admin")
    shared = LedgerState()
    shared.apply(LedgerEvent(kind=LedgerEventKind.REVOKE, jti=claims["jti"], expires=claims["exp"]))
    _read_later(app, shared, 0.3)
    async with http_client(app) as api:
        response = await api.get("/api/auth/me", headers=_bearer(sign(claims)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
