"""Domain models: states, counts, roll-ups, plans and the tree helpers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from relmgr.models import (
    Entity,
    EntityKind,
    EntityState,
    ReleaseHierarchy,
    ReleaseListPage,
    ReleasePlan,
    ReleaseQuery,
    ReleaseSummary,
    Rollup,
    StateCounts,
    entity_count,
    walk,
)
from relmgr.testing.factories import T0, make_hierarchy, make_plan
from tests.progress.test_timeline import running_release


def test_terminal_and_attention_states() -> None:
    """Only SUCCEEDED, FAILED and CANCELLED are terminal; FAILED and RETRYING need attention."""
    assert {s for s in EntityState if s.is_terminal} == {
        EntityState.SUCCEEDED,
        EntityState.FAILED,
        EntityState.CANCELLED,
    }
    assert {s for s in EntityState if s.needs_attention} == {
        EntityState.FAILED,
        EntityState.RETRYING,
    }


def test_state_counts_tally_add_and_total() -> None:
    """Counting states, adding counts and the derived totals agree."""
    counts = StateCounts.of([EntityState.SUCCEEDED, EntityState.SUCCEEDED, EntityState.FAILED])
    more = StateCounts(pending=2, retrying=1)
    total = counts + more
    assert total == StateCounts(pending=2, retrying=1, succeeded=2, failed=1)
    assert (total.total, total.finished) == (6, 3)
    assert total.get(EntityState.RETRYING) == 1


def test_percent_complete_is_succeeded_apps_over_all_apps() -> None:
    """3 of 8 apps deployed is 37.5 %; no apps is 0 %."""
    assert Rollup(apps=StateCounts(succeeded=3, failed=1, pending=4)).percent_complete == 37.5
    assert Rollup().percent_complete == 0.0
    apps = StateCounts(succeeded=1, failed=1, pending=1)
    summary = ReleaseSummary(id="rel-a", kind=EntityKind.RELEASE, release_id="rel-a", apps=apps)
    assert summary.percent_complete == Rollup(apps=apps).percent_complete == 33.3


def test_plan_counts_entities_as_the_contract_says() -> None:
    """A W x C x A plan has 1 + W + 2WC + WCA workflows and WCA apps."""
    plan = make_plan(waves=5, clusters=20, apps=10)
    assert plan.entity_count == 1 + 5 + 2 * 5 * 20 + 5 * 20 * 10 == 1206
    assert plan.app_count == 1000


def test_a_uniform_plan_gives_every_wave_the_same_clusters_and_apps() -> None:
    """`ReleasePlan.uniform` deploys the named apps, as one bundle, to each named cluster in
    each wave."""
    plan = ReleasePlan.uniform(waves=2, clusters=["x", "y"], apps=["p", "q", "r"], bundle="b")
    assert [[c.name for c in w.clusters] for w in plan.waves] == [["x", "y"], ["x", "y"]]
    bundles = {(c.bundle.name, c.bundle.apps) for w in plan.waves for c in w.clusters}
    assert bundles == {("b", ("p", "q", "r"))}
    assert plan.entity_count == entity_count(waves=2, clusters=4, apps=12) == 1 + 2 + 8 + 12


def test_models_are_frozen_and_refuse_unknown_fields() -> None:
    """A plan cannot be changed after creation nor built with a field it does not know."""
    plan = make_plan(1, 1, 1)
    with pytest.raises(ValidationError):
        plan.waves = ()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ReleasePlan.model_validate({"waves": [], "extra": 1})


@pytest.mark.parametrize("field", [{"page": 0}, {"page_size": 0}, {"page_size": 501}, {"page": -1}])
def test_release_query_refuses_out_of_range_paging(field: dict[str, int]) -> None:
    """Zero, negative and over-large paging values are refused."""
    with pytest.raises(ValidationError):
        ReleaseQuery.model_validate(field)


def test_list_page_counts_pages_rounding_up() -> None:
    """101 releases at 50 a page fill 3 pages; none fill 1."""
    page = ReleaseListPage(
        items=(), total=101, page=1, page_size=50, counts=StateCounts(), read_at=T0
    )
    assert page.pages == 3
    assert page.model_copy(update={"total": 0}).pages == 1


def test_walk_visits_parents_before_children_in_plan_order() -> None:
    """Depth-first order: release, wave 1, its cluster, bundle, apps, then wave 2."""
    tree = make_hierarchy("walk", waves=2, clusters=1, apps=2)
    order = [n.id.removeprefix("rel-walk") for n in walk(tree.release)]
    assert order == [
        "",
        ".wave-1",
        ".wave-1.cluster-c1",
        ".wave-1.cluster-c1.bundle-core",
        ".wave-1.cluster-c1.bundle-core.app-a1",
        ".wave-1.cluster-c1.bundle-core.app-a2",
        ".wave-2",
        ".wave-2.cluster-c1",
        ".wave-2.cluster-c1.bundle-core",
        ".wave-2.cluster-c1.bundle-core.app-a1",
        ".wave-2.cluster-c1.bundle-core.app-a2",
    ]
    assert tree.find("rel-walk.wave-2.cluster-c1") is not None
    assert tree.find("rel-walk.wave-3") is None


def test_a_trees_last_change_is_its_newest_entity_change() -> None:
    """The newest `last_changed_at` of any entity, not the release's own; None before any start."""
    tree = make_hierarchy("demo", waves=1, clusters=1, apps=2)
    stamps = [n.last_changed_at for n in walk(tree.release)]
    assert tree.release.last_changed_at == T0
    assert tree.last_changed_at() == max(s for s in stamps if s is not None)
    assert tree.last_changed_at() == T0 + timedelta(seconds=5)  # the sixth and last entity
    assert make_hierarchy("idle", default=None).last_changed_at() is None


