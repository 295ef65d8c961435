"""Issue 12: what keeping the release list's counts true costs Temporal, before and after.

    .venv/bin/python -m bench.list_counts [--releases 50] [--seconds 15] [--json PATH]

On its own dev server it starts `--releases` running releases of 1 wave x 2 clusters x 4 apps as
contract stubs (14 workflows each) and changes random apps' states (5 a second) while viewers
read the release list. Two readers, one after the other, on the same data:

- before: the list from the release rows' memos (what relmgr did; `follow_running=False`);
- after: the list following every running release (`follow_running=True`, the default).

For each it prints the Temporal calls of the list's cold load, the calls and rows per refresh
cycle with 1 and with 20 viewers, and how many list rows equal the release's own tree once the
changes stop (a fresh reader reads each tree). Nothing is asserted; the figures are printed and,
with `--json`, written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bench_read import changer, entity_ids, start_release_stubs
from relmgr import ids
from relmgr.models import EntityKind, ReleaseQuery
from relmgr.reader.listing import summary_of
from relmgr.reader.refresher import CachePolicy
from relmgr.reader.temporal_reader import TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.contract_stub import ContractStubWorkflow
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.factories import make_plan

VIEWERS = (1, 20)


def make_reader(client: Client, settings: Settings, *, follow: bool) -> TemporalReader:
    """A reader on `client`, following the list's running releases or not."""
    policy = replace(CachePolicy.from_settings(settings), follow_running=follow)
    return TemporalReader.from_client(client, settings, policy=policy)


async def cycle_costs(
    reader: TemporalReader,
    client: Client,
    app_ids: list[str],
    query: ReleaseQuery,
    viewers: int,
    seconds: float,
) -> dict[str, Any]:
    """Calls and rows per refresh cycle while `viewers` read the list and apps change."""
    stop = asyncio.Event()
    start_stats, start_cycles = reader.stats(), reader.cache.cycles
    rows = 0

    async def view() -> None:
        while not stop.is_set():
            await reader.list_releases(query)
            await asyncio.sleep(0.1)

    async def count_rows() -> None:
        nonlocal rows
        seen = reader.cache.last_report
        while not stop.is_set():
            report = reader.cache.last_report
            if report is not None and report is not seen:
                rows += report.rows
                seen = report
            await asyncio.sleep(0.05)

    changes = asyncio.create_task(changer(client, app_ids, stop, per_second=5))
    tasks = [asyncio.create_task(view()) for _ in range(viewers)]
    counter = asyncio.create_task(count_rows())
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, counter)
    sent = await changes
    cycles = reader.cache.cycles - start_cycles
    calls = reader.stats().temporal_calls - start_stats.temporal_calls
    return {
        "refresh_cycles": cycles,
        "temporal_calls": calls,
        "calls_per_cycle": round(calls / cycles, 3) if cycles else None,
        "rows_per_cycle": round(rows / cycles, 1) if cycles else None,
        "state_changes_sent": sent,
    }


async def measure(
    client: Client,
    settings: Settings,
    app_ids: list[str],
    prefix: str,
    *,
    seconds: float,
    follow: bool,
) -> dict[str, Any]:
    """Cold load, calls per cycle for each number of viewers, then list rows against trees."""
    query = ReleaseQuery(search=prefix, page_size=500)
    reader = make_reader(client, settings, follow=follow)
    judge = TemporalReader.from_client(client, settings)
    try:
        await reader.list_releases(query)
        figures: dict[str, Any] = {
            "cold_load_calls": reader.stats().temporal_calls,
            "watched_after_cold_load": len(reader.cache.watched_releases()),
        }
        reader.start()
        await asyncio.sleep(2 * settings.refresh_seconds)
        for viewers in VIEWERS:
            figures[f"viewers_{viewers}"] = await cycle_costs(
                reader, client, app_ids, query, viewers, seconds
            )
        # Changes stopped: let the refresher catch up, then compare every row with its tree.
        await asyncio.sleep(3 * settings.refresh_seconds)
        page = await reader.list_releases(query)
        equal = 0
        for summary in page.items:
            truth = summary_of(await judge.get_release_hierarchy(summary.id))
            equal += (summary.apps, summary.last_changed_at) == (truth.apps, truth.last_changed_at)
        figures["list_rows_equal_to_tree"] = f"{equal} of {len(page.items)}"
        return figures
    finally:
        await reader.aclose()
        await judge.aclose()


async def main(argv: list[str]) -> None:
    """Start the releases, measure before and after, print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    settings = Settings()
    prefix = f"lc{uuid.uuid4().hex[:4]}"
    plan = make_plan(1, 2, 4)
    releases = [ids.release_id(f"{prefix}-{n:03d}") for n in range(args.releases)]
    app_ids = [
        e
        for r in releases
        for e in entity_ids(r, plan)
        if ids.parse_entity_id(e).kind is EntityKind.APP
    ]
    results: dict[str, Any] = {
        "releases": args.releases,
        "workflows": args.releases * len(entity_ids(releases[0], plan)),
        "refresh_seconds": settings.refresh_seconds,
        "seconds_per_viewer_count": args.seconds,
    }
    server = DevServerProcess()
    await server.start()
    try:
        client = await connect(settings.model_copy(update={"temporal_address": server.address}))
        task_queue = f"bench-{uuid.uuid4().hex[:6]}"
        for release_id in releases:
            await start_release_stubs(client, release_id, plan, task_queue)
        print(f"dev server {server.address}: {results['workflows']} workflows started")
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[ContractStubWorkflow],
            max_concurrent_workflow_tasks=200,
        ):
            await asyncio.sleep(3)  # the worker takes every stub's first task
            for label, follow in (("before", False), ("after", True)):
                results[label] = await measure(
                    client, settings, app_ids, prefix, seconds=args.seconds, follow=follow
                )
                print(label, json.dumps(results[label]))
    finally:
        server.stop()
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
