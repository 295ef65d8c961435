"""Benchmark of the read path on a fresh dev server; prints the figures, writes them as JSON.

    .venv/bin/python -m bench read-path [results.json] [--many 10] [--fanout-runs 1]

(`python -m bench` is the one entry point; `read-path` runs this module's `main`, and the
harness reuses its cold, raw-list and fan-out measurements.)

On its own dev server (a subprocess, so that its CPU can be measured) it starts a release of
5 waves x 20 clusters x 1 bundle x 10 apps (1,206 workflows) as contract stubs (each started with
the contract's search attributes and memo; a worker runs them so they answer `get_state` and
change state on a signal), then measures:

- cold full hierarchy (a new reader, one list) against the raw SDK `list_workflows` of the same
  workflows, interleaved, and against the fan-out baseline (`get_state` on every entity);
- a warm read from the cache;
- Temporal calls per refresh cycle with 1 and with 50 concurrent readers;
- freshness: from a state change (signal sent) to the change seen through the reader, p50/p95;
- with `--many N`: the dev server's CPU while N large releases are watched, against idle.

No figure is asserted; they are printed and written for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench.fanout import fanout_hierarchy
from relmgr import ids
from relmgr.hierarchy import plan_children
from relmgr.models import EntityKind, EntityState, ReleasePlan, ReleaseQuery
from relmgr.reader.temporal_reader import TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.temporal.seed import simulated_plan
from relmgr.testing.contract_stub import (
    ContractStubWorkflow,
    StubChange,
    start_stub,
)
from relmgr.testing.devserver_process import DevServerProcess


def entity_ids(release_id: str, plan: ReleasePlan) -> list[str]:
    """The release and every planned entity, parents first."""
    children = plan_children(release_id, plan)
    return [release_id] + [child for kids in children.values() for child in kids]


async def start_release_stubs(
    client: Client, release_id: str, plan: ReleasePlan, task_queue: str, concurrency: int = 48
) -> float:
    """Start one stub per entity; returns the seconds it took."""
    began = time.perf_counter()
    limit = asyncio.Semaphore(concurrency)

    async def one(entity_id: str) -> None:
        async with limit:
            is_release = ids.parse_entity_id(entity_id).kind is EntityKind.RELEASE
            await start_stub(
                client, entity_id, task_queue=task_queue, plan=plan if is_release else None
            )

    await asyncio.gather(*(one(e) for e in entity_ids(release_id, plan)))
    return time.perf_counter() - began


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for printing."""
    return round(seconds * 1000, 4)


def percentile(values: list[float], share: float) -> float:
    """The `share` (0-1) percentile, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Seconds one call took, and its result."""
    began = time.perf_counter()
    result = await call()
    return time.perf_counter() - began, result


async def raw_list(client: Client, release_id: str) -> int:
    """The raw SDK list of every workflow of the release (the yardstick)."""
    count = 0
    async for _ in client.list_workflows(f"RelmgrReleaseId = '{release_id}'", page_size=1000):
        count += 1
    return count


async def measure_cold(
    client: Client, settings: Settings, release_id: str, runs: int
) -> dict[str, Any]:
    """Raw list vs cold hierarchy, interleaved so that both see the same server."""
    raw_times: list[float] = []
    cold_times: list[float] = []
    rows = started = 0
    for _ in range(runs):
        seconds, rows = await timed(lambda: raw_list(client, release_id))
        raw_times.append(seconds)
        reader = TemporalReader.from_client(client, settings)
        seconds, tree = await timed(lambda r=reader: r.get_release_hierarchy(release_id))  # type: ignore[misc]
        cold_times.append(seconds)
        started = sum(1 for node in tree.entities() if node.started)
        await reader.aclose()
    raw_median = statistics.median(raw_times)
    cold_median = statistics.median(cold_times)
    return {
        "runs": runs,
        "raw_list_rows": rows,
        "hierarchy_entities_started": started,
        "raw_list_ms": {"median": ms(raw_median), "min": ms(min(raw_times))},
        "cold_hierarchy_ms": {"median": ms(cold_median), "min": ms(min(cold_times))},
        "cold_over_raw_ratio": round(cold_median / raw_median, 3),
    }


