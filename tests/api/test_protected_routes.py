"""Every non-public route, enumerated from the OpenAPI document, refuses bad or missing tokens."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import claims_for, http_client, sign

PUBLIC = {("POST", "/api/auth/login"), ("GET", "/health"), ("GET", "/ready")}
# What a good token gets; logout answers 204 with no body.
SUCCESS = {("POST", "/api/auth/logout"): 204}
# A valid example for each path parameter, so that only the token can be the reason for a 401.
PATH_EXAMPLES = {
    "release_id": "rel-demo",
    "entity_id": "rel-demo.wave-1",
    "app_id": "rel-demo.wave-1.cluster-c1.bundle-core.app-a1",
    "action": "pause",
}
# A valid body for each control, for the same reason.
BODIES: dict[str, dict[str, Any]] = {
    "/api/releases/{release_id}/actions/approve": {"wave": 2},
    "/api/releases/{release_id}/actions/cancel": {"reason": "stop"},
}


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.openapi()
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_EXAMPLES[m.group(1)], path)


def _body(method: str, path: str) -> dict[str, Any] | None:
    return BODIES.get(path, {}) if method == "POST" else None


def _alg_none() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims_for()).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}."


def _tampered() -> str:
    header, _, signature = sign(claims_for("viewer")).split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims_for("admin")).encode()).rstrip(b"=")
    return f"{header}.{payload.decode()}.{signature}"


BAD_HEADERS: dict[str, dict[str, str]] = {
    "missing": {},
    "expired": {"Authorization": f"Bearer {sign(claims_for(age=7200, lifetime=60))}"},
    "alg none": {"Authorization": f"Bearer {_alg_none()}"},
    "tampered": {"Authorization": f"Bearer {_tampered()}"},
    "bad signature": {
        "Authorization": f"Bearer {sign(claims_for(), secret='x' * 40)}",
    },
}


def test_the_public_routes_are_exactly_login_and_the_probes(app: FastAPI) -> None:
    """Only login and the probes are documented without a security requirement."""
    public = {(m, p) for m, p, op in _operations(app) if not op.get("security")}
    assert public == PUBLIC


def test_every_protected_route_documents_401(app: FastAPI) -> None:
    """Each secured operation documents its 401 in the error shape."""
    for method, path, operation in _operations(app):
        if (method, path) in PUBLIC:
            continue
        assert operation["security"] == [{"OAuth2PasswordBearer": []}], (method, path)
        schema = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)


@pytest.mark.parametrize("kind", sorted(BAD_HEADERS))
async def test_every_protected_route_rejects_bad_tokens(app: FastAPI, kind: str) -> None:
    """Missing, expired, `alg: none`, tampered and wrongly signed tokens all get 401 everywhere."""
    protected = [(m, p) for m, p, _ in _operations(app) if (m, p) not in PUBLIC]
    assert len(protected) == 13  # me, logout, list, release, hierarchy, timeline, entity,
    # the entity's subtree, approve, pause, resume, cancel, retry... and the audit trail
    async with http_client(app) as api:
        for method, path in protected:
            response = await api.request(
                method, _url(path), headers=BAD_HEADERS[kind], json=_body(method, path)
            )
            assert response.status_code == 401, (kind, method, path)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert set(response.json()) == {"error"}, (method, path)


async def test_every_protected_route_accepts_a_good_token(app: FastAPI) -> None:
    """The same requests with a valid token succeed, so the 401s above are about the token."""
    protected = [(m, p) for m, p, _ in _operations(app) if (m, p) not in PUBLIC]
    async with http_client(app) as api:
        for method, path in protected:
            # A token each: logout ends the one it is given.
            headers = {"Authorization": f"Bearer {sign(claims_for())}"}
            response = await api.request(
                method, _url(path), headers=headers, json=_body(method, path)
            )
            expected = SUCCESS.get((method, path), 200)
            assert response.status_code == expected, (method, path, response.text)


async def test_public_probes_need_no_token(api: httpx.AsyncClient) -> None:
    """/health and /ready answer without a token."""
    assert (await api.get("/health")).json() == {"status": "ok"}
    assert (await api.get("/ready")).json() == {
        "status": "ready",
        "temporal": "ok",
        "refresh_cycles": 0,
        "list_calls": 0,
        "refreshing": False,
    }
