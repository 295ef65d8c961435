"""The timeline and its finish estimate, fed recorded timings."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from relmgr import ids
from relmgr.hierarchy import build_hierarchy, plan_children
from relmgr.models import Entity, EntityState, ReleaseHierarchy, ReleaseSummary, StateCounts
from relmgr.progress.timeline import EstimateStatus, build_timeline, critical_path_apps
from relmgr.testing.factories import T0, make_plan

S = EntityState.SUCCEEDED
P = EntityState.IN_PROGRESS
NOW = T0 + timedelta(hours=1)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def timed_tree(
    name: str,
    times: dict[str, tuple[EntityState, float, float | None]],
    *,
    waves: int = 3,
    clusters: int = 2,
    apps: int = 4,
    read_at: datetime = NOW,
) -> ReleaseHierarchy:
    """A tree whose entities (IDs relative to the release, "" for the release itself) have the
    given state, start and finish (seconds after T0); the others have not started."""
    release_id = ids.release_id(name)
    plan = make_plan(waves, clusters, apps)
    planned = {release_id} | {c for kids in plan_children(release_id, plan).values() for c in kids}
    records: dict[str, Entity] = {}
    for suffix, (state, start, finish) in times.items():
        entity_id = f"{release_id}.{suffix}" if suffix else release_id
        assert entity_id in planned, entity_id
        ref = ids.parse_entity_id(entity_id)
        records[entity_id] = Entity(
            id=entity_id,
            kind=ref.kind,
            release_id=ref.release_id,
            parent_id=ref.parent_id,
            state=state,
            started_at=at(start),
            finished_at=at(finish) if finish is not None else None,
            last_changed_at=at(finish if finish is not None else start),
        )
    return build_hierarchy(release_id, plan, records, read_at=read_at)


def cluster_times(
    wave: int, cluster: str, start: float, per_app: float, done: int, apps: int = 4
) -> dict[str, tuple[EntityState, float, float | None]]:
    """A cluster, its bundle and its apps: `done` apps succeeded `per_app` seconds apart (one
    at a time), the next one running; the cluster finished if all `apps` are done."""
    base = f"wave-{wave}.cluster-{cluster}"
    finished = done == apps
    end = start + per_app * apps if finished else None
    times: dict[str, tuple[EntityState, float, float | None]] = {
        base: (S if finished else P, start, end),
        f"{base}.bundle-core": (S if finished else P, start, end),
    }
    for number in range(1, apps + 1):
        app_start = start + per_app * (number - 1)
        if number <= done:
            times[f"{base}.bundle-core.app-a{number}"] = (S, app_start, app_start + per_app)
        elif number == done + 1:
            times[f"{base}.bundle-core.app-a{number}"] = (P, app_start, None)
    return times


def running_release() -> ReleaseHierarchy:
    """3 waves x 2 clusters x 4 apps: wave 1 done (clusters at 100 and 120 s per app), wave 2
    running (c1 2 of 4 apps done, c2 3 of 4), wave 3 not started."""
    times: dict[str, tuple[EntityState, float, float | None]] = {
        "": (P, 0, None),
        "wave-1": (S, 0, 480),
        "wave-2": (P, 500, None),
    }
    times |= cluster_times(1, "c1", 0, 100, 4)
    times |= cluster_times(1, "c2", 0, 120, 4)
    times |= cluster_times(2, "c1", 500, 100, 2)
    times |= cluster_times(2, "c2", 500, 100, 3)
    return timed_tree("run", times)


def test_the_estimate_is_the_remaining_critical_path_at_the_median_pace_widened_for_few() -> None:
    """Two finished clusters (100 and 120 s/app), 6 apps left (2 in wave 2, 4 in wave 3): the
    estimate is now + 6 x 110 s, its range 6 x 75 s to 6 x 150 s (widened 25 % for few samples)."""
    timeline = build_timeline(running_release())
    assert timeline.estimate is EstimateStatus.ESTIMATED
    assert timeline.estimated_finish_at == NOW + timedelta(seconds=660)
    assert timeline.estimated_finish_low == NOW + timedelta(seconds=450)
    assert timeline.estimated_finish_high == NOW + timedelta(seconds=900)
    assert timeline.release.estimated_finish_at == timeline.estimated_finish_at
    assert timeline.pace_samples == 2
    assert timeline.similar_releases == 0
    assert timeline.estimate_basis.startswith(
        "6 apps left on the critical path at the median pace of 2 finished clusters"
    )
    assert "widened 25 %" in timeline.estimate_basis


def test_waves_and_clusters_carry_real_times_durations_and_estimates() -> None:
    """Finished bars have their real times and durations; unfinished ones their estimates,
    chained wave after wave at the median pace."""
    timeline = build_timeline(running_release())
    wave1, wave2, wave3 = timeline.waves
    assert (wave1.started_at, wave1.finished_at, wave1.duration_seconds) == (at(0), at(480), 480)
    assert (wave1.estimated_start_at, wave1.estimated_finish_at) == (None, None)
    assert [c.duration_seconds for c in wave1.clusters] == [400, 480]
    assert wave1.clusters[1].bundle.duration_seconds == 480
    assert wave1.clusters[0].apps.succeeded == 4

    assert wave2.started_at == at(500)
    assert wave2.duration_seconds is None
    assert wave2.estimated_start_at is None  # it has started
    # c1 has 2 apps left, c2 1: at 110 s each from now.
    assert [c.estimated_finish_at for c in wave2.clusters] == [
        NOW + timedelta(seconds=220),
        NOW + timedelta(seconds=110),
    ]
    assert wave2.estimated_finish_at == NOW + timedelta(seconds=220)
    assert wave3.started_at is None
    assert wave3.estimated_start_at == NOW + timedelta(seconds=220)
    assert wave3.estimated_finish_at == NOW + timedelta(seconds=660)
    assert {c.estimated_start_at for c in wave3.clusters} == {NOW + timedelta(seconds=220)}
    assert timeline.current_wave == 2
    assert timeline.waves_total == 3
    assert timeline.release.percent_complete == round(100 * 13 / 24, 1)


def test_three_or_more_paces_give_the_fastest_to_slowest_range_unwidened() -> None:
    """Wave 1 of 3 clusters (80, 100, 150 s/app) finished, wave 2 not started: 4 apps left per
    wave for 2 waves, so now + 8 x 100 s in 8 x 80 s to 8 x 150 s."""
    times: dict[str, tuple[EntityState, float, float | None]] = {
        "": (P, 0, None),
        "wave-1": (S, 0, 600),
    }
    times |= cluster_times(1, "c1", 0, 80, 4)
    times |= cluster_times(1, "c2", 0, 100, 4)
    times |= cluster_times(1, "c3", 0, 150, 4)
    timeline = build_timeline(timed_tree("three", times, clusters=3))
    assert timeline.estimated_finish_at == NOW + timedelta(seconds=800)
    assert timeline.estimated_finish_low == NOW + timedelta(seconds=640)
    assert timeline.estimated_finish_high == NOW + timedelta(seconds=1200)
    assert "fastest-slowest pace" in timeline.estimate_basis


def summary(
    name: str,
    seconds: float | None,
    *,
    state: EntityState = S,
    waves: int = 2,
    clusters: int = 4,
    apps: int = 12,
    days_ago: int = 1,
) -> ReleaseSummary:
    """A release of the list (`clusters` and `apps` over all its waves) that started `days_ago`
    days before T0 and ran `seconds`."""
    start = T0 - timedelta(days=days_ago)
    return ReleaseSummary(
        id=ids.release_id(name),
        kind="release",
        release_id=ids.release_id(name),
        state=state,
        started_at=start,
        finished_at=start + timedelta(seconds=seconds) if seconds is not None else None,
        waves_total=waves,
        clusters_total=clusters,
        apps=StateCounts(succeeded=apps),
    )


def test_a_release_without_a_finished_cluster_is_estimated_from_earlier_ones_of_its_shape() -> None:
    """No cluster finished yet; three earlier 2-wave 4-cluster 12-app releases took 600, 900 and
    1200 s over a 6-app critical path (100, 150, 200 s/app); a failed one, a 3-wave one, a
    6-cluster one and a 13-app one do not count. All 6 apps are left: now + 900 s, in 600-1200 s."""
    tree = timed_tree("fresh", {"": (P, 3500, None)}, waves=2, clusters=2, apps=3)
    assert critical_path_apps(tree.release.waves) == 6
    history = [
        summary("a", 600),
        summary("b", 900),
        summary("c", 1200),
        summary("failed", 60, state=EntityState.FAILED),
        summary("bigger", 60, waves=3),
        summary("more-clusters", 60, clusters=6),
        summary("more-apps", 60, apps=13),
        summary("running", None, state=P),
    ]
    timeline = build_timeline(tree, history)
    assert timeline.estimate is EstimateStatus.ESTIMATED
    assert timeline.estimated_finish_at == NOW + timedelta(seconds=900)
    assert timeline.estimated_finish_low == NOW + timedelta(seconds=600)
    assert timeline.estimated_finish_high == NOW + timedelta(seconds=1200)
    assert (timeline.pace_samples, timeline.similar_releases) == (0, 3)
    assert "3 earlier releases of 2 waves x 4 clusters x 12 apps" in timeline.estimate_basis
    assert timeline.waves[0].estimated_start_at == NOW
    assert timeline.waves[1].estimated_finish_at == NOW + timedelta(seconds=900)


def test_no_finished_cluster_and_no_history_says_no_estimate_yet() -> None:
    """A release that has only just started has nothing to estimate from."""
    tree = timed_tree("new", {"": (P, 3500, None), "wave-1": (P, 3500, None)})
    timeline = build_timeline(tree, [summary("other-shape", 100, waves=9)])
    assert timeline.estimate is EstimateStatus.NO_ESTIMATE_YET
    assert timeline.estimate_basis.startswith("no estimate yet")
    assert timeline.estimated_finish_at is None
    assert timeline.estimated_finish_low is None
    assert all(w.estimated_finish_at is None for w in timeline.waves)


def test_a_finished_release_has_durations_and_no_estimate() -> None:
    """Once the release succeeded its estimate is null and its duration is close - start."""
    times: dict[str, tuple[EntityState, float, float | None]] = {
        "": (S, 0, 1000),
        "wave-1": (S, 0, 1000),
    }
    times |= cluster_times(1, "c1", 0, 100, 4)
    times |= cluster_times(1, "c2", 0, 100, 4)
    timeline = build_timeline(timed_tree("done", times, waves=1))
    assert timeline.estimate is EstimateStatus.FINISHED
    assert timeline.estimated_finish_at is None
    assert timeline.release.duration_seconds == 1000
    assert timeline.estimate_basis == "finished at 2026-11-26 12:16:40 UTC"
    assert timeline.current_wave is None


def test_a_failed_or_cancelled_release_has_no_estimate() -> None:
    """A stopped release will not finish: no estimate, and the basis says why."""
    for state, verb in ((EntityState.FAILED, "failed"), (EntityState.CANCELLED, "was cancelled")):
        times: dict[str, tuple[EntityState, float, float | None]] = {"": (state, 0, 700)}
        times |= cluster_times(1, "c1", 0, 100, 4)
        timeline = build_timeline(timed_tree("stop", times))
        assert timeline.estimate is EstimateStatus.STOPPED
        assert timeline.estimated_finish_at is None
        assert timeline.estimate_basis == f"the release {verb} at 2026-11-26 12:11:40 UTC"


def started_records(tree: ReleaseHierarchy) -> dict[str, Entity]:
    """The entities of a tree that have a workflow, as the reader's records."""
    fields = tuple(Entity.model_fields)
    return {
        n.id: Entity(**{k: getattr(n, k) for k in fields}) for n in tree.entities() if n.started
    }


