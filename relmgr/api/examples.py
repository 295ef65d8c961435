"""Example bodies for the OpenAPI document, built from real models so they match the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from relmgr import ids
from relmgr.export import hierarchy_csv, releases_csv
from relmgr.hierarchy import build_hierarchy
from relmgr.models import (
    BundlePlan,
    ClusterPlan,
    Entity,
    EntityState,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleasePlan,
    StateCounts,
    WavePlan,
)
from relmgr.progress.timeline import build_timeline
from relmgr.reader.listing import detail_from_tree, summary_of

_T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_PLAN = ReleasePlan(
    waves=(
        WavePlan(
            clusters=(
                ClusterPlan(name="eu-1", bundle=BundlePlan(name="core", apps=("web", "api"))),
            )
        ),
    )
)


def _example_tree() -> ReleaseHierarchy:
    release = ids.release_id("2026-11-payments")
    wave = ids.wave_id(release, 1)
    cluster = ids.cluster_id(wave, "eu-1")
    bundle = ids.bundle_id(cluster, "core")
    web, api = ids.app_id(bundle, "web"), ids.app_id(bundle, "api")
    states = {
        release: EntityState.IN_PROGRESS,
        wave: EntityState.IN_PROGRESS,
        cluster: EntityState.IN_PROGRESS,
        bundle: EntityState.IN_PROGRESS,
        web: EntityState.SUCCEEDED,
        api: EntityState.RETRYING,
    }
    records: dict[str, Entity] = {}
    for offset, (entity_id, state) in enumerate(states.items()):
        ref = ids.parse_entity_id(entity_id)
        records[entity_id] = Entity(
            id=entity_id,
            kind=ref.kind,
            release_id=ref.release_id,
            parent_id=ref.parent_id,
            state=state,
            started_at=_T0,
            last_changed_at=_T0 + timedelta(seconds=offset),
            finished_at=_T0 + timedelta(seconds=offset) if state.is_terminal else None,
            attempt=2 if entity_id == api else 1,
            last_error="connection refused by eu-1 ingress" if entity_id == api else None,
        )
    return build_hierarchy(release, _PLAN, records, read_at=_T0 + timedelta(minutes=5))


TREE = _example_tree()
SUMMARY = summary_of(TREE)
PAGE = ReleaseListPage(
    items=(SUMMARY,),
    total=1,
    page=1,
    page_size=50,
    counts=StateCounts(in_progress=1),
    read_at=TREE.read_at,
)
APP_ID = TREE.release.waves[0].clusters[0].bundle.apps[1].id
ENTITY = detail_from_tree(TREE.release.waves[0].clusters[0], TREE, read_at=TREE.read_at)


def json_example(value: Any) -> dict[str, Any]:
    """An OpenAPI `content` entry for JSON with one example."""
    return {"application/json": {"example": value}}


def csv_example(text: str) -> dict[str, Any]:
    """An OpenAPI `content` entry for CSV with one example."""
    return {"text/csv": {"schema": {"type": "string"}, "example": text}}


RELEASES_CSV = releases_csv([SUMMARY], as_of=TREE.read_at)
HIERARCHY_CSV = hierarchy_csv(TREE)
TIMELINE = build_timeline(TREE)
