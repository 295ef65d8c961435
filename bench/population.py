"""The workflows a benchmark reads: one large release, many small ones, and the state changes.

Every entity is a contract stub (`relmgr/testing/contract_stub.py`): a real workflow that carries
the visibility contract's search attributes and memo from its start, answers `get_state`, and
publishes a new state when signalled. Stubs start in milliseconds and stay running, so a
1,206-entity release is ready in seconds instead of after a simulated rollout; what the read path
sees (visibility rows, memos, the plan) is exactly what the reference workflows publish.

The large release's stubs run on a task queue that the harness's worker polls, so they take
signals (state changes, for freshness and for a live rollout's churn); the small releases and the
extra large ones sit on a queue nobody polls: visible, idle, and no load on the machine.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

from temporalio.client import Client

from bench.bench_read import entity_ids, start_release_stubs
from relmgr import ids
from relmgr.models import EntityKind, EntityState, ReleasePlan, entity_count
from relmgr.temporal.seed import simulated_plan
from relmgr.testing.contract_stub import ContractStubWorkflow, StubChange, start_stub

# Finished history dominates a real release list; a few are running, failing or waiting.
_SMALL_STATES = (
    [EntityState.SUCCEEDED] * 14
    + [EntityState.FAILED] * 2
    + [EntityState.IN_PROGRESS] * 2
    + [EntityState.CANCELLED, EntityState.PENDING]
)
_START_CONCURRENCY = 48


@dataclass(frozen=True)
class Shape:
    """waves x clusters x 1 bundle x apps."""

    waves: int
    clusters: int
    apps: int

    def plan(self) -> ReleasePlan:
        """The release plan of this shape."""
        return simulated_plan(self.waves, self.clusters, self.apps)

    @property
    def entities(self) -> int:
        """Workflows one release of this shape has."""
        clusters = self.waves * self.clusters
        return entity_count(waves=self.waves, clusters=clusters, apps=clusters * self.apps)


@dataclass
class Population:
    """What was started, and where."""

    run_tag: str
    shape: Shape
    big_release_id: str
    live_queue: str
    idle_queue: str
    all_ids: list[str] = field(default_factory=list)
    app_ids: list[str] = field(default_factory=list)
    small_release_ids: list[str] = field(default_factory=list)
    extra_large_ids: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def plan(cls, shape: Shape) -> Population:
        """Names for a new run (unique, so a run never reads another run's workflows)."""
        tag = uuid.uuid4().hex[:6]
        release_id = f"rel-bench-{tag}"
        everything = entity_ids(release_id, shape.plan())
        return cls(
            run_tag=tag,
            shape=shape,
            big_release_id=release_id,
            live_queue=f"bench-live-{tag}",
            idle_queue=f"bench-idle-{tag}",
            all_ids=everything,
            app_ids=[e for e in everything if ids.parse_entity_id(e).kind is EntityKind.APP],
        )

    async def start_big(self, client: Client) -> float:
        """Start the large release on the live queue; the seconds it took."""
        took = await start_release_stubs(
            client, self.big_release_id, self.shape.plan(), self.live_queue
        )
        self.seconds["big_release"] = round(took, 2)
        return took

    async def start_small(self, client: Client, count: int) -> float:
        """Start `count` releases of 1 wave x 1 cluster x 1 bundle x 1 app (5 workflows each)."""
        began = time.perf_counter()
        rng = random.Random(3)
        plan = simulated_plan(1, 1, 1)
        limit = asyncio.Semaphore(_START_CONCURRENCY)
        self.small_release_ids = [f"rel-bsmall-{self.run_tag}-{n:03d}" for n in range(count)]

        async def one(entity_id: str, state: EntityState) -> None:
            async with limit:
                is_release = ids.parse_entity_id(entity_id).kind is EntityKind.RELEASE
                await start_stub(
                    client,
                    entity_id,
                    task_queue=self.idle_queue,
                    state=state,
                    plan=plan if is_release else None,
                )

        starts = []
        for release_id in self.small_release_ids:
            state = rng.choice(_SMALL_STATES)
            starts += [one(entity_id, state) for entity_id in entity_ids(release_id, plan)]
        await asyncio.gather(*starts)
        took = time.perf_counter() - began
        self.seconds["small_releases"] = round(took, 2)
        return took

    async def start_extra_large(self, client: Client, count: int) -> float:
        """Start `count` more releases of the large shape, idle (for the CPU figure)."""
        began = time.perf_counter()
        self.extra_large_ids = [f"rel-bench-{self.run_tag}-x{n}" for n in range(count)]
        for release_id in self.extra_large_ids:
            await start_release_stubs(client, release_id, self.shape.plan(), self.idle_queue)
        took = time.perf_counter() - began
        self.seconds["extra_large_releases"] = round(took, 2)
        return took

    @property
    def large_release_ids(self) -> list[str]:
        """Every release of the large shape started so far: the live one, then the idle ones."""
        return [self.big_release_id, *self.extra_large_ids]

    @property
    def workflow_count(self) -> int:
        """Every workflow started so far."""
        return (
            len(self.all_ids)
            + 5 * len(self.small_release_ids)
            + self.shape.entities * len(self.extra_large_ids)
        )


class Churn:
    """A live rollout's state changes: random apps of the large release, `per_second` a second.

    Runs as a task while the API is under load, so that the tree really changes every refresh
    cycle and ETags go stale as they would during a rollout. `pause()` stops it (the freshness
    measurement needs the entities it changes to change only when it says so).
    """

    def __init__(self, client: Client, app_ids: list[str], per_second: float) -> None:
        self._client = client
        self._app_ids = app_ids
        self._period = 1.0 / per_second
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        """Begin changing states (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-churn")

    async def pause(self) -> None:
        """Stop changing states until `start()`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        rng = random.Random(7 + self.sent)
        states = [EntityState.IN_PROGRESS, EntityState.RETRYING, EntityState.SUCCEEDED]
        next_at = time.monotonic()
        while True:
            entity_id = rng.choice(self._app_ids)
            try:
                await self._client.get_workflow_handle(entity_id).signal(
                    ContractStubWorkflow.set_state,
                    StubChange(state=rng.choice(states), attempt=rng.randint(1, 3)),
                )
                self.sent += 1
            except Exception:  # a busy server drops a signal now and then: count it, go on
                self.failed += 1
            next_at += self._period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
