"""Builders of release plans and trees for tests that do not need a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relmgr import ids
from relmgr.hierarchy import build_hierarchy, plan_children
from relmgr.models import Entity, EntityState, ReleaseHierarchy, ReleasePlan

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_plan(waves: int = 2, clusters: int = 2, apps: int = 2) -> ReleasePlan:
    """A plan of `waves` x `clusters` x 1 bundle x `apps`, with the short names c1.., a1.."""
    return ReleasePlan.uniform(
        waves=waves,
        clusters=[f"c{c + 1}" for c in range(clusters)],
        apps=[f"a{a + 1}" for a in range(apps)],
    )


def make_hierarchy(
    name: str = "demo",
    *,
    waves: int = 2,
    clusters: int = 2,
    apps: int = 2,
    states: dict[str, EntityState] | None = None,
    default: EntityState | None = EntityState.SUCCEEDED,
    errors: dict[str, str] | None = None,
    started_at: datetime = T0,
    read_at: datetime | None = None,
) -> ReleaseHierarchy:
    """A tree in which every planned entity has a workflow in `default` state (None: not started),
    except those named in `states`; `errors` gives last errors by ID."""
    release_id = ids.release_id(name)
    plan = make_plan(waves, clusters, apps)
    all_ids = [release_id] + [c for kids in plan_children(release_id, plan).values() for c in kids]
    states = states or {}
    errors = errors or {}
    records: dict[str, Entity] = {}
    for offset, entity_id in enumerate(all_ids):
        state = states.get(entity_id, default)
        if state is None:
            continue
        ref = ids.parse_entity_id(entity_id)
        changed = started_at + timedelta(seconds=offset)
        records[entity_id] = Entity(
            id=entity_id,
            kind=ref.kind,
            release_id=ref.release_id,
            parent_id=ref.parent_id,
            state=state,
            started_at=started_at,
            last_changed_at=changed,
            finished_at=changed if state.is_terminal else None,
            attempt=2 if entity_id in errors else 1,
            last_error=errors.get(entity_id),
        )
    return build_hierarchy(release_id, plan, records, read_at=read_at or T0 + timedelta(hours=1))