async def measure_warm(reader: TemporalReader, release_id: str, reads: int) -> dict[str, Any]:
    """Warm reads of the tree and of a release list page."""
    await reader.get_release_hierarchy(release_id)
    await reader.list_releases(ReleaseQuery())
    tree_times: list[float] = []
    list_times: list[float] = []
    for _ in range(reads):
        seconds, _tree = await timed(lambda: reader.get_release_hierarchy(release_id))
        tree_times.append(seconds)
        seconds, _page = await timed(lambda: reader.list_releases(ReleaseQuery()))
        list_times.append(seconds)
    return {
        "reads": reads,
        "hierarchy_ms": {
            "p50": ms(percentile(tree_times, 0.5)),
            "p99": ms(percentile(tree_times, 0.99)),
            "max": ms(max(tree_times)),
        },
        "release_list_ms": {
            "p50": ms(percentile(list_times, 0.5)),
            "p99": ms(percentile(list_times, 0.99)),
        },
    }


async def changer(
    client: Client, app_ids: list[str], stop: asyncio.Event, per_second: float
) -> int:
    """Change random apps' states until `stop`; returns how many changes were sent."""
    rng = random.Random(7)
    sent = 0
    states = [EntityState.IN_PROGRESS, EntityState.RETRYING, EntityState.SUCCEEDED]
    while not stop.is_set():
        entity_id = rng.choice(app_ids)
        handle = client.get_workflow_handle(entity_id)
        await handle.signal(
            ContractStubWorkflow.set_state, StubChange(state=rng.choice(states), attempt=2)
        )
        sent += 1
        await asyncio.sleep(1 / per_second)
    return sent


async def measure_calls_per_cycle(
    client: Client,
    settings: Settings,
    release_id: str,
    app_ids: list[str],
    readers: int,
    seconds: float,
) -> dict[str, Any]:
    """Temporal calls per refresh cycle while `readers` tasks read the tree as fast as they can."""
    reader = TemporalReader.from_client(client, settings)
    await reader.get_release_hierarchy(release_id)
    await reader.list_releases(ReleaseQuery())
    reader.start()
    await asyncio.sleep(settings.refresh_seconds * 2)  # settle into the steady state
    stop = asyncio.Event()
    before = reader.stats()
    cycles_before = reader.cache.cycles
    reads = 0

    async def read_loop() -> None:
        nonlocal reads
        while not stop.is_set():
            await reader.get_release_hierarchy(release_id)
            await reader.list_releases(ReleaseQuery())
            reads += 1
            await asyncio.sleep(0.02)

    changes = asyncio.create_task(changer(client, app_ids, stop, per_second=5))
    loops = [asyncio.create_task(read_loop()) for _ in range(readers)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*loops)
    sent = await changes
    after = reader.stats()
    cycles = reader.cache.cycles - cycles_before
    await reader.aclose()
    calls = after.temporal_calls - before.temporal_calls
    return {
        "readers": readers,
        "seconds": seconds,
        "reads": reads,
        "state_changes_sent": sent,
        "refresh_cycles": cycles,
        "temporal_calls": calls,
        "list_calls": after.list_calls - before.list_calls,
        "calls_per_cycle": round(calls / cycles, 3) if cycles else None,
        "watched": "1 release + the release list",
    }


