"""What the audit log records of control requests that never reach Temporal: malformed ones
(refused by validation before their handler runs: who, what, the problem, the request ID; never
the token), also shown by GET /api/audit, and ones sent while Temporal is unreachable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from relmgr.api import create_app
from relmgr.settings import Settings
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import claims_for, http_client, sign

RELEASE = "rel-payments"
APP = "rel-payments.wave-1.cluster-c1.bundle-core.app-a1"


def _as(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(claims_for(username))}"}


def _audit_text(settings: Settings) -> str:
    path = settings.audit_log
    assert path is not None
    return Path(path).read_text() if Path(path).exists() else ""


def _controls(settings: Settings) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in _audit_text(settings).splitlines()]
    return [line for line in lines if line["event"] == "control"]


async def test_malformed_bodies_are_recorded_as_invalid_with_the_problem(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Cancel without a reason, a 501-character reason, a wrong type, non-JSON: each a 422 and a
    line naming the user, role, action, target, request ID and what is wrong."""
    operator = _as("operator")
    cancel = f"/api/releases/{RELEASE}/actions/cancel"
    no_reason = await api.post(cancel, json={"request_id": "r-none"}, headers=operator)
    too_long = await api.post(
        cancel, json={"reason": "x" * 501, "request_id": "r-long"}, headers=operator
    )
    wrong_type = await api.post(
        f"/api/releases/{RELEASE}/actions/approve",
        json={"wave": "two", "reason": "canary ok", "request_id": "r-type"},
        headers=_as("admin"),
    )
    not_json = await api.post(
        f"/api/entities/{APP}/actions/retry",
        content=b"{reason: flaky",
        headers={**operator, "Content-Type": "application/json"},
    )
    assert [r.status_code for r in (no_reason, too_long, wrong_type, not_json)] == [422] * 4
    lines = _controls(settings)
    assert [
        (e["user"], e["role"], e["action"], e["target"], e["request_id"], e["outcome"])
        for e in lines
    ] == [
        ("operator", "operator", "cancel", RELEASE, "r-none", "invalid"),
        ("operator", "operator", "cancel", RELEASE, "r-long", "invalid"),
        ("admin", "admin", "approve", RELEASE, "r-type", "invalid"),
        ("operator", "operator", "retry", APP, "", "invalid"),
    ]
    assert [e["message"] for e in lines] == [
        no_reason.json()["error"]["message"],
        too_long.json()["error"]["message"],
        wrong_type.json()["error"]["message"],
        not_json.json()["error"]["message"],
    ]
    assert "'reason': Field required" in lines[0]["message"]
    assert "at most 500 characters" in lines[1]["message"]
    assert "'wave'" in lines[2]["message"]
    assert "JSON decode error" in lines[3]["message"]
    # The reason of the approve is kept as sent; the 501-character one is cut to 500.
    assert (lines[1]["reason"], lines[2]["reason"]) == ("x" * 500, "canary ok")


async def test_a_malformed_request_without_a_valid_token_is_recorded_without_a_user(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Non-JSON is refused before the token is looked at: the line has no user, no role and no
    token; a forged token counts as none."""
    token = "not.a.valid-token-secret-value"
    response = await api.post(
        f"/api/releases/{RELEASE}/actions/pause",
        content=b"not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [line] = _controls(settings)
    assert (line.get("user"), line.get("role"), line["action"], line["outcome"]) == (
        None,
        None,
        "pause",
        "invalid",
    )
    assert token not in _audit_text(settings)


async def test_malformed_attempts_appear_in_the_audit_trail(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """GET /api/audit returns the malformed attempt of the release, newest first, with its
    problem; a bad ID in the path is recorded too, but belongs to no release."""
    operator = _as("operator")
    await api.post(
        f"/api/releases/{RELEASE}/actions/pause",
        json={"reason": "hold", "force": True, "request_id": "r-extra"},
        headers=operator,
    )
    await api.post(f"/api/releases/{RELEASE}/actions/explode", json={}, headers=operator)
    bad_id = await api.post("/api/releases/REL_1/actions/pause", json={}, headers=operator)
    assert bad_id.status_code == 422
    trail = await api.get(f"/api/audit?release_id={RELEASE}", headers=_as("viewer"))
    assert trail.status_code == 200
    items = trail.json()["items"]
    assert [(i["action"], i["outcome"], i["request_id"], i["source"]) for i in items] == [
        ("explode", "invalid", "", "audit_log"),
        ("pause", "invalid", "r-extra", "audit_log"),
    ]
    assert "Extra inputs are not permitted" in items[1]["message"]
    everything = await api.get("/api/audit", headers=_as("viewer"))
    assert everything.json()["items"][0]["target"] == "REL_1"


async def test_the_audit_trail_route_records_no_control_for_its_own_bad_parameters(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """GET /api/audit with a bad `limit` is a 422 of a read, not a control attempt."""
    response = await api.get("/api/audit?limit=0", headers=_as("viewer"))
    assert response.status_code == 422
    assert _controls(settings) == []


async def test_a_control_while_temporal_is_unreachable_is_503_and_recorded_unavailable(
    settings: Settings, reader: FakeReader
) -> None:
    """Before the API has reached Temporal (no controller yet), approve answers 503 with
    Retry-After, and the attempt is recorded as unavailable, not accepted."""
    app = create_app(settings, reader=reader, controller=None)
    async with http_client(app) as api:
        response = await api.post(
            f"/api/releases/{RELEASE}/actions/approve",
            json={"wave": 2, "request_id": "r-down"},
            headers=_as("operator"),
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "temporal_unavailable"
    [line] = _controls(settings)
    assert (line["user"], line["action"], line["request_id"], line["outcome"]) == (
        "operator",
        "approve",
        "r-down",
        "unavailable",
    )
