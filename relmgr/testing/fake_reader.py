"""An in-memory reader behind the same seam as the Temporal one, for fast page and route tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from relmgr import ids
from relmgr.errors import LiveStateUnavailableError, NotFoundError, TemporalUnavailableError
from relmgr.models import (
    Entity,
    EntityDetail,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.reader.listing import detail_from_tree, page_releases, summary_of
from relmgr.reader.protocol import ReaderStats


class FakeReader:
    """Serves fixed release trees; `available = False` makes every call fail as Temporal would."""

    def __init__(self, hierarchies: Iterable[ReleaseHierarchy] = ()) -> None:
        self._trees: dict[str, ReleaseHierarchy] = {}
        self.available = True
        self.live_available = True
        self.calls: list[str] = []
        # What the fake calls "now" (its `read_at`s); tests may pin it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        # Summary fields a tree does not carry (controls, held apps, audit), by release ID.
        self.memo: dict[str, dict[str, object]] = {}
        for tree in hierarchies:
            self.put(tree)

    def put(self, hierarchy: ReleaseHierarchy) -> None:
        """Add or replace a release tree."""
        self._trees[hierarchy.release.id] = hierarchy

    def _check(self, name: str) -> datetime:
        self.calls.append(name)
        if not self.available:
            raise TemporalUnavailableError("Temporal is unavailable (fake reader switched off)")
        return self.clock()

    def _tree(self, release_id: str) -> ReleaseHierarchy:
        tree = self._trees.get(release_id)
        if tree is None:
            raise NotFoundError(f"release {release_id} not found", entity_id=release_id)
        return tree

    async def list_releases(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of the fixed releases."""
        if query.search is not None:
            ids.validate_search(query.search)
        now = self._check("list_releases")
        return page_releases((self._summary(t) for t in self._trees.values()), query, read_at=now)

    async def get_release(self, release_id: str) -> ReleaseSummary:
        """One fixed release without its tree."""
        ids.validate_release_id(release_id)
        self._check("get_release")
        return self._summary(self._tree(release_id))

    def _summary(self, tree: ReleaseHierarchy) -> ReleaseSummary:
        summary = summary_of(tree)
        extra = self.memo.get(summary.id)
        return summary.model_copy(update=extra) if extra else summary

    async def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        """One fixed release tree, stamped with the time of this call."""
        ids.validate_release_id(release_id)
        now = self._check("get_release_hierarchy")
        return self._tree(release_id).model_copy(update={"read_at": now})

    async def get_entity(self, entity_id: str) -> EntityDetail:
        """Any entity of a fixed tree."""
        ref = ids.parse_entity_id(entity_id)
        now = self._check("get_entity")
        tree = self._trees.get(ref.release_id)
        node = tree.find(entity_id) if tree is not None else None
        if node is None:
            raise NotFoundError(f"{ref.kind.value} {entity_id} not found", entity_id=entity_id)
        return detail_from_tree(node, tree, read_at=now)

    async def get_live_state(self, entity_id: str) -> Entity:
        """The entity itself, unless `live_available` is off."""
        detail = await self.get_entity(entity_id)
        if not self.live_available:
            raise LiveStateUnavailableError(
                f"no worker answered the live query for {entity_id}", entity_id=entity_id
            )
        return detail.entity

    async def check_ready(self) -> None:
        """Fails exactly when the fake is switched off."""
        self._check("check_ready")

    def stats(self) -> ReaderStats:
        """The fake costs Temporal nothing."""
        return ReaderStats(watched_releases=len(self._trees))

    async def aclose(self) -> None:
        """Nothing to release."""
