"""The tree builder: the plan gives the shape, workflows give the states, roll-ups add up."""

from __future__ import annotations

from datetime import timedelta

from relmgr.hierarchy import build_hierarchy, plan_children
from relmgr.models import Entity, EntityKind, EntityState, StateCounts
from relmgr.testing.factories import T0, make_hierarchy, make_plan

R = "rel-tree"
B1 = f"{R}.wave-1.cluster-c1.bundle-core"


def _entity(entity_id: str, kind: EntityKind, parent: str | None, state: EntityState) -> Entity:
    return Entity(
        id=entity_id,
        kind=kind,
        release_id=R,
        parent_id=parent,
        state=state,
        started_at=T0,
        last_changed_at=T0,
        finished_at=T0 if state.is_terminal else None,
    )


def test_a_release_with_no_workflows_yet_shows_its_whole_plan_as_pending() -> None:
    """From the plan alone: 1,206 entities, every one PENDING and not started."""
    tree = build_hierarchy(R, make_plan(5, 20, 10), {}, read_at=T0)
    nodes = list(tree.entities())
    assert len(nodes) == 1206
    assert {n.state for n in nodes} == {EntityState.PENDING}
    assert not any(n.started for n in nodes)
    assert tree.release.rollup.apps == StateCounts(pending=1000)
    assert tree.release.rollup.children == StateCounts(pending=5)


def test_states_come_from_workflows_and_roll_up_at_every_level() -> None:
    """One app succeeded, one retrying: bundle, cluster, wave and release count them."""
    records = {
        R: _entity(R, EntityKind.RELEASE, None, EntityState.IN_PROGRESS),
        f"{R}.wave-1": _entity(f"{R}.wave-1", EntityKind.WAVE, R, EntityState.IN_PROGRESS),
        f"{R}.wave-1.cluster-c1": _entity(
            f"{R}.wave-1.cluster-c1", EntityKind.CLUSTER, f"{R}.wave-1", EntityState.IN_PROGRESS
        ),
        B1: _entity(B1, EntityKind.BUNDLE, f"{R}.wave-1.cluster-c1", EntityState.IN_PROGRESS),
        f"{B1}.app-a1": _entity(f"{B1}.app-a1", EntityKind.APP, B1, EntityState.SUCCEEDED),
        f"{B1}.app-a2": _entity(f"{B1}.app-a2", EntityKind.APP, B1, EntityState.RETRYING),
    }
    tree = build_hierarchy(R, make_plan(2, 2, 2), records, read_at=T0)
    bundle = tree.release.waves[0].clusters[0].bundle
    assert bundle.rollup.children == StateCounts(succeeded=1, retrying=1)
    assert tree.release.waves[0].rollup.apps == StateCounts(succeeded=1, retrying=1, pending=2)
    assert tree.release.rollup.apps == StateCounts(succeeded=1, retrying=1, pending=6)
    assert tree.release.rollup.percent_complete == 12.5
    assert [n.id for n in tree.needs_attention()] == [f"{B1}.app-a2"]


def test_unstarted_children_of_a_finished_parent_show_as_cancelled() -> None:
    """A failed release's waves that never ran are CANCELLED, not forever PENDING."""
    records = {R: _entity(R, EntityKind.RELEASE, None, EntityState.FAILED)}
    tree = build_hierarchy(R, make_plan(2, 1, 1), records, read_at=T0)
    assert [w.state for w in tree.release.waves] == [EntityState.CANCELLED] * 2
    assert tree.release.waves[0].started is False
    # Deeper placeholders hang below a placeholder that is itself CANCELLED.
    assert tree.release.waves[0].clusters[0].bundle.apps[0].state is EntityState.CANCELLED


def test_workflows_the_plan_does_not_name_still_appear_under_their_parent() -> None:
    """An extra app started by hand is shown after the planned ones."""
    extra = f"{B1}.app-zz-hotfix"
    records = {extra: _entity(extra, EntityKind.APP, B1, EntityState.IN_PROGRESS)}
    tree = build_hierarchy(R, make_plan(1, 1, 2), records, read_at=T0)
    apps = tree.release.waves[0].clusters[0].bundle.apps
    assert [a.name for a in apps] == ["a1", "a2", "zz-hotfix"]


def test_without_a_plan_the_tree_comes_from_the_workflows_alone() -> None:
    """A release whose plan memo is missing still shows what has started."""
    records = {
        R: _entity(R, EntityKind.RELEASE, None, EntityState.IN_PROGRESS),
        f"{R}.wave-1": _entity(f"{R}.wave-1", EntityKind.WAVE, R, EntityState.IN_PROGRESS),
    }
    tree = build_hierarchy(R, None, records, read_at=T0)
    assert [w.id for w in tree.release.waves] == [f"{R}.wave-1"]
    assert tree.release.waves[0].clusters == ()


def test_revision_changes_with_any_state_change_and_only_then() -> None:
    """Same states give the same revision; one app changing gives another."""
    a = make_hierarchy("rev")
    b = make_hierarchy("rev", read_at=T0 + timedelta(hours=5))
    c = make_hierarchy(
        "rev", states={"rel-rev.wave-2.cluster-c2.bundle-core.app-a2": EntityState.FAILED}
    )
    assert a.revision == b.revision
    assert a.revision != c.revision


def test_plan_children_is_a_fresh_copy_each_time() -> None:
    """The IDs come from a cache, yet what a caller appends never reaches the next caller."""
    plan = make_plan(1, 1, 2)
    first = plan_children("rel-a", plan)
    first["rel-a"].append("rel-a.wave-9")
    first["rel-a.wave-9"].append("rel-a.wave-9.cluster-x")
    second = plan_children("rel-a", plan)
    assert second["rel-a"] == ["rel-a.wave-1"]
    assert "rel-a.wave-9" not in second
    assert second["rel-a.wave-1.cluster-c1.bundle-core"] == [
        "rel-a.wave-1.cluster-c1.bundle-core.app-a1",
        "rel-a.wave-1.cluster-c1.bundle-core.app-a2",
    ]
