"""In-memory stand-ins for the read path's I/O and time: a visibility source and a clock.

`FakeVisibility` keeps workflows as real `WorkflowExecutionInfo` protobufs (payloads encoded as
the server sends them) and answers the three query shapes relmgr builds, so tests exercise the
row decoder and the query builder along with the cache.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo

from relmgr import ids
from relmgr.errors import LiveStateUnavailableError, NotFoundError, TemporalUnavailableError
from relmgr.hierarchy import plan_children
from relmgr.models import (
    Entity,
    EntityState,
    ReleaseListPage,
    ReleasePlan,
    ReleaseQuery,
    StateCounts,
)
from relmgr.reader.protocol import ReaderStats
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.reader.rows import VisibilityRow, row_from_info
from relmgr.temporal.contract import MEMO_DETAIL, MEMO_PLAN, EntityMemo
from relmgr.testing.factories import make_hierarchy, make_plan
from relmgr.testing.fake_reader import FakeReader

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
Status = WorkflowExecutionStatus


class FakeClock:
    """A clock that moves only when told to (or when something sleeps on it)."""

    def __init__(self, start: datetime = T0) -> None:
        self.wall = start
        self.mono = 1000.0
        self.sleeps: list[float] = []
        self._slept: asyncio.Event | None = None

    def now(self) -> datetime:
        """The fake UTC time."""
        return self.wall

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the pause, move time, let other tasks run."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        if self._slept is not None:
            self._slept.set()
        await asyncio.sleep(0)

    async def until_slept(self, count: int) -> None:
        """Wait (in real time) until something has slept `count` times on this clock."""
        while len(self.sleeps) < count:
            self._slept = asyncio.Event()
            await self._slept.wait()


def _payload(value: object, *, attribute_type: str | None = None) -> Payload:
    metadata = {"encoding": b"json/plain"}
    if attribute_type is not None:
        metadata["type"] = attribute_type.encode()
    return Payload(metadata=metadata, data=json.dumps(value, separators=(",", ":")).encode())


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def workflow_info(
    entity_id: str,
    state: EntityState | None,
    *,
    started_at: datetime = T0,
    changed_at: datetime | None = None,
    status: int = Status.WORKFLOW_EXECUTION_STATUS_RUNNING,
    closed_at: datetime | None = None,
    run_id: str = "run-1",
    memo: EntityMemo | None = None,
    plan: ReleasePlan | None = None,
) -> WorkflowExecutionInfo:
    """A visibility record as the server returns it for a contract-following workflow."""
    ref = ids.parse_entity_id(entity_id)
    info = WorkflowExecutionInfo(status=status)  # type: ignore[arg-type]
    info.execution.workflow_id = entity_id
    info.execution.run_id = run_id
    info.start_time.CopyFrom(_timestamp(started_at))
    if closed_at is not None:
        info.close_time.CopyFrom(_timestamp(closed_at))
    fields = info.search_attributes.indexed_fields
    fields["RelmgrKind"].CopyFrom(_payload(ref.kind.value, attribute_type="Keyword"))
    fields["RelmgrReleaseId"].CopyFrom(_payload(ref.release_id, attribute_type="Keyword"))
    fields["RelmgrParentId"].CopyFrom(_payload(ref.parent_id or "", attribute_type="Keyword"))
    if state is not None:
        fields["RelmgrState"].CopyFrom(_payload(state.value, attribute_type="Keyword"))
    stamp = (changed_at or started_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields["RelmgrLastChange"].CopyFrom(_payload(stamp, attribute_type="Datetime"))
    if memo is not None:
        info.memo.fields[MEMO_DETAIL].CopyFrom(_payload(memo.model_dump(mode="json")))
    if plan is not None:
        info.memo.fields[MEMO_PLAN].CopyFrom(_payload(plan.model_dump(mode="json")))
    return info


class FakeVisibility:
    """A `VisibilitySource` over in-memory workflow records, counting every call."""

    def __init__(self) -> None:
        self.workflows: dict[str, WorkflowExecutionInfo] = {}
        self.queries: list[str] = []
        self.describes: list[str] = []
        self.live: dict[str, Entity] = {}
        self.fail_with: Exception | None = None
        # When set, list calls wait for it (to hold many readers on one call in flight).
        self.gate: asyncio.Event | None = None
        # List calls running now, and the most that ever ran at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self._stats = ReaderStats()

    # ---- building data ---------------------------------------------------------------------

    def put(self, info: WorkflowExecutionInfo) -> None:
        """Add or replace a workflow record."""
        self.workflows[info.execution.workflow_id] = info

    def add_release(
        self,
        release_id: str,
        plan: ReleasePlan,
        *,
        state: EntityState = EntityState.IN_PROGRESS,
        started_at: datetime = T0,
        children: bool = True,
    ) -> list[str]:
        """A release row (with plan memo) and, if `children`, a running row per planned entity."""
        self.put(
            workflow_info(
                release_id,
                state,
                started_at=started_at,
                memo=EntityMemo(
                    attempt=0,
                    current_wave=1,
                    waves_total=len(plan.waves),
                    apps=StateCounts(in_progress=plan.app_count),
                ),
                plan=plan,
            )
        )
        planned = [c for kids in plan_children(release_id, plan).values() for c in kids]
        if children:
            for entity_id in planned:
                self.put(workflow_info(entity_id, state, started_at=started_at))
        return planned

    def change(
        self,
        entity_id: str,
        state: EntityState,
        at: datetime,
        *,
        attempt: int = 1,
        last_error: str | None = None,
    ) -> None:
        """A workflow publishing a new state at `at`."""
        old = self.workflows[entity_id]
        started = old.start_time.ToDatetime(tzinfo=UTC)
        memo = EntityMemo(attempt=attempt, last_error=last_error)
        info = workflow_info(entity_id, state, started_at=started, changed_at=at, memo=memo)
        if MEMO_PLAN in old.memo.fields:
            info.memo.fields[MEMO_PLAN].CopyFrom(old.memo.fields[MEMO_PLAN])
        self.put(info)

    # ---- the VisibilitySource protocol ------------------------------------------------------

    async def list_rows(self, query: str, *, delta: bool = False) -> list[VisibilityRow]:
        """Answer the three query shapes relmgr builds."""
        assert delta == query.startswith("("), "deltas, and only deltas, are marked as such"
        self.queries.append(query)
        self._stats = self._stats.model_copy(update={"list_calls": self._stats.list_calls + 1})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if self.fail_with is not None:
            raise self.fail_with
        matches = [info for info in self.workflows.values() if _matches(query, info)]
        return [row for row in map(row_from_info, matches) if row is not None]

    async def describe_row(self, workflow_id: str) -> VisibilityRow:
        """One record, or NotFoundError."""
        self.describes.append(workflow_id)
        self._stats = self._stats.model_copy(
            update={"describe_calls": self._stats.describe_calls + 1}
        )
        if self.fail_with is not None:
            raise self.fail_with
        info = self.workflows.get(workflow_id)
        row = row_from_info(info) if info is not None else None
        if row is None:
            raise NotFoundError(f"{workflow_id} not found in Temporal", entity_id=workflow_id)
        return row

    async def query_state(self, workflow_id: str) -> Entity:
        """The live state set in `self.live`, else as if no worker answered."""
        self._stats = self._stats.model_copy(update={"query_calls": self._stats.query_calls + 1})
        if self.fail_with is not None:
            raise self.fail_with
        if workflow_id not in self.live:
            raise LiveStateUnavailableError("no worker answered", entity_id=workflow_id)
        return self.live[workflow_id]

    async def ping(self) -> None:
        """Fails exactly when `fail_with` is set."""
        self._stats = self._stats.model_copy(update={"count_calls": self._stats.count_calls + 1})
        if self.fail_with is not None:
            raise self.fail_with

    def stats(self) -> ReaderStats:
        """The calls made so far."""
        return self._stats


DOWN = TemporalUnavailableError("Temporal is unavailable while listing workflows: refused")

_RELEASE = re.compile(r"^RelmgrReleaseId = '([a-z0-9.-]+)'$")
_LIST = "RelmgrKind = 'release'"
_DELTA = re.compile(
    r"^\(RelmgrLastChange >= '(?P<a>[^']+)' OR CloseTime >= '(?P<b>[^']+)'\) AND \((?P<scope>.+)\)$"
)
_IN = re.compile(r"RelmgrReleaseId IN \(([^)]*)\)")
_SEVERAL = re.compile(r"^RelmgrReleaseId IN \(([^)]*)\)$")


def _matches(query: str, info: WorkflowExecutionInfo) -> bool:
    kind = json.loads(info.search_attributes.indexed_fields["RelmgrKind"].data)
    release = json.loads(info.search_attributes.indexed_fields["RelmgrReleaseId"].data)
    if query == _LIST:
        return bool(kind == "release")
    found = _RELEASE.match(query)
    if found:
        return bool(release == found.group(1))
    several = _SEVERAL.match(query)
    if several:
        return release in {quoted.strip().strip("'") for quoted in several.group(1).split(",")}
    delta = _DELTA.match(query)
    if delta is None:
        raise AssertionError(f"the fake does not understand {query!r}")
    since = datetime.fromisoformat(delta.group("a"))
    assert delta.group("a") == delta.group("b")
    scope = delta.group("scope")
    in_scope = (_LIST in scope and kind == "release") or any(
        release == quoted.strip().strip("'")
        for listed in _IN.findall(scope)
        for quoted in listed.split(",")
    )
    changed = datetime.fromisoformat(
        json.loads(info.search_attributes.indexed_fields["RelmgrLastChange"].data)
    )
    closed = info.close_time.ToDatetime(tzinfo=UTC) if info.HasField("close_time") else None
    return in_scope and (changed >= since or (closed is not None and closed >= since))


def entity_ids_of(release_id: str, plan: ReleasePlan) -> list[str]:
    """The release and every entity its plan names, parents first."""
    return [release_id] + [c for kids in plan_children(release_id, plan).values() for c in kids]


def cache_over(
    *releases: str, policy: CachePolicy
) -> tuple[SnapshotCache, FakeVisibility, FakeClock]:
    """A cache over a fake visibility holding these releases (1 wave x 2 clusters x 2 apps)."""
    source = FakeVisibility()
    for release_id in releases:
        source.add_release(release_id, make_plan(waves=1, clusters=2, apps=2))
    clock = FakeClock(T0 + timedelta(minutes=5))
    return SnapshotCache(source, policy, clock), source, clock


class ShiftingReader(FakeReader):
    """A release starts after the first page is read: every later page shifts down by one."""

    async def list_releases(self, query: ReleaseQuery) -> ReleaseListPage:
        page = await super().list_releases(query)
        if query.page == 1:
            self.put(make_hierarchy("zz-new", waves=1, clusters=1, apps=1, started_at=T0))
        return page
