"""On a real dev server, during a live rollout with failures and retries, the release list shows
the counts and last change of the release's own tree, within one refresh."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError

from relmgr.errors import NotFoundError
from relmgr.models import EntityState, ReleaseQuery, StateCounts
from relmgr.reader import TemporalReader
from relmgr.settings import Settings
from relmgr.temporal.messages import DeployOptions
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.factories import make_plan

pytestmark = pytest.mark.integration

REFRESH = 0.5
SETTINGS = Settings(refresh_seconds=REFRESH, temporal_rpc_timeout=2.0, live_query_timeout=0.5)
# 1 wave x 2 clusters x 4 apps; half the attempts fail, app a1 always does (so every run has
# retries and a failure), up to 3 attempts each.
OPTIONS = DeployOptions(
    min_seconds=0.3,
    max_seconds=0.9,
    failure_rate=0.5,
    fail_apps=("a1",),
    max_attempts=3,
    retry_seconds=0.6,
    retry_backoff=1.0,
    parallelism=2,
)


@dataclass(frozen=True)
class Sample:
    """What a reader showed at one moment."""

    read_at: datetime
    state: EntityState
    apps: StateCounts
    last_changed_at: datetime | None


async def test_list_counts_equal_tree_counts_within_one_refresh_during_a_live_rollout(
    client: Client,
) -> None:
    """A list-only reader (nobody has the release open) against a tree reader, sampled ~10 Hz."""
    release_id = f"rel-truth-{uuid.uuid4().hex[:8]}"
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    listing = TemporalReader.from_client(client, SETTINGS)
    tree_reader = TemporalReader.from_client(client, SETTINGS)
    listing.start()
    tree_reader.start()
    listed: list[Sample] = []
    trees: list[Sample] = []
    query = ReleaseQuery(search=release_id.removeprefix("rel-"))

    async def sample_tree() -> None:
        tree = await tree_reader.get_release_hierarchy(release_id)
        trees.append(
            Sample(
                tree.read_at, tree.release.state, tree.release.rollup.apps, tree.last_changed_at()
            )
        )

    async def sample() -> None:
        # The list read is bracketed by two tree reads, so it always has a tree before and after.
        await sample_tree()
        page = await listing.list_releases(query)
        for summary in page.items:
            listed.append(
                Sample(page.read_at, summary.state, summary.apps, summary.last_changed_at)
            )
        await sample_tree()

    try:
        async with build_worker(client, task_queue):
            handle = await start_release(
                client, release_id, make_plan(1, 2, 4), OPTIONS, task_queue=task_queue
            )
            done = asyncio.ensure_future(handle.result())
            # Visibility is eventually consistent: wait until the new release can be read at all
            # (a not-found answer is remembered for one refresh period, so poll past it).
            for _ in range(100):
                try:
                    await tree_reader.get_release_hierarchy(release_id)
                    break
                except NotFoundError:
                    await asyncio.sleep(0.2)
            while not done.done():
                await sample()
                await asyncio.sleep(0.1)
            with pytest.raises(WorkflowFailureError):
                await done
        for _ in range(int(3 * REFRESH / 0.1)):  # the close, seen by both
            await sample()
            await asyncio.sleep(0.1)
    finally:
        await listing.aclose()
        await tree_reader.aclose()

    assert len(listed) > 20
    # Within one refresh: the list's last change is never older than what the tree showed one
    # refresh period (plus the time a list call takes) before.
    window = timedelta(seconds=REFRESH + 0.25)
    lagging = [
        (s, t)
        for s in listed
        for t in trees
        if t.read_at <= s.read_at - window
        and (t.last_changed_at or t.read_at) > (s.last_changed_at or s.read_at)
    ]
    assert lagging == [], f"{len(lagging)} list samples older than the tree a refresh before"
    # The same moment of the release (the same newest change) has the same state and counts,
    # and most list samples are one the tree reader saw too.
    same_moment = [(s, t) for s in listed for t in trees if s.last_changed_at == t.last_changed_at]
    differing = [(s, t) for s, t in same_moment if (s.state, s.apps) != (t.state, t.apps)]
    assert differing == []
    assert len({id(s) for s, _ in same_moment}) >= len(listed) // 2
    # The list saw the rollout as it went: apps retrying, and never "every app in progress"
    # while some were still pending (what the release's memo says of a running cluster).
    assert any(s.apps.retrying > 0 for s in listed)
    assert any(s.apps.pending > 0 and s.apps.in_progress > 0 for s in listed)
    final = listed[-1]
    assert final.state is EntityState.FAILED
    assert final.apps.total == 8
    assert final.apps.failed >= 2  # a1 in both clusters

    # A new reader, which never follows the closed release, shows its final memo: the same.
    fresh = TemporalReader.from_client(client, SETTINGS)
    try:
        page = await fresh.list_releases(query)
        summary = await fresh.get_release(release_id)
    finally:
        await fresh.aclose()
    assert [r.apps for r in page.items] == [final.apps]
    assert summary.apps == final.apps