def test_a_running_release_with_a_failed_cluster_gets_no_estimate() -> None:
    """The wave (and so the release) fails once its other clusters end: no finish to predict."""
    tree = running_release()
    failed_id = "rel-run.wave-2.cluster-c2"
    records = started_records(tree)
    records[failed_id] = records[failed_id].model_copy(
        update={"state": EntityState.FAILED, "finished_at": NOW}
    )
    failing = build_hierarchy(tree.release.id, make_plan(3, 2, 4), records, read_at=NOW)
    timeline = build_timeline(failing)
    assert timeline.estimate is EstimateStatus.FAILING
    assert timeline.estimated_finish_at is None
    assert timeline.estimate_basis.startswith("cluster c2 failed")


class _Gate(StrEnum):
    """The approval-gate state, as another feature adds it to `EntityState`."""

    AWAITING_APPROVAL = "AWAITING_APPROVAL"

    @property
    def is_terminal(self) -> bool:
        return False

    @property
    def needs_attention(self) -> bool:
        return False


def test_a_release_waiting_for_approval_says_since_when_and_estimates_nothing() -> None:
    """However much history there is, a gate's wait depends on a person: no estimate."""
    awaiting = getattr(EntityState, "AWAITING_APPROVAL", _Gate.AWAITING_APPROVAL)
    tree = running_release()
    release = tree.release.model_copy(update={"state": awaiting, "last_changed_at": at(1800)})
    gated = tree.model_copy(update={"release": release})
    timeline = build_timeline(gated, [summary("a", 600, waves=3, clusters=6, apps=24)])
    assert timeline.estimate is EstimateStatus.WAITING
    assert timeline.estimated_finish_at is None
    assert timeline.estimated_finish_high is None
    assert timeline.estimate_basis == (
        "waiting for approval since 2026-11-26 12:30:00 UTC (the release); no finish estimate"
    )
    assert all(c.estimated_finish_at is None for w in timeline.waves for c in w.clusters)


def test_retrying_apps_count_as_left_and_the_basis_names_the_samples() -> None:
    """An app in RETRYING is still to deploy: it stays on the remaining path."""
    tree = running_release()
    app_id = "rel-run.wave-2.cluster-c2.bundle-core.app-a4"
    records = started_records(tree)
    records[app_id] = records[app_id].model_copy(update={"state": EntityState.RETRYING})
    retrying = build_hierarchy("rel-run", make_plan(3, 2, 4), records, read_at=NOW)
    assert build_timeline(retrying).estimated_finish_at == NOW + timedelta(seconds=660)
