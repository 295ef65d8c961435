"""Domain models: entity kinds and states, release plans, the release tree and its roll-ups.

Pure data, no I/O. Every model is frozen and refuses unknown fields, so a schema change is a
deliberate act; new fields come with defaults so that old payloads keep parsing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EntityKind(StrEnum):
    """The five levels of a release, top down."""

    RELEASE = "release"
    WAVE = "wave"
    CLUSTER = "cluster"
    BUNDLE = "bundle"
    APP = "app"


class EntityState(StrEnum):
    """The life of every entity; RETRYING is an app waiting to try its deploy again.

    AWAITING_APPROVAL is a gated wave (and its release) waiting for an operator's approval;
    PAUSED is a release an operator paused (its running wave finishes, no new wave starts).
    """

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    RETRYING = "RETRYING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the entity can no longer change."""
        return self in _TERMINAL

    @property
    def needs_attention(self) -> bool:
        """True for the states an operator should look at."""
        return self in (EntityState.FAILED, EntityState.RETRYING)


_TERMINAL = frozenset({EntityState.SUCCEEDED, EntityState.FAILED, EntityState.CANCELLED})


class Control(StrEnum):
    """The controls relmgr can send; each value is the name of the workflow's Temporal Update."""

    APPROVE = "approve"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"


