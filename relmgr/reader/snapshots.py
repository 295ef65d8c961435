"""Snapshots: the rows of one watched release (or of every release) and what is built from them.

Rows are merged by workflow ID and an older row never replaces a newer one (see
`VisibilityRow.order`), so deltas, resyncs and cold loads can arrive in any order. Building the
tree (or the release list's summaries) happens only when a merge changed something.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from relmgr.hierarchy import build_hierarchy
from relmgr.models import (
    EntityKind,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleasePlan,
    ReleaseQuery,
    ReleaseSummary,
)
from relmgr.reader.listing import page_releases, summary_of
from relmgr.reader.queries import release_list_query, release_query
from relmgr.reader.rows import VisibilityRow, summary_of_row

log = logging.getLogger(__name__)
# How many distinct release-list pages are kept ready between two refreshes.
_PAGE_CACHE_SIZE = 256


def merge_row(rows: dict[str, VisibilityRow], row: VisibilityRow) -> bool:
    """Put `row` in `rows` unless an equal or newer row of its workflow is there.

    True if `rows` changed.
    """
    old = rows.get(row.id)
    if old is not None and (row.is_older_than(old) or row == old):
        return False
    rows[row.id] = row
    return True


def rows_by_id(rows: Iterable[VisibilityRow]) -> dict[str, VisibilityRow]:
    """The newest row of each workflow ID (a list may hold several runs of one ID)."""
    merged: dict[str, VisibilityRow] = {}
    for row in rows:
        merge_row(merged, row)
    return merged


@dataclass(eq=False)
class Snapshot:
    """The rows of one watched thing and the bookkeeping the refresher needs."""

    rows: dict[str, VisibilityRow]
    # Start of the last successful call that covered this snapshot: the next delta starts here,
    # and it is the `read_at` of everything served from the snapshot.
    covered_at: datetime
    loaded_mono: float
    last_read_mono: float
    dirty: bool = True

    @property
    def read_at(self) -> datetime:
        """When the data was last confirmed current."""
        return self.covered_at

    def replace_rows(self, fresh: dict[str, VisibilityRow]) -> None:
        """Take a full re-read, keeping any row a concurrent delta already made newer."""
        for workflow_id, old in self.rows.items():
            new = fresh.get(workflow_id)
            if new is not None and new.is_older_than(old):
                fresh[workflow_id] = old
        if fresh != self.rows:
            self.rows = fresh
            self.dirty = True


@dataclass(eq=False)
class ReleaseSnapshot(Snapshot):
    """One watched release: its rows, its plan (parsed once per run), its tree."""

    release_id: str = ""
    hierarchy: ReleaseHierarchy | None = None
    _plan_source: tuple[str, bytes] | None = None
    _plan: ReleasePlan | None = None
    _summary: ReleaseSummary | None = None

    def full_query(self) -> str:
        """The query that lists the whole release."""
        return release_query(self.release_id)

    def plan(self) -> ReleasePlan | None:
        """The release's plan from its memo; parsed again only if the memo changed."""
        row = self.rows.get(self.release_id)
        if row is None or row.plan_json is None:
            return self._plan
        source = (row.run_id, row.plan_json)
        if source != self._plan_source:
            try:
                self._plan = ReleasePlan.model_validate_json(row.plan_json)
            except ValidationError as exc:
                log.warning("release %s has an unreadable plan memo: %s", self.release_id, exc)
                self._plan = None
            self._plan_source = source
        return self._plan

    def rebuild(self) -> None:
        """Build the tree from the rows and the plan."""
        records = {workflow_id: row.entity for workflow_id, row in self.rows.items()}
        self.hierarchy = build_hierarchy(
            self.release_id, self.plan(), records, read_at=self.read_at
        )
        self._summary = None
        self.dirty = False

    def restamp(self) -> None:
        """Carry a new `read_at` without rebuilding (a shallow copy of the root)."""
        if self.hierarchy is not None and self.hierarchy.read_at != self.read_at:
            self.hierarchy = self.hierarchy.model_copy(update={"read_at": self.read_at})

    def tree(self) -> ReleaseHierarchy:
        """The current tree."""
        if self.hierarchy is None or self.dirty:
            self.rebuild()
        assert self.hierarchy is not None
        return self.hierarchy

    def summary(self) -> ReleaseSummary:
        """The release's summary with exact counts from its tree."""
        if self._summary is None:
            summary = summary_of(self.tree())
            row = self.rows.get(self.release_id)
            if row is not None:
                # What only the release's memo says: its controls, held apps and trail.
                listed = summary_of_row(row)
                summary = summary.model_copy(
                    update={"controls": listed.controls, "held": listed.held, "audit": listed.audit}
                )
            self._summary = summary
        return self._summary


@dataclass(eq=False)
class ListSnapshot(Snapshot):
    """Every release row, for the release list; pages are cut in memory and kept until a change.

    A release with a watched tree in `trees` (the cache's own dict: every running release on the
    list, and any release someone has open) is summarised from that tree, so the list and the
    tree agree; any other release (closed, hence final) from its row's memo.
    """

    trees: Mapping[str, ReleaseSnapshot] = field(default_factory=dict)
    summaries: dict[str, ReleaseSummary] = field(default_factory=dict)
    _pages: dict[ReleaseQuery, ReleaseListPage] = field(default_factory=dict)

    def full_query(self) -> str:
        """The query that lists every release row."""
        return release_list_query()

    def running_ids(self) -> list[str]:
        """The releases on the list that have not ended, by their own rows."""
        return sorted(
            workflow_id
            for workflow_id, row in self.rows.items()
            if row.entity.kind is EntityKind.RELEASE and not row.entity.state.is_terminal
        )

    def rebuild(self) -> None:
        """Summaries from watched trees, else from the rows' memos (never parsing a plan)."""
        summaries: dict[str, ReleaseSummary] = {}
        for workflow_id, row in self.rows.items():
            if row.entity.kind is not EntityKind.RELEASE:
                continue
            tree = self.trees.get(workflow_id)
            summaries[workflow_id] = tree.summary() if tree is not None else summary_of_row(row)
        self.summaries = summaries
        self._pages.clear()
        self.dirty = False

    def restamp(self) -> None:
        """Pages carry their own `read_at`; they are re-stamped when served."""

    def page(self, query: ReleaseQuery) -> ReleaseListPage:
        """One page of the list, stamped with the snapshot's `read_at`."""
        if self.dirty:
            self.rebuild()
        page = self._pages.get(query)
        if page is None:
            if len(self._pages) >= _PAGE_CACHE_SIZE:
                self._pages.clear()
            page = page_releases(self.summaries.values(), query, read_at=self.read_at)
            self._pages[query] = page
        if page.read_at != self.read_at:
            page = page.model_copy(update={"read_at": self.read_at})
            self._pages[query] = page
        return page
