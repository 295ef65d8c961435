"""The API on the production reader against a real Temporal dev server, lifespan included."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from relmgr.api import create_app
from relmgr.settings import Settings
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.factories import make_plan
from relmgr.testing.ports import free_port
from tests.api.conftest import SECRET, claims_for, http_client, sign

pytestmark = pytest.mark.integration

FAST = DeployOptions(min_seconds=0.0, max_seconds=0.05, retry_seconds=0.2, parallelism=3)
# Settings below give Temporal 1 s per call; 1.2-2 s is what a loaded 2-core machine adds.
OUTAGE_ANSWER_BOUND_S = 3.0


def _auth() -> dict[str, str]:
    """Headers with a valid token for `admin` (made once the users file, and its epochs, exist)."""
    return {"Authorization": f"Bearer {sign(claims_for(lifetime=3600))}"}


def _settings(users_file: Path, address: str, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "jwt_secret": SECRET,
        "users_file": users_file,
        "temporal_address": address,
        "refresh_seconds": 0.5,
        "temporal_rpc_timeout": 1.0,
        "temporal_connect_timeout": 1.0,
    }
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started (as uvicorn would) and an HTTP client of it."""
    async with app.router.lifespan_context(app), http_client(app) as api:
        yield api


async def _until_succeeded(api: httpx.AsyncClient, release_id: str) -> dict[str, object]:
    for _ in range(300):
        response = await api.get(f"/api/releases/{release_id}/hierarchy", headers=_auth())
        if response.status_code == 200 and response.json()["release"]["state"] == "SUCCEEDED":
            body: dict[str, object] = response.json()
            return body
        await asyncio.sleep(0.1)
    pytest.fail(f"{release_id} did not succeed within 30 s (last: {response.status_code})")


async def test_api_serves_a_real_release_end_to_end(
    temporal_env: WorkflowEnvironment, client: Client, users_file: Path
) -> None:
    """A real 1x2x1x2 release: list, tree, CSV, entity and ETag all through the real reader."""
    address = temporal_env.client.service_client.config.target_host
    app = create_app(_settings(users_file, address))
    release_id = f"rel-api-{uuid.uuid4().hex[:8]}"
    plan = make_plan(waves=1, clusters=2, apps=2)
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=task_queue), running(app) as api:
        assert (await api.get("/ready")).status_code == 200
        await start_release(client, release_id, plan, FAST, task_queue=task_queue)
        tree = await _until_succeeded(api, release_id)
        assert tree["revision"]

        listed = await api.get(f"/api/releases?q={release_id[4:]}", headers=_auth())
        assert [item["id"] for item in listed.json()["items"]] == [release_id]
        assert listed.json()["items"][0]["percent_complete"] == 100.0

        rows = list(
            csv.reader(
                io.StringIO(
                    (
                        await api.get(
                            f"/api/releases/{release_id}/hierarchy?format=csv", headers=_auth()
                        )
                    ).text
                )
            )
        )
        assert len(rows) == 1 + plan.entity_count
        assert {row[rows[0].index("state")] for row in rows[1:]} == {"SUCCEEDED"}

        app_id = f"{release_id}.wave-1.cluster-c2.bundle-core.app-a2"
        entity = await api.get(f"/api/entities/{app_id}", headers=_auth())
        assert entity.json()["entity"]["kind"] == "app"
        assert entity.json()["entity"]["state"] == "SUCCEEDED"

        url = f"/api/releases/{release_id}/hierarchy"
        etag = (await api.get(url, headers=_auth())).headers["etag"]
        again = await api.get(url, headers={**_auth(), "If-None-Match": etag})
        assert again.status_code == 304

        missing = await api.get(f"/api/releases/rel-none-{uuid.uuid4().hex[:8]}", headers=_auth())
        assert missing.status_code == 404
    assert app.state.api.reader is None  # closed by the lifespan


async def test_api_starts_and_answers_503_while_temporal_is_down(users_file: Path) -> None:
    """No Temporal at start-up: /health answers, reads and /ready are 503 with Retry-After."""
    app = create_app(_settings(users_file, f"127.0.0.1:{free_port()}"))
    async with running(app) as api:
        assert (await api.get("/health")).status_code == 200
        ready = await api.get("/ready")
        read = await api.get("/api/releases", headers=_auth())
    assert (ready.status_code, read.status_code) == (503, 503)
    assert read.headers["retry-after"] == "2"
    assert read.json()["error"]["code"] == "temporal_unavailable"


async def test_api_gives_503_during_an_outage_and_recovers(
    tmp_path: Path, users_file: Path
) -> None:
    """Temporal killed mid-use: reads turn 503 (never hang); restarted: the API recovers alone."""
    server = DevServerProcess(db_file=tmp_path / "temporal.db")
    client = await server.start()
    try:
        release_id = f"rel-outage-{uuid.uuid4().hex[:8]}"
        # No worker: the release stays as started, which is all the read path needs.
        await start_release(client, release_id, make_plan(1, 1, 1), task_queue="tq-idle-api")
        app = create_app(_settings(users_file, server.address))
        url = f"/api/releases/{release_id}/hierarchy"
        async with running(app) as api:
            for _ in range(300):
                if (await api.get(url, headers=_auth())).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await api.get(url, headers=_auth())).status_code == 200

            server.stop()
            slowest = 0.0
            statuses = set()
            for path in (url, "/api/releases", f"/api/entities/{release_id}.wave-1", "/ready"):
                began = time.perf_counter()
                response = await api.get(path, headers=_auth())
                slowest = max(slowest, time.perf_counter() - began)
                statuses.add(response.status_code)
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "2"
            # The release tree and list may still be served from the reader's last good read;
            # /ready must say the truth. Never hang: each answer within the reader's budget (1 s
            # RPC or connect timeout) plus slack for a loaded machine, far below a client's 30 s.
            assert slowest < OUTAGE_ANSWER_BOUND_S, f"slowest answer {slowest:.2f} s"
            assert 503 in statuses
            assert statuses <= {200, 503}
            assert (await api.get("/ready")).status_code == 503

            await server.start()
            began = time.perf_counter()
            for _ in range(600):
                ready = await api.get("/ready")
                read = await api.get(url, headers=_auth())
                if ready.status_code == 200 and read.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            recovered = time.perf_counter() - began
            assert (ready.status_code, read.status_code) == (200, 200)
        print(f"\noutage: slowest answer {slowest:.2f} s; back {recovered:.2f} s after restart")
    finally:
        server.stop()