def test_duration_is_finish_minus_start_and_null_without_both() -> None:
    """Every entity carries its duration in seconds once it has a start and a finish; a running
    entity (no finish) and a planned one (no start) have none, whatever the time of reading."""
    tree = running_release()
    wave_1, wave_2, wave_3 = tree.release.waves
    assert wave_1.duration_seconds == 480
    assert [c.duration_seconds for c in wave_1.clusters] == [400, 480]
    assert [a.duration_seconds for a in wave_1.clusters[0].bundle.apps] == [100] * 4
    assert tree.release.duration_seconds is None  # running
    assert wave_2.duration_seconds is None  # running
    assert wave_3.started is False
    assert wave_3.duration_seconds is None  # planned


def test_a_dumped_tree_parses_back_to_the_same_tree() -> None:
    """The duration is in every dumped node, and parsing the dump again gives an equal tree (the
    derived field is dropped on input, never refused nor believed)."""
    tree = running_release()
    dumped = tree.model_dump_json()
    cluster = json.loads(dumped)["release"]["waves"][0]["clusters"][1]
    assert (cluster["duration_seconds"], cluster["bundle"]["apps"][0]["duration_seconds"]) == (
        480.0,
        120.0,
    )
    assert ReleaseHierarchy.model_validate_json(dumped) == tree
    assert ReleaseHierarchy.model_validate(tree.model_dump()) == tree


def test_a_duration_given_on_input_is_ignored_but_other_unknown_fields_are_refused() -> None:
    """A stale or forged `duration_seconds` never replaces the one the times give."""
    fields = {"id": "rel-x", "kind": "release", "release_id": "rel-x", "started_at": T0}
    forged = Entity.model_validate(
        {**fields, "finished_at": T0 + timedelta(seconds=90), "duration_seconds": 5}
    )
    assert forged.duration_seconds == 90
    assert Entity.model_validate({**fields, "duration_seconds": 5}).duration_seconds is None
    with pytest.raises(ValidationError):
        Entity.model_validate({**fields, "durations": 5})
