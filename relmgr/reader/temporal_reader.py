"""The Temporal reader: the `ReleaseReader` the dashboard and the API use in production.

Trees and the release list come from the shared snapshot cache (`relmgr.reader.refresher`), which
one background task keeps fresh with one delta list call per cycle; a single entity is one
`describe()` (coalesced across concurrent readers and reused for one refresh period); the live
`get_state` query is used only by `get_live_state`, with a short timeout. Every method validates
IDs before anything reaches Temporal and raises only `relmgr.errors` exceptions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from relmgr import ids
from relmgr.errors import (
    NotFoundError,
    RelmgrError,
    TemporalUnavailableError,
)
from relmgr.models import (
    Entity,
    EntityDetail,
    EntityKind,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.reader.clock import Clock, SystemClock
from relmgr.reader.coalescer import Coalescer
from relmgr.reader.listing import detail_from_tree, summary_of
from relmgr.reader.protocol import ReaderStats
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.reader.rows import VisibilityRow, summary_of_row
from relmgr.reader.source import TemporalVisibility, VisibilitySource
from relmgr.settings import Settings

log = logging.getLogger(__name__)

# A live query result is reused this long: many viewers of one entity cost one query a second.
LIVE_STATE_TTL_SECONDS = 1.0


class TemporalReader:
    """Reads releases from Temporal visibility through one shared, self-refreshing cache."""

    def __init__(
        self,
        source: VisibilitySource,
        settings: Settings,
        *,
        clock: Clock | None = None,
        policy: CachePolicy | None = None,
    ) -> None:
        """Use `from_client()` for a real client; `source`, `clock` and `policy` (else the
        settings') are injectable for tests and benchmarks."""
        self._source = source
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self.cache = SnapshotCache(
            source, policy or CachePolicy.from_settings(settings), self._clock
        )
        # One describe per entity per refresh period, however many viewers ask.
        self._describes: Coalescer[VisibilityRow] = Coalescer(
            self._clock, ttl=settings.refresh_seconds
        )
        self._live: Coalescer[Entity] = Coalescer(self._clock, ttl=LIVE_STATE_TTL_SECONDS)
        self._ready: Coalescer[None] = Coalescer(self._clock, ttl=settings.refresh_seconds)
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def from_client(
        cls, client: Client, settings: Settings, *, policy: CachePolicy | None = None
    ) -> TemporalReader:
        """A reader on a connected client (see `relmgr.temporal.client.connect`)."""
        source = TemporalVisibility(
            client,
            rpc_timeout=settings.temporal_rpc_timeout,
            live_query_timeout=settings.live_query_timeout,
        )
        return cls(source, settings, policy=policy)

    def start(self) -> None:
        """Start the background refresher on the running event loop (idempotent)."""
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(
                self.cache.run(), name="relmgr-refresher"
            )

    def follow_memo(
        self,
        workflow_id: str,
        clause: str,
        field: str,
        sink: Callable[[bytes], None],
        on_read: Callable[[], None] | None = None,
    ) -> None:
        """Read the memo `field` of `workflow_id` in every refresh cycle's delta call (`clause`
        selects it) and hand its JSON bytes to `sink`, then call `on_read` (also when no such
        workflow exists yet); for the auth ledger."""
        if not isinstance(self._source, TemporalVisibility):
            raise TypeError("only a reader on Temporal visibility can follow a memo")
        self._source.watch_memo(workflow_id, field, sink)
        self.cache.pin(clause, on_read)

    def close_with(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Await `closer` when the reader closes (what was started alongside it)."""
        self._closers.append(closer)

    def _check_open(self) -> None:
        if self._closed:
            raise TemporalUnavailableError("the reader is closed")

    # ---- the ReleaseReader protocol ------------------------------------------------------

    async def list_releases(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of releases from the watched release list (newest first by default)."""
        if query.search is not None:
            ids.validate_search(query.search)
        self._check_open()
        return await self.cache.release_page(query)

    async def get_release(self, release_id: str) -> ReleaseSummary:
        """A release without its tree, with the same counts as its tree.

        From a watched snapshot if any (every running release of a watched list is one); a
        closed release from the list or one `describe()` (its final memo); a running release
        nobody watches yet from its tree, which is then watched (one list call).
        """
        ids.validate_release_id(release_id)
        self._check_open()
        watched = self.cache.watched_summary(release_id)
        if watched is not None:
            return watched
        summary = self.cache.listed_summary(release_id)
        if summary is None:
            row = await self._describe(release_id)
            if row.entity.kind is not EntityKind.RELEASE:  # pragma: no cover - IDs tell kinds
                raise NotFoundError(f"release {release_id} not found", entity_id=release_id)
            summary = summary_of_row(row)
        if summary.state.is_terminal:
            return summary
        try:
            tree = await self.cache.hierarchy(release_id)
        except TemporalUnavailableError as exc:
            known = exc.last_known
            raise TemporalUnavailableError(
                exc.message,
                last_known=summary_of(known) if isinstance(known, ReleaseHierarchy) else summary,
                last_success_at=exc.last_success_at,
            ) from None
        return self.cache.watched_summary(release_id) or summary_of(tree)

    async def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        """The whole tree of a release, from its watched snapshot (one list call when cold)."""
        ids.validate_release_id(release_id)
        self._check_open()
        return await self.cache.hierarchy(release_id)

    def previous_hierarchy(self, release_id: str) -> ReleaseHierarchy | None:
        """The last tree of a release whose watch lapsed, kept for stale answers (or None)."""
        return self.cache.lapsed_hierarchy(release_id)

    async def get_entity(self, entity_id: str) -> EntityDetail:
        """Any entity fresh from `describe()`; children and roll-up from its release's tree."""
        ref = ids.parse_entity_id(entity_id)
        self._check_open()
        tree_result, row_result = await asyncio.gather(
            self.cache.hierarchy(ref.release_id),
            self._describe(entity_id),
            return_exceptions=True,
        )
        for outcome in (tree_result, row_result):
            if isinstance(outcome, BaseException) and not isinstance(outcome, RelmgrError):
                raise outcome
        tree: ReleaseHierarchy | None = None
        if isinstance(tree_result, ReleaseHierarchy):
            tree = tree_result
        elif isinstance(tree_result, TemporalUnavailableError) and isinstance(
            tree_result.last_known, ReleaseHierarchy
        ):
            tree = tree_result.last_known
        if isinstance(row_result, VisibilityRow):
            read_at = self._clock.now()
            if tree is not None:
                read_at = min(read_at, tree.read_at)
            return detail_from_tree(row_result.entity, tree, read_at=read_at)
        node = tree.find(entity_id) if tree is not None else None
        if isinstance(row_result, NotFoundError):
            if node is None or tree is None:
                raise NotFoundError(f"{ref.kind.value} {entity_id} not found", entity_id=entity_id)
            # Planned but not started yet: the tree's placeholder is all there is to know.
            return detail_from_tree(node, tree, read_at=tree.read_at)
        assert isinstance(row_result, RelmgrError)
        if isinstance(row_result, TemporalUnavailableError):
            last_known = (
                detail_from_tree(node, tree, read_at=tree.read_at)
                if node is not None and tree is not None
                else None
            )
            raise TemporalUnavailableError(
                row_result.message,
                last_known=last_known,
                last_success_at=tree.read_at if tree is not None else None,
            )
        raise row_result

    async def get_live_state(self, entity_id: str) -> Entity:
        """The entity as its workflow reports it now (`get_state`, short timeout)."""
        ids.parse_entity_id(entity_id)
        self._check_open()
        failure = self.cache.failure
        if failure is not None:
            # Temporal itself is down: say so, rather than "no worker answered" after a wait.
            raise TemporalUnavailableError(
                failure.message, last_success_at=self.cache.last_success_at
            )
        return await self._live.get(entity_id, lambda: self._source.query_state(entity_id))

    async def check_ready(self) -> None:
        """Return if Temporal answers: a recent good refresh, or one cheap count call."""
        self._check_open()
        failure = self.cache.failure
        if failure is not None:
            raise TemporalUnavailableError(
                failure.message, last_success_at=self.cache.last_success_at
            )
        if self.cache.succeeded_within(2 * self._settings.refresh_seconds):
            return
        await self._ready.get("ready", self._source.ping)

    def stats(self) -> ReaderStats:
        """The Temporal calls made so far by type, and how many releases are watched."""
        counted = self._source.stats()
        return counted.model_copy(
            update={
                "watched_releases": len(self.cache.watched_releases()),
                "refresh_cycles": self.cache.cycles,
                "refreshing": self.cache.refreshing,
            }
        )

    async def aclose(self) -> None:
        """Stop the refresher; later calls raise `TemporalUnavailableError`."""
        self._closed = True
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        closers, self._closers = self._closers, []
        for closer in closers:
            await closer()

    # ---- helpers ------------------------------------------------------------------------

    async def _describe(self, entity_id: str) -> VisibilityRow:
        return await self._describes.get(entity_id, lambda: self._source.describe_row(entity_id))
