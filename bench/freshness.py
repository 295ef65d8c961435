"""Freshness through the API: from a workflow's state change to the API's hierarchy showing it.

Each sample picks an app of the large release, waits a random part of a refresh period (so the
samples fall evenly across the refresher's cycle), signals the stub to a new state with a unique
attempt number, and polls the release's hierarchy with `If-None-Match` every `poll_seconds` until
that entity shows the new state and attempt. The clock runs from just before the signal is sent.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
from temporalio.client import Client

from bench.stats import load_average, percentile
from relmgr.models import EntityState, ReleaseHierarchy
from relmgr.testing.contract_stub import ContractStubWorkflow, StubChange

SAMPLE_TIMEOUT_SECONDS = 30.0
# Attempt numbers of freshness changes start here, far above the churn's (1-3).
ATTEMPT_BASE = 1000


def next_state(current: EntityState) -> EntityState:
    """A state different from `current`."""
    return EntityState.RETRYING if current is not EntityState.RETRYING else EntityState.SUCCEEDED


class TreeWatcher:
    """Polls one release's hierarchy like a careful client: `If-None-Match`, parse only on 200."""

    def __init__(self, http: httpx.AsyncClient, release_id: str) -> None:
        self._http = http
        self._path = f"/api/releases/{release_id}/hierarchy"
        self._etag: str | None = None
        self.tree: ReleaseHierarchy | None = None
        self.errors = 0

    async def poll(self) -> ReleaseHierarchy | None:
        """The newest tree (unchanged on 304); None until the first 200."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        response = await self._http.get(self._path, headers=headers)
        if response.status_code == 200:
            self.tree = ReleaseHierarchy.model_validate_json(response.content)
            self._etag = response.headers.get("etag")
        elif response.status_code != 304:
            self.errors += 1
        return self.tree


async def api_freshness(
    *,
    temporal: Client,
    http: httpx.AsyncClient,
    release_id: str,
    app_ids: list[str],
    samples: int,
    refresh_seconds: float,
    poll_seconds: float = 0.05,
) -> dict[str, Any]:
    """p50/p95/max seconds from a state change to the API's hierarchy showing it."""
    rng = random.Random(11)
    watcher = TreeWatcher(http, release_id)
    latencies: list[float] = []
    load_before = load_average()
    for number in range(samples):
        entity_id = app_ids[(number * 37) % len(app_ids)]
        tree = await watcher.poll()
        node = tree.find(entity_id) if tree is not None else None
        if node is None:
            raise RuntimeError(f"{entity_id} is not in the API's tree of {release_id}")
        target, attempt = next_state(node.state), ATTEMPT_BASE + number
        await asyncio.sleep(rng.uniform(0, refresh_seconds))
        began = time.perf_counter()
        await temporal.get_workflow_handle(entity_id).signal(
            ContractStubWorkflow.set_state, StubChange(state=target, attempt=attempt)
        )
        while True:
            tree = await watcher.poll()
            node = tree.find(entity_id) if tree is not None else None
            if node is not None and node.state is target and node.attempt == attempt:
                break
            if time.perf_counter() - began > SAMPLE_TIMEOUT_SECONDS:
                raise RuntimeError(f"the API did not show the change of {entity_id} in 30 s")
            await asyncio.sleep(poll_seconds)
        latencies.append(time.perf_counter() - began)
    return {
        "samples": len(latencies),
        "refresh_seconds": refresh_seconds,
        "poll_seconds": poll_seconds,
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
        "poll_errors": watcher.errors,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
