"""The read seam: the one interface through which the dashboard and the API read releases."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from relmgr.models import (
    Entity,
    EntityDetail,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSummary,
)


class ReaderStats(BaseModel):
    """Counters of the Temporal calls a reader made, for benchmarks and the readiness check."""

    model_config = ConfigDict(frozen=True)

    list_calls: int = 0
    count_calls: int = 0
    describe_calls: int = 0
    query_calls: int = 0
    watched_releases: int = 0
    # Refresh cycles completed: with `list_calls`, shows what a cycle costs (one delta call).
    refresh_cycles: int = 0
    # A cycle is under way: its calls may already be in `list_calls`, it is not yet counted.
    refreshing: bool = False

    @property
    def temporal_calls(self) -> int:
        """Every call that reached Temporal."""
        return self.list_calls + self.count_calls + self.describe_calls + self.query_calls


class ReleaseReader(Protocol):
    """Read releases and entities; every method raises only `relmgr.errors` exceptions.

    `InvalidIdError` for malformed IDs (checked before anything reaches Temporal), `NotFoundError`
    for unknown ones, `TemporalUnavailableError` (with the last known result attached, if any)
    when Temporal cannot answer within the reader's time budget.
    """

    async def list_releases(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of releases, newest first unless `query.sort` says otherwise."""
        ...

    async def get_release(self, release_id: str) -> ReleaseSummary:
        """One release without its tree."""
        ...

    async def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        """The whole tree of a release, with roll-ups, planned entities shown as PENDING."""
        ...

    async def get_entity(self, entity_id: str) -> EntityDetail:
        """Any entity, fresh from `describe()`, with breadcrumbs and its children."""
        ...

    async def get_live_state(self, entity_id: str) -> Entity:
        """The entity as its running workflow reports it (`LiveStateUnavailableError` if none)."""
        ...

    async def check_ready(self) -> None:
        """Return if Temporal answers; raise `TemporalUnavailableError` otherwise."""
        ...

    def stats(self) -> ReaderStats:
        """What this reader has cost Temporal so far."""
        ...

    async def aclose(self) -> None:
        """Stop background refreshes and release connections."""
        ...


@runtime_checkable
class KeepsLapsedTrees(Protocol):
    """A reader that remembers the last tree of a release it stopped watching (optional)."""

    def previous_hierarchy(self, release_id: str) -> ReleaseHierarchy | None:
        """The last tree read of a release no longer watched, or None; for answering stale
        when its cold load outruns a budget."""
        ...
