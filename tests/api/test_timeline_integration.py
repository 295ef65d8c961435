"""The timeline route on the production reader against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from relmgr.api import create_app
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.factories import make_plan
from tests.api.test_integration import _auth, _settings, running

pytestmark = pytest.mark.integration

# Slow enough that every duration is measurably above zero.
PACED = DeployOptions(min_seconds=0.1, max_seconds=0.2, retry_seconds=0.2, parallelism=1)
# An unusual shape, so that no other test's release counts as "of the same shape".
PLAN = make_plan(waves=2, clusters=3, apps=1)


async def _timeline_when(
    api: httpx.AsyncClient, release_id: str, done: Any, what: str
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(300):
        response = await api.get(f"/api/releases/{release_id}/timeline", headers=_auth())
        if response.status_code == 200:
            body = response.json()
            if done(body):
                return body
        await asyncio.sleep(0.1)
    pytest.fail(f"{release_id}: {what} not seen within 30 s (last: {body})")


def _at(value: object) -> datetime:
    assert isinstance(value, str), f"expected a time, got {value!r}"
    return datetime.fromisoformat(value)


async def test_timeline_times_are_temporals_and_a_later_release_is_estimated_from_it(
    temporal_env: WorkflowEnvironment, client: Client, users_file: Path
) -> None:
    """Every start and finish equals Temporal's own start and close time (describe()); a later
    release of the same shape that has not run yet is estimated from the first one's duration."""
    address = temporal_env.client.service_client.config.target_host
    app = create_app(_settings(users_file, address))
    first = f"rel-tl-{uuid.uuid4().hex[:8]}"
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=task_queue), running(app) as api:
        await start_release(client, first, PLAN, PACED, task_queue=task_queue)
        body = await _timeline_when(
            api, first, lambda b: b["release"]["state"] == "SUCCEEDED", "success"
        )
        bars = [body["release"]]
        for wave in body["waves"]:
            bars.append(wave)
            for cluster in wave["clusters"]:
                bars += [cluster, cluster["bundle"]]
        assert len(bars) == 1 + 2 + 2 * 6
        for bar in bars:
            described = await client.get_workflow_handle(bar["id"]).describe()
            started, finished = _at(bar["started_at"]), _at(bar["finished_at"])
            # Visibility and describe() report the same timestamps, to the microsecond.
            assert started == described.start_time, bar["id"]
            assert described.close_time is not None
            assert finished == described.close_time, bar["id"]
            assert bar["duration_seconds"] == (finished - started).total_seconds()
            assert bar["duration_seconds"] > 0
        assert body["estimate"] == "finished"
        assert body["estimated_finish_at"] is None
        first_seconds = body["release"]["duration_seconds"]

        # No worker listens on this queue: the second release stays as started, nothing done.
        second = f"rel-tl-{uuid.uuid4().hex[:8]}"
        await start_release(client, second, PLAN, PACED, task_queue=f"tq-idle-{second}")
        later = await _timeline_when(
            api, second, lambda b: b["similar_releases"] >= 1, "the earlier release"
        )
    assert later["estimate"] == "estimated"
    assert (later["pace_samples"], later["similar_releases"]) == (0, 1)
    now = _at(later["now"])
    # All of its critical path is left, at the one pace the first release gives: its duration,
    # widened by a quarter each way for a single sample.
    middle = _at(later["estimated_finish_at"])
    low, high = _at(later["estimated_finish_low"]), _at(later["estimated_finish_high"])
    assert abs((middle - now).total_seconds() - first_seconds) < 1e-3
    assert abs((low - now).total_seconds() - 0.75 * first_seconds) < 1e-3
    assert abs((high - now).total_seconds() - 1.25 * first_seconds) < 1e-3