async def measure_freshness(
    client: Client, settings: Settings, release_id: str, app_ids: list[str], samples: int
) -> dict[str, Any]:
    """Seconds from sending a state change to seeing it through the reader."""
    reader = TemporalReader.from_client(client, settings)
    await reader.get_release_hierarchy(release_id)
    reader.start()
    rng = random.Random(11)
    latencies: list[float] = []
    for number in range(samples):
        entity_id = app_ids[number % len(app_ids)]
        tree = await reader.get_release_hierarchy(release_id)
        node = tree.find(entity_id)
        assert node is not None
        target = (
            EntityState.RETRYING
            if node.state is not EntityState.RETRYING
            else EntityState.SUCCEEDED
        )
        # Random phase against the refresh cycle, so the samples cover it evenly.
        await asyncio.sleep(rng.uniform(0, settings.refresh_seconds))
        began = time.perf_counter()
        await client.get_workflow_handle(entity_id).signal(
            ContractStubWorkflow.set_state, StubChange(state=target, attempt=number + 2)
        )
        while True:
            tree = await reader.get_release_hierarchy(release_id)
            node = tree.find(entity_id)
            if node is not None and node.state is target and node.attempt == number + 2:
                break
            if time.perf_counter() - began > 30:
                raise RuntimeError(f"change of {entity_id} not seen within 30 s")
            await asyncio.sleep(0.01)
        latencies.append(time.perf_counter() - began)
    await reader.aclose()
    return {
        "samples": samples,
        "refresh_seconds": settings.refresh_seconds,
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
    }


async def measure_fanout(client: Client, release_id: str, runs: int) -> dict[str, Any]:
    """The original plan's fan-out: `get_state` on every entity with asyncio.gather."""
    times: list[float] = []
    answered = 0
    for _ in range(runs):
        seconds, tree = await timed(
            lambda: fanout_hierarchy(client, release_id, query_timeout=60.0)
        )
        times.append(seconds)
        answered = sum(1 for node in tree.entities() if node.started)
    return {
        "runs": runs,
        "entities_answered": answered,
        "fanout_ms": {"median": ms(statistics.median(times)), "min": ms(min(times))},
    }