class ControlRecord(BaseModel):
    """One accepted control, as a release's `relmgr.audit` memo keeps it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    at: datetime
    user: str
    role: str = ""
    action: Control
    target: str
    reason: str = ""
    request_id: str = ""
    outcome: str = "accepted"


# ---------------------------------------------------------------------------------------------
# Plans: what a release will deploy, known in full from the moment it starts.


class BundlePlan(_Frozen):
    """The one bundle of a cluster and the apps it deploys, in order."""

    name: str
    apps: tuple[str, ...] = Field(min_length=1)


class ClusterPlan(_Frozen):
    """A cluster and its one bundle."""

    name: str
    bundle: BundlePlan


class WavePlan(_Frozen):
    """The clusters one wave deploys to in parallel."""

    clusters: tuple[ClusterPlan, ...] = Field(min_length=1)


def entity_count(*, waves: int, clusters: int, apps: int) -> int:
    """How many workflows a release runs, itself included: one for the release, each wave and
    each app, two for each cluster (the cluster and its bundle); `clusters` and `apps` are
    totals over the whole release."""
    return 1 + waves + 2 * clusters + apps


class ReleasePlan(_Frozen):
    """Every wave, cluster, bundle and app a release will deploy."""

    waves: tuple[WavePlan, ...] = Field(min_length=1, max_length=99)

    @classmethod
    def uniform(
        cls, *, waves: int, clusters: Sequence[str], apps: Sequence[str], bundle: str = "core"
    ) -> ReleasePlan:
        """`waves` waves, each deploying to every one of `clusters` one bundle of `apps`."""
        bundle_plan = BundlePlan(name=bundle, apps=tuple(apps))
        wave = WavePlan(clusters=tuple(ClusterPlan(name=c, bundle=bundle_plan) for c in clusters))
        return cls(waves=(wave,) * waves)

    @property
    def app_count(self) -> int:
        """How many app deployments the whole release makes."""
        return sum(len(c.bundle.apps) for w in self.waves for c in w.clusters)

    @property
    def entity_count(self) -> int:
        """How many workflows the release runs in all, the release itself included."""
        clusters = sum(len(w.clusters) for w in self.waves)
        return entity_count(waves=len(self.waves), clusters=clusters, apps=self.app_count)


# ---------------------------------------------------------------------------------------------
# Counts and roll-ups.


class StateCounts(_Frozen):
    """How many entities are in each state (for apps: each app counted in its own state).

    App counts of a running release come from its tree, so `in_progress` is the apps deploying
    now and `retrying` the apps waiting to retry; they are never "every app of a running
    cluster" (what the release workflow's own memo reports, used only once a release closed).
    """

    pending: int = Field(default=0, description="Not started yet.")
    in_progress: int = Field(default=0, description="Deploying now (an attempt is running).")
    retrying: int = Field(default=0, description="Waiting to retry after a failed attempt.")
    succeeded: int = Field(default=0, description="Deployed.")
    failed: int = Field(default=0, description="Failed for good (retries exhausted).")
    cancelled: int = Field(default=0, description="Cancelled, or never run: their parent ended.")
    awaiting_approval: int = Field(default=0, description="Gated, waiting for an approval.")
    paused: int = Field(default=0, description="Held by an operator's pause.")

    @property
    def total(self) -> int:
        """All entities counted."""
        return sum(self.get(state) for state in EntityState)

    @property
    def finished(self) -> int:
        """Entities in a terminal state."""
        return self.succeeded + self.failed + self.cancelled

    def get(self, state: EntityState) -> int:
        """The count for one state."""
        return int(getattr(self, state.value.lower()))

    def by_state(self) -> dict[EntityState, int]:
        """Every state with its count, in `EntityState` order."""
        return {state: self.get(state) for state in EntityState}

    @property
    def percent_succeeded(self) -> float:
        """Share of the counted entities that succeeded, 0-100 to one decimal (0 if none)."""
        if self.total == 0:
            return 0.0
        return round(100.0 * self.succeeded / self.total, 1)

    @classmethod
    def of(cls, states: Iterator[EntityState] | list[EntityState]) -> StateCounts:
        """Count an iterable of states."""
        tally = dict.fromkeys((s.value.lower() for s in EntityState), 0)
        for state in states:
            tally[state.value.lower()] += 1
        return cls(**tally)

    def __add__(self, other: StateCounts) -> StateCounts:
        return StateCounts(
            **{s.value.lower(): self.get(s) + other.get(s) for s in EntityState},
        )


# What each app count means, in words a front end can show as help text (keyed by state).
APP_COUNT_HELP: dict[EntityState, str] = {
    EntityState.PENDING: "Apps not started yet",
    EntityState.IN_PROGRESS: "Apps deploying now (an attempt is running)",
    EntityState.RETRYING: "Apps waiting to retry after a failed attempt",
    EntityState.SUCCEEDED: "Apps deployed",
    EntityState.FAILED: "Apps that failed for good (retries exhausted)",
    EntityState.CANCELLED: "Apps cancelled, or never run because their cluster or wave ended",
}


class Rollup(_Frozen):
    """What is below a node: its direct children and its apps by state, and percent deployed."""

    children: StateCounts = StateCounts()
    apps: StateCounts = StateCounts()

    @property
    def percent_complete(self) -> float:
        """Share of apps below (or this app itself) that deployed successfully, 0-100."""
        return self.apps.percent_succeeded


# ---------------------------------------------------------------------------------------------
# Entities: what Temporal knows of one workflow, and the release tree built from them.


def duration_seconds(started_at: datetime | None, finished_at: datetime | None) -> float | None:
    """Seconds from start to finish, or None unless both exist."""
    if started_at is None or finished_at is None:
        return None
    return (finished_at - started_at).total_seconds()


def _duration_not_required(schema: dict[str, Any]) -> None:
    # A computed field is a required property of the output schema; but FastAPI leaves every
    # null out of the OpenAPI document, examples included, so a running entity's example would
    # break its own schema. The field is always in a body, a number or null.
    required = schema.get("required")
    if isinstance(required, list) and "duration_seconds" in required:
        required.remove("duration_seconds")


class Entity(_Frozen):
    """One entity as visibility (or its `get_state` query) reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_duration_not_required)

    id: str
    kind: EntityKind
    release_id: str
    parent_id: str | None = None
    state: EntityState = EntityState.PENDING
    started_at: datetime | None = None
    last_changed_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = 0
    last_error: str | None = None
    # False for entities known only from the release plan: no workflow has started yet.
    started: bool = True
    # Apps only, where known: the most attempts the deploy may take, and when a RETRYING app
    # tries again.
    max_attempts: int | None = None
    next_retry_at: datetime | None = None
    # A release started with a delay: when it is planned to begin (PENDING until then).
    scheduled_for: datetime | None = None

    # Derived, so a computed field: every dump (API bodies, the tree, the entity) carries it and
    # no code path can let it disagree with the two times; adding it in the API layer instead
    # would need a second tree of response models (Release to App) kept in step with these.
    # Dumps are parsed again (snapshots, caches, tests, a `get_state` query's answer), and
    # `extra="forbid"` would refuse the key, so `_drop_derived` removes it from the input: what
    # is derived is never taken from outside.
    # Null while running: a duration up to "now" would make a body cached per revision depend
    # on when it was read.
    @computed_field(  # type: ignore[prop-decorator]  # pydantic's documented computed-field idiom
        description="Seconds from `started_at` to `finished_at`; null unless both exist "
        "(null while running)."
    )
    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish, or None unless both exist."""
        return duration_seconds(self.started_at, self.finished_at)

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        if isinstance(data, dict) and "duration_seconds" in data:
            return {key: value for key, value in data.items() if key != "duration_seconds"}
        return data

    @property
    def name(self) -> str:
        """The last ID segment without its kind prefix."""
        return self.id.rsplit(".", 1)[-1].split("-", 1)[1]


class App(Entity):
    """An app deployment: the leaf of the tree."""

    rollup: Rollup = Rollup()


class Bundle(Entity):
    """The one bundle of a cluster."""

    rollup: Rollup = Rollup()
    apps: tuple[App, ...] = ()


class Cluster(Entity):
    """A cluster that receives exactly one bundle."""

    rollup: Rollup = Rollup()
    bundle: Bundle


class Wave(Entity):
    """A wave deploying to its clusters in parallel."""

    rollup: Rollup = Rollup()
    clusters: tuple[Cluster, ...] = ()


class Release(Entity):
    """A release running its waves in order."""

    rollup: Rollup = Rollup()
    waves: tuple[Wave, ...] = ()

    @property
    def clusters_total(self) -> int:
        """Clusters over all waves (a cluster deployed to in two waves counts twice)."""
        return sum(len(wave.clusters) for wave in self.waves)


TreeNode = Release | Wave | Cluster | Bundle | App


def children_of(node: TreeNode) -> tuple[TreeNode, ...]:
    """The direct children of a tree node, in plan order."""
    if isinstance(node, Release):
        return node.waves
    if isinstance(node, Wave):
        return node.clusters
    if isinstance(node, Cluster):
        return (node.bundle,)
    if isinstance(node, Bundle):
        return node.apps
    return ()


def walk(node: TreeNode) -> Iterator[TreeNode]:
    """Every node of a (sub)tree, depth first, parents before children."""
    stack: list[TreeNode] = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children_of(current)))


class ReleaseHierarchy(_Frozen):
    """A whole release as one tree, with the time it was read."""

    release: Release
    read_at: datetime
    # Changes whenever any entity's state or time changes; a cheap ETag.
    revision: str = ""

    def entities(self) -> Iterator[TreeNode]:
        """Every entity of the release, depth first."""
        return walk(self.release)

    def find(self, entity_id: str) -> TreeNode | None:
        """The node with this ID, or None."""
        for node in self.entities():
            if node.id == entity_id:
                return node
        return None

    def needs_attention(self) -> list[TreeNode]:
        """Failed and retrying entities, deepest first within each branch order."""
        return list(self._attention)

    def last_changed_at(self) -> datetime | None:
        """The newest change anywhere in the tree (the release's own row only moves when the
        release workflow itself reports), or None if nothing has started."""
        return self._newest_change

    # Both walk the whole tree (1,206 nodes of a big release: ~2.4 and ~1.3 ms). A tree is a
    # frozen snapshot that every session showing the release reads on every refresh, so each is
    # computed once per tree; pydantic leaves cached properties out of equality and dumps.
    @cached_property
    def _attention(self) -> tuple[TreeNode, ...]:
        return tuple(n for n in self.entities() if n.state.needs_attention)

    @cached_property
    def _newest_change(self) -> datetime | None:
        return max(
            (n.last_changed_at for n in self.entities() if n.last_changed_at is not None),
            default=None,
        )


# ---------------------------------------------------------------------------------------------
# The release list.


class ReleaseSummary(Entity):
    """A release as the release list shows it, without its tree.

    For a release still running, `apps` and `last_changed_at` are those of its tree (the reader
    follows every running release on the list); for a closed release, its workflow's final memo.
    `last_changed_at` is the newest change anywhere in the release, not only of its own workflow.
    """

    waves_total: int = 0
    # Clusters over all waves, as in the release's plan; 0 when the plan is unknown.
    clusters_total: int = 0
    current_wave: int | None = None
    apps: StateCounts = Field(
        default=StateCounts(), description="The release's apps, each counted in its own state."
    )
    # The controls the release's workflow accepts (memo `relmgr.controls`), the apps holding it
    # (failed, waiting for a retry), and its last accepted controls (memo `relmgr.audit`).
    controls: tuple[Control, ...] = ()
    held: tuple[str, ...] = ()
    audit: tuple[ControlRecord, ...] = ()

    @property
    def percent_complete(self) -> float:
        """Share of the release's apps deployed successfully, 0-100."""
        return self.apps.percent_succeeded


