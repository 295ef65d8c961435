"""Logging in, `/api/auth/me`, every way a token can be bad, rate limiting and the users file."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from relmgr.auth import add_user
from relmgr.settings import Settings
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


async def test_failures_across_usernames_throttle_the_client(app: FastAPI) -> None:
    """One client guessing different usernames is throttled by its address."""
    async with http_client(app) as api:
        for name in ("u1", "u2", "u3"):
            assert (await _login(api, name, "wrong-password")).status_code == 401
        response = await _login(api, "viewer", "viewer-password-1")
    assert response.status_code == 429
    assert "retry-after" in response.headers


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


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_bad_tokens_get_401_with_www_authenticate(api: httpx.AsyncClient, kind: str) -> None:
    """Every kind of bad token gets 401, `WWW-Authenticate: Bearer ...` and the error shape."""
    response = await _me(api, BAD_TOKENS[kind]())
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] in {"invalid_token", "token_expired"}
    assert error["message"]


async def test_expired_token_says_it_expired(api: httpx.AsyncClient) -> None:
    """An expired token's 401 says so, so a script knows to log in again."""
    response = await _me(api, sign(claims_for(age=3600, lifetime=900)))
    assert response.json()["error"]["code"] == "token_expired"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


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
