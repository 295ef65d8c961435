"""Pure helpers both readers share: paging the release list and shaping entity details."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from relmgr import ids
from relmgr.hierarchy import revision_of
from relmgr.models import (
    Breadcrumb,
    Entity,
    EntityDetail,
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleaseQuery,
    ReleaseSort,
    ReleaseSummary,
    Rollup,
    StateCounts,
    children_of,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATE_ORDER = {state: rank for rank, state in enumerate(EntityState)}


def _sort_key(sort: ReleaseSort) -> object:
    if sort is ReleaseSort.ID:
        return lambda r: r.id
    if sort is ReleaseSort.STATE:
        return lambda r: (_STATE_ORDER[r.state], r.id)
    if sort is ReleaseSort.PERCENT_COMPLETE:
        return lambda r: (r.percent_complete, r.id)
    if sort is ReleaseSort.LAST_CHANGED_AT:
        return lambda r: (r.last_changed_at or r.started_at or _EPOCH, r.id)
    return lambda r: (r.started_at or _EPOCH, r.id)


def _apps_digest(counts: Iterable[ReleaseSummary | StateCounts]) -> str:
    digest = hashlib.blake2b(digest_size=6)
    for item in counts:
        apps = item.apps if isinstance(item, ReleaseSummary) else item
        digest.update(repr(tuple(apps.by_state().values())).encode())
    return digest.hexdigest()


def page_releases(
    releases: Iterable[ReleaseSummary], query: ReleaseQuery, *, read_at: datetime
) -> ReleaseListPage:
    """Search, filter, sort and cut one page; counts are over the search's releases, unfiltered."""
    searched = [r for r in releases if query.search is None or query.search in r.id]
    counts = StateCounts.of([r.state for r in searched])
    app_counts = sum((r.apps for r in searched), StateCounts())
    matching = [r for r in searched if query.state is None or r.state is query.state]
    matching.sort(key=_sort_key(query.sort), reverse=query.descending)  # type: ignore[arg-type]
    start = (query.page - 1) * query.page_size
    items = tuple(matching[start : start + query.page_size])
    return ReleaseListPage(
        items=items,
        total=len(matching),
        page=query.page,
        page_size=query.page_size,
        counts=counts,
        app_counts=app_counts,
        read_at=read_at,
        # App counts can change without a release's own state or time changing: they are part
        # of what the page shows, so part of its revision.
        revision=revision_of(items) + f"-{len(matching)}-{_apps_digest([*items, app_counts])}",
    )


def summary_of(hierarchy: ReleaseHierarchy) -> ReleaseSummary:
    """A release list row from a full tree (exact counts)."""
    release = hierarchy.release
    current = None
    for number, wave in enumerate(release.waves, start=1):
        if wave.started:
            current = number
    fields = Entity.model_validate(release.model_dump(include=set(Entity.model_fields)))
    # The release's own row moves only when the release workflow reports (a wave or cluster
    # ended); the tree's newest change is when anything in the release last changed.
    newest = hierarchy.last_changed_at()
    if newest is not None and (fields.last_changed_at is None or newest > fields.last_changed_at):
        fields = fields.model_copy(update={"last_changed_at": newest})
    return ReleaseSummary(
        **fields.model_dump(),
        waves_total=len(release.waves),
        clusters_total=release.clusters_total,
        current_wave=current,
        apps=release.rollup.apps,
    )


def breadcrumbs(entity_id: str) -> tuple[Breadcrumb, ...]:
    """The ancestors of an entity, release first."""
    ref = ids.parse_entity_id(entity_id)
    return tuple(Breadcrumb(id=a.id, kind=a.kind) for a in ref.ancestors())


def detail_from_tree(
    entity: Entity, hierarchy: ReleaseHierarchy | None, *, read_at: datetime
) -> EntityDetail:
    """An entity detail: the entity as given, children and roll-up from the tree if known."""
    node = hierarchy.find(entity.id) if hierarchy is not None else None
    children: tuple[Entity, ...] = ()
    rollup = Rollup()
    if node is not None:
        children = tuple(
            Entity.model_validate(c.model_dump(include=set(Entity.model_fields)))
            for c in children_of(node)
        )
        rollup = node.rollup
    elif entity.kind is EntityKind.APP:
        rollup = Rollup(apps=StateCounts.of([entity.state]))
    return EntityDetail(
        entity=Entity.model_validate(entity.model_dump(include=set(Entity.model_fields))),
        breadcrumbs=breadcrumbs(entity.id),
        children=children,
        rollup=rollup,
        read_at=read_at,
    )
