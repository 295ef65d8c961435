"""The original plan's reader, kept ONLY as the benchmark's baseline: nothing user-facing uses it.

It reads a release the naive way: `describe()` the release for its plan, then the `get_state`
query on every planned entity at once with `asyncio.gather`. Each query makes a worker replay the
workflow (closed ones from their whole history), so on a 1,206-entity release it costs seconds of
both cores where one visibility list costs half a second, and it hangs on every query when no
worker runs; hence the bounded per-query timeout here, which the plan did not have.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from relmgr import ids
from relmgr.errors import NotFoundError
from relmgr.hierarchy import build_hierarchy, plan_children
from relmgr.models import Entity, ReleaseHierarchy, ReleasePlan
from relmgr.temporal.client import bounded, temporal_errors
from relmgr.temporal.contract import MEMO_PLAN, QUERY_GET_STATE


async def fanout_hierarchy(
    client: Client,
    release_id: str,
    *,
    query_timeout: float = 10.0,
    concurrency: int | None = None,
) -> ReleaseHierarchy:
    """The release tree from one `get_state` query per entity (the baseline to beat).

    A query that fails or takes longer than `query_timeout` seconds leaves its entity out (shown
    as a plan placeholder). `concurrency` caps queries in flight; None is the plan's unbounded
    `gather`.
    """
    ids.validate_release_id(release_id)
    description = await bounded(
        client.get_workflow_handle(release_id).describe(
            rpc_timeout=timedelta(seconds=query_timeout)
        ),
        within=query_timeout,
        entity_id=release_id,
        what=f"describing {release_id}",
    )
    memo = await description.memo()
    if MEMO_PLAN not in memo:
        raise NotFoundError(f"release {release_id} has no plan memo", entity_id=release_id)
    plan = ReleasePlan.model_validate(memo[MEMO_PLAN])
    entity_ids = [release_id] + [
        child for kids in plan_children(release_id, plan).values() for child in kids
    ]
    limit = asyncio.Semaphore(concurrency) if concurrency else None

    async def one(entity_id: str) -> Entity | None:
        handle = client.get_workflow_handle(entity_id)
        try:
            with temporal_errors(entity_id=entity_id, what=f"querying {entity_id}"):
                call = handle.query(
                    QUERY_GET_STATE,
                    result_type=Entity,
                    rpc_timeout=timedelta(seconds=query_timeout),
                )
                if limit is None:
                    result = await asyncio.wait_for(call, query_timeout + 0.5)
                else:
                    async with limit:
                        result = await asyncio.wait_for(call, query_timeout + 0.5)
        except Exception:  # the baseline shows what it got; a failed query is a placeholder
            return None
        return result if isinstance(result, Entity) else None

    results = await asyncio.gather(*(one(entity_id) for entity_id in entity_ids))
    records = {entity.id: entity for entity in results if entity is not None}
    return build_hierarchy(release_id, plan, records, read_at=datetime.now(UTC))
