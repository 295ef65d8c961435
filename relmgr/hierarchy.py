"""Builds a release tree from its plan and what visibility says of each workflow (pure, no I/O).

The plan gives the whole shape from the release's first second; each entity that has a workflow
takes its state from it, the others are placeholders: PENDING while their parent can still start
them, CANCELLED (never ran) once their parent has finished.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from relmgr import ids
from relmgr.models import (
    App,
    Bundle,
    Cluster,
    Entity,
    EntityKind,
    EntityState,
    Release,
    ReleaseHierarchy,
    ReleasePlan,
    Rollup,
    StateCounts,
    TreeNode,
    Wave,
)

_CHILD_KIND = {
    EntityKind.RELEASE: EntityKind.WAVE,
    EntityKind.WAVE: EntityKind.CLUSTER,
    EntityKind.CLUSTER: EntityKind.BUNDLE,
    EntityKind.BUNDLE: EntityKind.APP,
}


def plan_children(release_id: str, plan: ReleasePlan) -> dict[str, list[str]]:
    """Every planned entity ID keyed by its parent's ID, in plan order."""
    children: dict[str, list[str]] = defaultdict(list)
    for number, wave in enumerate(plan.waves, start=1):
        wave_id = ids.wave_id(release_id, number)
        children[release_id].append(wave_id)
        for cluster in wave.clusters:
            cluster_id = ids.cluster_id(wave_id, cluster.name)
            bundle_id = ids.bundle_id(cluster_id, cluster.bundle.name)
            children[wave_id].append(cluster_id)
            children[cluster_id].append(bundle_id)
            children[bundle_id].extend(ids.app_id(bundle_id, app) for app in cluster.bundle.apps)
    return children


def _placeholder(entity_id: str, parent: Entity | None) -> Entity:
    ref = ids.parse_entity_id(entity_id)
    parent_done = parent is not None and parent.state.is_terminal
    return Entity(
        id=entity_id,
        kind=ref.kind,
        release_id=ref.release_id,
        parent_id=ref.parent_id,
        state=EntityState.CANCELLED if parent_done else EntityState.PENDING,
        finished_at=parent.finished_at if parent_done and parent is not None else None,
        started=False,
    )


def revision_of(entities: Iterable[Entity]) -> str:
    """A short digest that changes whenever any entity's visible state changes."""
    digest = hashlib.blake2b(digest_size=12)
    for e in entities:
        stamp = e.last_changed_at.isoformat() if e.last_changed_at else "-"
        digest.update(f"{e.id}|{e.state}|{stamp}|{e.attempt}|{e.started}\n".encode())
    return digest.hexdigest()


def build_hierarchy(
    release_id: str,
    plan: ReleasePlan | None,
    records: Mapping[str, Entity],
    *,
    read_at: datetime,
) -> ReleaseHierarchy:
    """The release tree: plan order first, then any workflow the plan does not name, by ID."""
    children = plan_children(release_id, plan) if plan is not None else defaultdict(list)
    planned = {child for kids in children.values() for child in kids}
    for entity_id in sorted(records):
        entity = records[entity_id]
        if entity_id not in planned and entity.parent_id is not None:
            children[entity.parent_id].append(entity_id)
    release_record = records.get(release_id) or _placeholder(release_id, None)
    seen: list[Entity] = []
    root = _build(release_record, children, records, seen)
    assert isinstance(root, Release)
    return ReleaseHierarchy(release=root, read_at=read_at, revision=revision_of(seen))


def _build(
    entity: Entity,
    children: Mapping[str, list[str]],
    records: Mapping[str, Entity],
    seen: list[Entity],
) -> TreeNode:
    seen.append(entity)
    expected = _CHILD_KIND.get(entity.kind)
    nodes: list[TreeNode] = []
    for child_id in children.get(entity.id, ()):
        child = records.get(child_id) or _placeholder(child_id, entity)
        if child.kind is expected:
            nodes.append(_build(child, children, records, seen))
    fields = entity.model_dump()
    if entity.kind is EntityKind.APP:
        return App(**fields, rollup=Rollup(apps=StateCounts.of([entity.state])))
    direct = StateCounts.of([n.state for n in nodes])
    apps = sum((n.rollup.apps for n in nodes), StateCounts())
    rollup = Rollup(children=direct, apps=apps)
    if entity.kind is EntityKind.BUNDLE:
        return Bundle(**fields, rollup=rollup, apps=tuple(n for n in nodes if isinstance(n, App)))
    if entity.kind is EntityKind.CLUSTER:
        bundles = [n for n in nodes if isinstance(n, Bundle)]
        bundle = bundles[0] if bundles else _empty_bundle(entity)
        return Cluster(**fields, rollup=rollup, bundle=bundle)
    if entity.kind is EntityKind.WAVE:
        clusters = tuple(n for n in nodes if isinstance(n, Cluster))
        return Wave(**fields, rollup=rollup, clusters=clusters)
    waves = tuple(n for n in nodes if isinstance(n, Wave))
    return Release(**fields, rollup=rollup, waves=waves)


def _empty_bundle(cluster: Entity) -> Bundle:
    # Only reachable without a plan, before the cluster's bundle workflow has appeared.
    bundle_id = f"{cluster.id}.bundle-unknown"
    return Bundle(
        id=bundle_id,
        kind=EntityKind.BUNDLE,
        release_id=cluster.release_id,
        parent_id=cluster.id,
        state=EntityState.PENDING,
        started=False,
    )