class ReleaseSort(StrEnum):
    """The columns the release list can be sorted by."""

    STARTED_AT = "started_at"
    LAST_CHANGED_AT = "last_changed_at"
    ID = "id"
    STATE = "state"
    PERCENT_COMPLETE = "percent_complete"


MAX_PAGE_SIZE = 500


class ReleaseQuery(_Frozen):
    """One page of the release list: filter, search, sort and paging."""

    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    state: EntityState | None = None
    search: str | None = None
    sort: ReleaseSort = ReleaseSort.STARTED_AT
    descending: bool = True


class ReleaseListPage(_Frozen):
    """One page of releases, the total that matched, and counts per state.

    `counts` (releases by state) and `app_counts` (their apps by state, e.g. how many apps are
    retrying now) cover every release the search matches, before the state filter: they say what
    each state filter would give, so tiles can act as filters and follow the search.
    """

    items: tuple[ReleaseSummary, ...]
    total: int
    page: int
    page_size: int
    counts: StateCounts
    read_at: datetime
    revision: str = ""
    app_counts: StateCounts = StateCounts()

    @property
    def pages(self) -> int:
        """How many pages the matching releases fill (at least 1)."""
        return max(1, -(-self.total // self.page_size))


class Breadcrumb(_Frozen):
    """One ancestor of an entity, for links up the tree."""

    id: str
    kind: EntityKind


class EntityDetail(_Frozen):
    """One entity fresh from Temporal, with its ancestors and a summary of its children."""

    entity: Entity
    breadcrumbs: tuple[Breadcrumb, ...] = ()
    children: tuple[Entity, ...] = ()
    rollup: Rollup = Rollup()
    read_at: datetime
