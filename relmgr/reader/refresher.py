"""The shared snapshot cache: one background refresher keeps every watched release current.

A release (or the release list) becomes *watched* when someone reads it; its first read is one
list call, shared by every concurrent reader (single flight). From then on one background task
refreshes all watched snapshots together, every `refresh_seconds`, with ONE delta list call:

    (RelmgrLastChange >= since OR CloseTime >= since)
        AND (RelmgrKind = 'release' OR RelmgrReleaseId IN ('rel-a', 'rel-b', ...))

where `since` is the start of the last successful refresh minus a safety window (visibility
lag, clock skew). Its rows are merged into the snapshots by workflow ID, older rows ignored, and
only the snapshots that changed are rebuilt. So a refresh costs Temporal in proportion to what
changed, and neither the number of readers nor the number of watched releases changes the number
of calls. Each snapshot is also re-read in full every `resync_seconds` (one per cycle at most),
which drops workflows that have disappeared. Snapshots nobody read for `watch_ttl_seconds` are
forgotten.

A *pinned* clause (`pin`: the auth ledger's workflow, `relmgr.auth.ledger`) is ORed into the
first delta call of every cycle, so the ledger's memo arrives in the call the cycle makes anyway;
with nothing watched, the cycle makes that one call for the pinned clause alone. So a replica
costs Temporal one call per cycle, whatever its viewers.

While the release list is watched, every release on it that is still running is *followed*: it
gets a snapshot of its own, as if someone had its page open, so the list, its tiles and
`get_release` show the same app counts and last change as the release's tree. Followed releases
are loaded together (one list call per `MAX_IN_IDS` of them: at the list's cold load, then only
releases that started since) and ride in the same delta call as everything else; a release that
ended is no longer followed and, once nobody reads its tree, the list shows its final memo.

Cold loads are full lists (a 1,206-entity release is two 1,000-row pages), so at most
`cold_load_concurrency` of them run at once and the others queue: a herd of first reads on a busy
server would otherwise run past its bound together, fail together and be started again by the next
requests. A cold load that failed is answered from its failure for `refresh_seconds` (as an unknown
release is), so readers retrying at once cost Temporal nothing. A reader waits for a cold load as
long as its caller lets it: giving up (the API's budget, the dashboard bridge's timeout) leaves the
load running, queued or not, for the other readers and the next request.

Readers never wait for Temporal on a warm snapshot. When a refresh fails, reads of snapshots older
than the failure raise `TemporalUnavailableError` carrying the last snapshot (`last_known`) and
its time (`last_success_at`); the refresher keeps trying with backoff and the next successful
cycle clears the failure.

All I/O goes through a `VisibilitySource` and all time through a `Clock`, so this module is
tested without Temporal and without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from relmgr import ids
from relmgr.errors import NotFoundError, RelmgrError, TemporalUnavailableError
from relmgr.models import (
    EntityKind,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.reader.clock import Clock, SystemClock
from relmgr.reader.coalescer import Coalescer
from relmgr.reader.queries import (
    MAX_IN_IDS,
    delta_query,
    release_list_query,
    release_query,
    releases_query,
)
from relmgr.reader.rows import VisibilityRow
from relmgr.reader.snapshots import ListSnapshot, ReleaseSnapshot, Snapshot, merge_row, rows_by_id
from relmgr.reader.source import VisibilitySource
from relmgr.settings import Settings

__all__ = ["CachePolicy", "Clock", "Coalescer", "RefreshReport", "SnapshotCache", "SystemClock"]

log = logging.getLogger(__name__)

# The longest pause between two refresh attempts while Temporal is failing: short, so that the
# dashboard recovers within seconds of the server coming back.
MAX_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class CachePolicy:
    """How often the refresher runs and how long snapshots live (see `Settings`)."""

    refresh_seconds: float = 1.5
    delta_window_seconds: float = 10.0
    resync_seconds: float = 300.0
    watch_ttl_seconds: float = 60.0
    cold_load_concurrency: int = 2
    # Trees of releases whose watch lapsed, kept (newest lapse last) so that a cold load that
    # outruns a reader's budget can be answered from the last one, marked stale. A snapshot of a
    # 12,011-entity release holds ~40 MB with its rows (docs/SCALING.md), so only a few trees.
    lapsed_trees_kept: int = 4
    # Follow the running releases of a watched list (exact counts). Off only to measure the old
    # behaviour (memo counts, which lag) in `bench/list_counts.py`.
    follow_running: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        """The policy the settings ask for."""
        return cls(
            refresh_seconds=settings.refresh_seconds,
            delta_window_seconds=settings.delta_window_seconds,
            resync_seconds=settings.resync_seconds,
            watch_ttl_seconds=settings.watch_ttl_seconds,
            cold_load_concurrency=settings.cold_load_concurrency,
        )


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh cycle did."""

    started_at: datetime
    list_queries: int = 0
    rows: int = 0
    resynced: tuple[str, ...] = ()
    rebuilt: tuple[str, ...] = ()
    watched: int = 0
    # Running releases of the list whose trees this cycle loaded (they started since).
    followed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Followed:
    """What one round of following the list's running releases loaded."""

    release_ids: tuple[str, ...] = ()
    calls: int = 0
    rows: int = 0


