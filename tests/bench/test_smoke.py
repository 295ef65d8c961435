"""The benchmark's read-path measurements, small and short, in every `make test`: the figures are
produced and sane (counts add up, times positive, ordered and bounded, ratios computed from the
figures they name), never judged against the targets. The long runs are `make bench`."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

from bench.bench_read import measure_cold, measure_warm, start_release_stubs
from relmgr.reader.temporal_reader import TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.seed import simulated_plan

pytestmark = pytest.mark.integration

# Bounds that only a broken measurement (or a hung server) exceeds, on any machine: a read of a
# 33-workflow release takes milliseconds; 30 s is the reader's own patience many times over.
SANE_MS = 30_000.0


@pytest.fixture
async def release_id(client: Client) -> str:
    """A 2 x 3 x 1 x 3 release (33 workflows) of contract stubs on a queue nobody polls, so that
    the read path sees exactly what it reads in the benchmark; terminated afterwards."""
    release = f"rel-smoke-{uuid.uuid4().hex[:8]}"
    await start_release_stubs(client, release, simulated_plan(2, 3, 3), task_queue="tq-smoke-idle")
    # Visibility is eventually consistent: wait until the list sees every workflow.
    for _ in range(100):
        if (await client.count_workflows(f"RelmgrReleaseId = '{release}'")).count == 33:
            return release
        await asyncio.sleep(0.1)
    pytest.fail(f"{release}: not all 33 workflows visible within 10 s")


async def _terminate(client: Client, release_id: str) -> None:
    async for row in client.list_workflows(f"RelmgrReleaseId = '{release_id}'"):
        await client.get_workflow_handle(row.id).terminate("smoke test over")


async def test_cold_and_warm_reads_are_measured_and_sane(client: Client, release_id: str) -> None:
    """Cold: raw list and hierarchy see all 33 workflows, medians positive and bounded, the ratio
    is theirs. Warm: cached reads are answered, p50 <= p99 <= max, faster than a cold read."""
    settings = Settings(refresh_seconds=0.5, temporal_rpc_timeout=5.0)
    try:
        cold = await measure_cold(client, settings, release_id, runs=2)
        reader = TemporalReader.from_client(client, settings)
        try:
            warm = await measure_warm(reader, release_id, reads=20)
        finally:
            await reader.aclose()
    finally:
        await _terminate(client, release_id)
    print(f"\nsmoke: cold {cold}\nsmoke: warm {warm}")
    assert (cold["runs"], cold["raw_list_rows"], cold["hierarchy_entities_started"]) == (2, 33, 33)
    raw, tree = cold["raw_list_ms"], cold["cold_hierarchy_ms"]
    assert 0 < raw["min"] <= raw["median"] < SANE_MS
    assert 0 < tree["min"] <= tree["median"] < SANE_MS
    assert cold["cold_over_raw_ratio"] == pytest.approx(tree["median"] / raw["median"], rel=0.01)
    hierarchy = warm["hierarchy_ms"]
    assert warm["reads"] == 20
    assert 0 < hierarchy["p50"] <= hierarchy["p99"] <= hierarchy["max"] < SANE_MS
    assert 0 < warm["release_list_ms"]["p50"] <= warm["release_list_ms"]["p99"] < SANE_MS
    # A warm read is served from the reader's snapshot; a cold one lists every workflow.
    assert hierarchy["p50"] < tree["median"]