async def measure_many(
    server: DevServerProcess,
    client: Client,
    settings: Settings,
    release_ids: list[str],
    app_ids: list[str],
    seconds: float,
    entities_per_release: int,
) -> dict[str, Any]:
    """Server CPU with no reader, then with every release watched (steady state, with changes)."""
    stop = asyncio.Event()
    changes = asyncio.create_task(changer(client, app_ids, stop, per_second=5))
    cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    idle_cores = (server.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)

    reader = TemporalReader.from_client(client, settings)
    began = time.perf_counter()
    for release_id in release_ids:
        await reader.get_release_hierarchy(release_id)
    cold_all = time.perf_counter() - began
    await reader.list_releases(ReleaseQuery())
    reader.start()
    stop_readers = asyncio.Event()

    async def keep_reading() -> None:
        # Readers keep every release watched (the TTL would otherwise drop them).
        while not stop_readers.is_set():
            for release_id in release_ids:
                await reader.get_release_hierarchy(release_id)
            await asyncio.sleep(0.5)

    reading = asyncio.create_task(keep_reading())
    await asyncio.sleep(settings.refresh_seconds * 2)
    before = reader.stats()
    cycles_before = reader.cache.cycles
    cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    watched_cores = (server.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
    after = reader.stats()
    cycles = reader.cache.cycles - cycles_before
    stop_readers.set()
    stop.set()
    await reading
    await changes
    await reader.aclose()
    return {
        "releases_watched": len(release_ids),
        "entities_watched": len(release_ids) * entities_per_release,
        "cold_load_all_s": round(cold_all, 3),
        "seconds": seconds,
        "server_cores_idle_with_changes": round(idle_cores, 3),
        "server_cores_watched": round(watched_cores, 3),
        "server_cores_added_by_reader": round(watched_cores - idle_cores, 3),
        "refresh_cycles": cycles,
        "calls_per_cycle": round((after.temporal_calls - before.temporal_calls) / cycles, 3)
        if cycles
        else None,
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """The figures as JSON (synchronous: the event loop has nothing else to do by then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


async def main(argv: list[str]) -> None:
    """Run every measurement and print/write the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench read-path", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("output", nargs="?", default="bench/results.json")
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--warm-reads", type=int, default=2000)
    parser.add_argument("--fanout-runs", type=int, default=1)
    parser.add_argument("--freshness-samples", type=int, default=40)
    parser.add_argument("--cycle-seconds", type=float, default=15.0)
    parser.add_argument(
        "--many", type=int, default=10, help="large releases for the CPU figure; 0 skips"
    )
    parser.add_argument("--many-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)

    settings = Settings()
    plan = simulated_plan(args.waves, args.clusters, args.apps)
    release_id = f"rel-bench-{uuid.uuid4().hex[:6]}"
    all_ids = entity_ids(release_id, plan)
    app_ids = [e for e in all_ids if ids.parse_entity_id(e).kind is EntityKind.APP]
    results: dict[str, Any] = {
        "release": {"id": release_id, "entities": len(all_ids), "shape": vars(args)},
        "settings": {
            "refresh_seconds": settings.refresh_seconds,
            "delta_window_seconds": settings.delta_window_seconds,
            "temporal_rpc_timeout": settings.temporal_rpc_timeout,
        },
    }
    server = DevServerProcess()
    await server.start()
    # The production client: bounded retries, pydantic converter.
    client = await connect(settings.model_copy(update={"temporal_address": server.address}))
    print(
        f"dev server {server.address} (pid {server.pid}); release {release_id}: "
        f"{len(all_ids)} workflows"
    )
    try:
        task_queue = f"bench-{uuid.uuid4().hex[:6]}"
        results["start_seconds"] = round(
            await start_release_stubs(client, release_id, plan, task_queue), 2
        )
        print(f"started {len(all_ids)} stubs in {results['start_seconds']} s")

        # Cold vs raw first, with no worker running, so nothing else competes for the 2 cores.
        results["cold"] = await measure_cold(client, settings, release_id, args.cold_runs)
        print("cold:", json.dumps(results["cold"]))

        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[ContractStubWorkflow],
            max_concurrent_workflow_tasks=200,
        ):
            # Let the worker take every stub's first task before timing anything else.
            await asyncio.sleep(5)
            results["fanout"] = await measure_fanout(client, release_id, args.fanout_runs)
            results["fanout"]["fanout_over_cold_ratio"] = round(
                results["fanout"]["fanout_ms"]["median"]
                / results["cold"]["cold_hierarchy_ms"]["median"],
                1,
            )
            print("fanout:", json.dumps(results["fanout"]))

            warm_reader = TemporalReader.from_client(client, settings)
            results["warm"] = await measure_warm(warm_reader, release_id, args.warm_reads)
            await warm_reader.aclose()
            print("warm:", json.dumps(results["warm"]))

            results["calls_per_cycle"] = [
                await measure_calls_per_cycle(
                    client, settings, release_id, app_ids, readers, args.cycle_seconds
                )
                for readers in (1, 50)
            ]
            print("calls per cycle:", json.dumps(results["calls_per_cycle"]))

            results["freshness"] = await measure_freshness(
                client, settings, release_id, app_ids, args.freshness_samples
            )
            print("freshness:", json.dumps(results["freshness"]))

            if args.many > 0:
                others = [f"rel-bench-{uuid.uuid4().hex[:6]}" for _ in range(args.many - 1)]
                began = time.perf_counter()
                for other in others:
                    # On a queue no worker polls: visible, idle, and no load on the 2 cores.
                    await start_release_stubs(client, other, plan, f"{task_queue}-idle")
                print(f"started {len(others)} more releases in {time.perf_counter() - began:.1f} s")
                results["many"] = await measure_many(
                    server,
                    client,
                    settings,
                    [release_id, *others],
                    app_ids,
                    args.many_seconds,
                    len(all_ids),
                )
                print("many:", json.dumps(results["many"]))
    finally:
        server.stop()
    write_results(Path(args.output), results)
    print(f"wrote {args.output}")