_LIST_KEY = "*release-list*"  # not a release ID, so it never collides with one


class SnapshotCache:
    """Watched releases and the release list, shared by every reader, kept fresh by `run()`."""

    def __init__(
        self,
        source: VisibilitySource,
        policy: CachePolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._source = source
        self.policy = policy or CachePolicy()
        self._clock: Clock = clock or SystemClock()
        self._releases: dict[str, ReleaseSnapshot] = {}
        self._list: ListSnapshot | None = None
        self._loads: Coalescer[Snapshot] = Coalescer(self._clock)
        self._cold_slots = asyncio.Semaphore(self.policy.cold_load_concurrency)
        self._missing: dict[str, float] = {}
        self._lapsed: OrderedDict[str, ReleaseHierarchy] = OrderedDict()
        # Key -> (monotonic time, error) of the last cold load that failed.
        self._failed_loads: dict[str, tuple[float, TemporalUnavailableError]] = {}
        self._failure: TemporalUnavailableError | None = None
        self._failed_at: datetime | None = None
        self._last_success_at: datetime | None = None
        self._last_success_mono: float | None = None
        self.cycles = 0
        self.refreshing = False
        self.last_report: RefreshReport | None = None
        self._pinned: str | None = None
        self._on_pinned_read: Callable[[], None] | None = None

    def pin(self, clause: str | None, on_read: Callable[[], None] | None = None) -> None:
        """Include the visibility `clause` in every cycle's delta call (None: stop); `on_read`
        hears of each cycle that read it (whether or not a workflow matched)."""
        self._pinned = clause
        self._on_pinned_read = on_read

    # ---- state -------------------------------------------------------------------------------

    @property
    def failure(self) -> TemporalUnavailableError | None:
        """The error of the last refresh, if it failed."""
        return self._failure

    @property
    def last_success_at(self) -> datetime | None:
        """When the last successful refresh (or cold load) started."""
        return self._last_success_at

    def succeeded_within(self, seconds: float) -> bool:
        """True if a refresh or load succeeded in the last `seconds` and none failed since."""
        if self._failure is not None or self._last_success_mono is None:
            return False
        return self._clock.monotonic() - self._last_success_mono <= seconds

    def watched_releases(self) -> list[str]:
        """The releases being kept fresh now."""
        return sorted(self._releases)

    def _note_success(self, started_at: datetime) -> None:
        self._last_success_at = started_at
        self._last_success_mono = self._clock.monotonic()

    def _check_fresh(self, snapshot: Snapshot, last_known: object) -> None:
        """Raise if the last refresh failed after this snapshot was read."""
        if self._failure is None or self._failed_at is None:
            return
        if snapshot.read_at <= self._failed_at:
            raise TemporalUnavailableError(
                self._failure.message, last_known=last_known, last_success_at=snapshot.read_at
            )

    # ---- reads -------------------------------------------------------------------------------

    async def hierarchy(self, release_id: str) -> ReleaseHierarchy:
        """The watched tree of a release, loading it (one list call, single flight) if cold."""
        snapshot = await self._release_snapshot(release_id)
        tree = snapshot.tree()
        self._check_fresh(snapshot, tree)
        return tree

    def lapsed_hierarchy(self, release_id: str) -> ReleaseHierarchy | None:
        """The last tree of a release no longer watched (its `read_at` says how old), or None.

        Not a read: it neither watches the release nor loads anything.
        """
        return self._lapsed.get(release_id)

    def watched_summary(self, release_id: str) -> ReleaseSummary | None:
        """The summary of a watched release (exact, from its tree), or None if not watched."""
        snapshot = self._releases.get(release_id)
        if snapshot is None:
            return None
        snapshot.last_read_mono = self._clock.monotonic()
        summary = snapshot.summary()
        self._check_fresh(snapshot, summary)
        return summary

    def listed_summary(self, release_id: str) -> ReleaseSummary | None:
        """The release list's row for a release, if the list is watched and has it."""
        snapshot = self._list
        if snapshot is None:
            return None
        if snapshot.dirty:
            snapshot.rebuild()
        summary = snapshot.summaries.get(release_id)
        if summary is not None:
            self._check_fresh(snapshot, summary)
        return summary

    async def release_page(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of the watched release list, loading it (one list call) if cold."""
        snapshot = self._list
        if snapshot is None:
            loaded = await self._cold_load(_LIST_KEY, self._load_list)
            assert isinstance(loaded, ListSnapshot)
            snapshot = loaded
        snapshot.last_read_mono = self._clock.monotonic()
        page = snapshot.page(query)
        self._check_fresh(snapshot, page)
        return page

    async def _release_snapshot(self, release_id: str) -> ReleaseSnapshot:
        snapshot = self._releases.get(release_id)
        if snapshot is None:
            missing_at = self._missing.get(release_id)
            now = self._clock.monotonic()
            if missing_at is not None and now - missing_at < self.policy.refresh_seconds:
                raise NotFoundError(f"release {release_id} not found", entity_id=release_id)
            loaded = await self._cold_load(release_id, lambda: self._load_release(release_id))
            assert isinstance(loaded, ReleaseSnapshot)
            snapshot = loaded
        snapshot.last_read_mono = self._clock.monotonic()
        return snapshot

    async def _cold_load(self, key: str, load: Callable[[], Awaitable[Snapshot]]) -> Snapshot:
        """One load per key for every concurrent reader; a recent failure is raised at once."""
        failed = self._failed_loads.get(key)
        if failed is not None:
            failed_at, error = failed
            if self._clock.monotonic() - failed_at < self.policy.refresh_seconds:
                # A new instance: re-raising one shared instance would grow its traceback.
                raise type(error)(error.message)
        # The coalescer runs `load` in a task of its own and shields it from the readers, so a
        # reader giving up neither cancels the load nor gives up its place in the queue.
        return await self._loads.get(key, lambda: self._remember_failure(key, load))

    async def _remember_failure(
        self, key: str, load: Callable[[], Awaitable[Snapshot]]
    ) -> Snapshot:
        """Run one cold load; if Temporal failed it, note when and how for `_cold_load`."""
        try:
            snapshot = await load()
        except TemporalUnavailableError as exc:
            self._failed_loads[key] = (self._clock.monotonic(), exc)
            raise
        self._failed_loads.pop(key, None)
        return snapshot

    async def _load_release(self, release_id: str) -> Snapshot:
        ids.validate_release_id(release_id)
        # The release list is not bounded: it is one key (never more than one load in flight)
        # and the first page everyone opens, so it never queues behind the trees.
        async with self._cold_slots:
            started_at = self._clock.now()  # after the queue: the rows are as of the call
            rows = await self._source.list_rows(release_query(release_id))
        mono = self._clock.monotonic()
        self._note_success(started_at)
        if not rows:
            self._missing[release_id] = mono
            raise NotFoundError(f"release {release_id} not found", entity_id=release_id)
        snapshot = ReleaseSnapshot(
            rows=rows_by_id(rows),
            covered_at=started_at,
            loaded_mono=mono,
            last_read_mono=mono,
            release_id=release_id,
        )
        snapshot.rebuild()
        self._missing.pop(release_id, None)
        self._lapsed.pop(release_id, None)
        self._releases[release_id] = snapshot
        self._list_follows(release_id)
        return snapshot

    def _list_follows(self, release_id: str) -> None:
        """The list shows this release's tree now (or no longer): cut its pages again."""
        if self._list is not None and release_id in self._list.rows:
            self._list.dirty = True

    async def _load_list(self) -> Snapshot:
        started_at = self._clock.now()
        rows = await self._source.list_rows(release_list_query())
        mono = self._clock.monotonic()
        snapshot = ListSnapshot(
            rows=rows_by_id(rows),
            covered_at=started_at,
            loaded_mono=mono,
            last_read_mono=mono,
            trees=self._releases,
        )
        await self._follow(snapshot, started_at)
        self._note_success(started_at)
        snapshot.rebuild()
        self._list = snapshot
        return snapshot

    async def _follow(self, listing: ListSnapshot, started_at: datetime) -> _Followed:
        """Load the trees of the list's running releases that have none, a few calls for all."""
        if not self.policy.follow_running:
            return _Followed()
        missing = [r for r in listing.running_ids() if r not in self._releases]
        followed: list[str] = []
        calls = received = 0
        for start in range(0, len(missing), MAX_IN_IDS):
            chunk = missing[start : start + MAX_IN_IDS]
            rows = await self._source.list_rows(releases_query(chunk))
            calls += 1
            received += len(rows)
            grouped: dict[str, list[VisibilityRow]] = {r: [] for r in chunk}
            for row in rows:
                grouped.setdefault(row.entity.release_id, []).append(row)
            mono = self._clock.monotonic()
            for release_id in chunk:
                if not grouped[release_id] or release_id in self._releases:
                    continue  # not visible yet (the next cycle tries again), or loaded since
                self._releases[release_id] = ReleaseSnapshot(
                    rows=rows_by_id(grouped[release_id]),
                    covered_at=started_at,
                    loaded_mono=mono,
                    last_read_mono=mono,
                    release_id=release_id,
                )
                self._lapsed.pop(release_id, None)
                followed.append(release_id)
        if followed:
            listing.dirty = True
        return _Followed(tuple(followed), calls, received)

    # ---- refreshing --------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        ttl = self.policy.watch_ttl_seconds
        if self._list is not None and now - self._list.last_read_mono > ttl:
            self._list = None
        following = self._list is not None and self.policy.follow_running
        followed = set(self._list.running_ids()) if following and self._list else set()
        for release_id in [
            r
            for r, s in self._releases.items()
            if now - s.last_read_mono > ttl and r not in followed
        ]:
            log.debug("release %s not read for %.0f s: no longer refreshed", release_id, ttl)
            self._keep_lapsed(release_id, self._releases.pop(release_id).tree())
            self._list_follows(release_id)
        for release_id in [
            r for r, at in self._missing.items() if now - at >= self.policy.refresh_seconds
        ]:
            del self._missing[release_id]
        failed = self._failed_loads
        for key in [k for k, (at, _) in failed.items() if now - at >= self.policy.refresh_seconds]:
            del failed[key]

    def _keep_lapsed(self, release_id: str, tree: ReleaseHierarchy) -> None:
        self._lapsed[release_id] = tree
        self._lapsed.move_to_end(release_id)
        while len(self._lapsed) > self.policy.lapsed_trees_kept:
            self._lapsed.popitem(last=False)

    def _snapshots(self) -> list[ReleaseSnapshot | ListSnapshot]:
        found: list[ReleaseSnapshot | ListSnapshot] = list(self._releases.values())
        if self._list is not None:
            found.append(self._list)
        return found

    async def refresh_once(self) -> RefreshReport:
        """One refresh cycle: at most one resync, then one delta for everything else.

        Raises `TemporalUnavailableError` (and remembers it for readers) if Temporal failed.
        `refreshing` is true while it runs (its calls may be counted, the cycle not yet).
        """
        self.refreshing = True
        try:
            return await self._refresh_once()
        finally:
            self.refreshing = False

    async def _refresh_once(self) -> RefreshReport:
        mono = self._clock.monotonic()
        self._expire(mono)
        snapshots = self._snapshots()
        started_at = self._clock.now()
        if not snapshots:
            # Nothing watched, nothing to know: an old failure no longer describes any data.
            self._failure = None
            if self._pinned is None:
                report = RefreshReport(started_at=started_at)
                self.last_report = report
                return report
        due = [s for s in snapshots if mono - s.loaded_mono >= self.policy.resync_seconds]
        resync = min(due, key=lambda s: s.loaded_mono) if due else None
        rest = [s for s in snapshots if s is not resync]
        queries = 0
        received = 0
        resynced: list[str] = []
        followed: tuple[str, ...] = ()
        try:
            if resync is not None:
                queries += 1
                rows = await self._source.list_rows(resync.full_query())
                received += len(rows)
                self._apply_resync(resync, rows, started_at)
                resynced.append(resync.release_id if isinstance(resync, ReleaseSnapshot) else "*")
            if rest:
                delta_rows, calls = await self._fetch_delta(rest)
                queries += calls
                received += len(delta_rows)
                self._apply_delta(delta_rows)
            elif self._pinned is not None:
                queries += 1
                received += len(await self._source.list_rows(self._pinned, delta=True))
            if self._list is not None:
                # Running releases new to the list since the last cycle (none, mostly).
                follow = await self._follow(self._list, started_at)
                queries += follow.calls
                received += follow.rows
                followed = follow.release_ids
        except RelmgrError as exc:
            self._fail(exc, started_at)
            raise
        for snapshot in rest:
            snapshot.covered_at = started_at
        rebuilt: list[str] = []
        # Trees first: the list is summarised from them.
        for snapshot in self._snapshots():
            if snapshot.dirty:
                snapshot.rebuild()
                rebuilt.append(
                    snapshot.release_id if isinstance(snapshot, ReleaseSnapshot) else "*"
                )
            else:
                snapshot.restamp()
        self._failure = None
        self._failed_at = None
        self._note_success(started_at)
        self.cycles += 1
        if self._pinned is not None and self._on_pinned_read is not None:
            self._on_pinned_read()
        report = RefreshReport(
            started_at=started_at,
            list_queries=queries,
            rows=received,
            resynced=tuple(resynced),
            rebuilt=tuple(rebuilt),
            watched=len(self._releases),
            followed=followed,
        )
        self.last_report = report
        return report

    def _fail(self, exc: RelmgrError, started_at: datetime) -> None:
        if isinstance(exc, TemporalUnavailableError):
            failure = exc
        else:
            failure = TemporalUnavailableError(f"refreshing from Temporal failed: {exc.message}")
        self._failure = failure
        self._failed_at = started_at

    async def _fetch_delta(
        self, snapshots: list[ReleaseSnapshot | ListSnapshot]
    ) -> tuple[list[VisibilityRow], int]:
        since = min(s.covered_at for s in snapshots) - timedelta(
            seconds=self.policy.delta_window_seconds
        )
        release_ids = sorted(s.release_id for s in snapshots if isinstance(s, ReleaseSnapshot))
        include_list = any(isinstance(s, ListSnapshot) for s in snapshots)
        chunks = [release_ids[i : i + MAX_IN_IDS] for i in range(0, len(release_ids), MAX_IN_IDS)]
        rows: list[VisibilityRow] = []
        calls = 0
        for number, chunk in enumerate(chunks or [[]]):
            with_list = include_list and number == 0
            if not chunk and not with_list:
                continue
            calls += 1
            query = delta_query(
                since,
                chunk,
                include_release_list=with_list,
                pinned=self._pinned if number == 0 else None,
            )
            rows.extend(await self._source.list_rows(query, delta=True))
        return rows, calls

    def _apply_delta(self, rows: list[VisibilityRow]) -> None:
        listing = self._list
        for row in rows:
            entity = row.entity
            is_release = entity.kind is EntityKind.RELEASE
            if listing is not None and is_release and merge_row(listing.rows, row):
                listing.dirty = True
            snapshot = self._releases.get(entity.release_id)
            if snapshot is not None and merge_row(snapshot.rows, row):
                snapshot.dirty = True
                if listing is not None and entity.release_id in listing.rows:
                    listing.dirty = True

    def _apply_resync(
        self,
        snapshot: ReleaseSnapshot | ListSnapshot,
        rows: list[VisibilityRow],
        started_at: datetime,
    ) -> None:
        mono = self._clock.monotonic()
        snapshot.loaded_mono = mono
        if isinstance(snapshot, ReleaseSnapshot) and not rows:
            # The release is gone (deleted, or a dev server restarted without its database).
            self._releases.pop(snapshot.release_id, None)
            self._missing[snapshot.release_id] = mono
            self._list_follows(snapshot.release_id)
            return
        snapshot.replace_rows(rows_by_id(rows))
        snapshot.covered_at = started_at
        if isinstance(snapshot, ReleaseSnapshot) and snapshot.dirty:
            self._list_follows(snapshot.release_id)

    async def run(self) -> None:
        """Refresh forever, every `refresh_seconds`, backing off while Temporal fails."""
        failures = 0
        while True:
            began = self._clock.monotonic()
            try:
                await self.refresh_once()
                failures = 0
                pause = self.policy.refresh_seconds
            except RelmgrError as exc:
                failures += 1
                pause = min(
                    self.policy.refresh_seconds * 2 ** (failures - 1),
                    max(self.policy.refresh_seconds, MAX_BACKOFF_SECONDS),
                )
                log.warning("refresh failed (%d in a row): %s", failures, exc.message)
            except Exception as exc:  # a bug must not stop every later refresh: log, flag, go on
                failures += 1
                self._fail(
                    TemporalUnavailableError(f"the refresher failed: {exc!r}"), self._clock.now()
                )
                log.exception("refresh cycle crashed")
                pause = max(self.policy.refresh_seconds, MAX_BACKOFF_SECONDS)
            # Fixed rate: a cycle starts every `pause` seconds, whatever the last one took.
            elapsed = self._clock.monotonic() - began
            await self._clock.sleep(max(0.0, pause - elapsed))
