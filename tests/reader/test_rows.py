"""Decoding visibility records into entities, and building visibility queries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.workflow.v1 import WorkflowExecutionInfo

from relmgr.errors import InvalidIdError
from relmgr.models import (
    BundlePlan,
    ClusterPlan,
    EntityKind,
    EntityState,
    ReleasePlan,
    StateCounts,
    WavePlan,
)
from relmgr.reader.queries import delta_query, format_time, release_list_query, release_query
from relmgr.reader.rows import plan_clusters, row_from_info, summary_of_row
from relmgr.temporal.contract import MEMO_DETAIL, EntityMemo
from relmgr.testing.factories import make_plan
from relmgr.testing.fakes import T0, Status, workflow_info

APP = "rel-one.wave-1.cluster-c1.bundle-core.app-a1"
LATER = T0 + timedelta(minutes=3)


def test_a_running_entity_maps_its_attributes_and_memo() -> None:
    """Kind, release and parent from the ID; state and last change from the attributes."""
    row = row_from_info(
        workflow_info(
            APP,
            EntityState.RETRYING,
            changed_at=LATER,
            memo=EntityMemo(attempt=3, last_error="timeout"),
        )
    )
    assert row is not None
    entity = row.entity
    assert (entity.kind, entity.release_id, entity.parent_id) == (
        EntityKind.APP,
        "rel-one",
        "rel-one.wave-1.cluster-c1.bundle-core",
    )
    assert (entity.state, entity.attempt, entity.last_error) == (
        EntityState.RETRYING,
        3,
        "timeout",
    )
    assert (entity.started_at, entity.last_changed_at, entity.finished_at) == (T0, LATER, None)
    assert entity.started is True


def test_a_retrying_app_carries_its_maximum_and_next_retry_time() -> None:
    """`max_attempts` and `next_retry_at` from the memo reach the entity (the retry time only
    while the app is RETRYING)."""
    retry_at = LATER + timedelta(minutes=10)
    memo = EntityMemo(attempt=2, max_attempts=3, next_retry_at=retry_at, last_error="timeout")
    row = row_from_info(workflow_info(APP, EntityState.RETRYING, changed_at=LATER, memo=memo))
    assert row is not None
    assert (row.entity.attempt, row.entity.max_attempts, row.entity.next_retry_at) == (
        2,
        3,
        retry_at,
    )
    done = row_from_info(workflow_info(APP, EntityState.IN_PROGRESS, changed_at=LATER, memo=memo))
    assert done is not None
    assert (done.entity.max_attempts, done.entity.next_retry_at) == (3, None)


def test_a_delayed_release_carries_its_planned_start() -> None:
    """Visibility's execution time after the start time (a start delay) is the planned start;
    equal to it, there is none."""
    info = workflow_info("rel-one", EntityState.PENDING)
    info.execution_time.FromDatetime(T0 + timedelta(hours=6))
    row = row_from_info(info)
    assert row is not None
    assert row.entity.scheduled_for == T0 + timedelta(hours=6)
    plain = workflow_info("rel-one", EntityState.PENDING)
    plain.execution_time.FromDatetime(T0)
    row = row_from_info(plain)
    assert row is not None
    assert row.entity.scheduled_for is None


def test_a_published_terminal_state_finishes_at_its_last_change_until_closed() -> None:
    """SUCCEEDED published but the execution not closed yet: finished at the last change."""
    row = row_from_info(workflow_info(APP, EntityState.SUCCEEDED, changed_at=LATER))
    assert row is not None
    assert (row.entity.state, row.entity.finished_at) == (EntityState.SUCCEEDED, LATER)


def test_a_closed_execution_keeps_a_published_terminal_state() -> None:
    """A workflow that published FAILED and then completed stays FAILED, finished at close."""
    closed = LATER + timedelta(seconds=1)
    row = row_from_info(
        workflow_info(
            APP,
            EntityState.FAILED,
            changed_at=LATER,
            status=Status.WORKFLOW_EXECUTION_STATUS_COMPLETED,
            closed_at=closed,
        )
    )
    assert row is not None
    assert (row.entity.state, row.entity.finished_at) == (EntityState.FAILED, closed)


@pytest.mark.parametrize(
    ("status", "state", "error"),
    [
        (Status.WORKFLOW_EXECUTION_STATUS_COMPLETED, EntityState.SUCCEEDED, None),
        (Status.WORKFLOW_EXECUTION_STATUS_FAILED, EntityState.FAILED, "workflow failed"),
        (Status.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, EntityState.FAILED, "workflow timed out"),
        (Status.WORKFLOW_EXECUTION_STATUS_TERMINATED, EntityState.FAILED, "workflow terminated"),
        (Status.WORKFLOW_EXECUTION_STATUS_CANCELED, EntityState.CANCELLED, None),
    ],
)
def test_a_close_never_published_takes_the_execution_status(
    status: int, state: EntityState, error: str | None
) -> None:
    """IN_PROGRESS in the attributes but closed: the status decides, with a reason as error."""
    row = row_from_info(workflow_info(APP, EntityState.IN_PROGRESS, status=status, closed_at=LATER))
    assert row is not None
    assert (row.entity.state, row.entity.last_error, row.entity.finished_at) == (
        state,
        error,
        LATER,
    )


def test_continued_as_new_is_not_an_end() -> None:
    """The old run of a continued-as-new workflow keeps its published, running state."""
    row = row_from_info(
        workflow_info(
            APP,
            EntityState.IN_PROGRESS,
            status=Status.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
            closed_at=LATER,
        )
    )
    assert row is not None
    assert (row.entity.state, row.entity.finished_at) == (EntityState.IN_PROGRESS, None)


def test_a_release_row_carries_its_summary_and_raw_plan() -> None:
    """The release memo gives the list its counts; the plan stays raw bytes until needed."""
    plan = make_plan(2, 1, 3)
    memo = EntityMemo(current_wave=2, waves_total=2, apps=StateCounts(succeeded=3, pending=3))
    row = row_from_info(workflow_info("rel-one", EntityState.IN_PROGRESS, memo=memo, plan=plan))
    assert row is not None
    assert row.plan_json is not None
    summary = summary_of_row(row)
    assert (summary.current_wave, summary.waves_total, summary.apps.succeeded) == (2, 2, 3)
    assert summary.percent_complete == 50.0
    assert summary.clusters_total == 2


def test_a_release_rows_cluster_count_comes_from_its_plan_bytes() -> None:
    """Every wave's clusters count (a cluster or app named "bundle" does not, nor do spaces
    after a key change anything); no plan, or a plan that is not JSON, counts 0."""
    plan = ReleasePlan(
        waves=(
            WavePlan(
                clusters=(
                    ClusterPlan(name="bundle", bundle=BundlePlan(name="core", apps=("bundle",))),
                    ClusterPlan(name="c2", bundle=BundlePlan(name="bundle", apps=("a",))),
                )
            ),
            *make_plan(3, 5, 2).waves,
        )
    )
    row = row_from_info(workflow_info("rel-one", EntityState.IN_PROGRESS, plan=plan))
    assert row is not None
    assert (
        summary_of_row(row).clusters_total
        == 2 + 3 * 5
        == plan_clusters(
            Payload(
                metadata={"encoding": b"json/plain"}, data=json.dumps(plan.model_dump()).encode()
            )
        )
    )
    planless = row_from_info(workflow_info("rel-two", EntityState.IN_PROGRESS))
    assert planless is not None
    assert summary_of_row(planless).clusters_total == 0
    sealed = Payload(metadata={"encoding": b"binary/encrypted"}, data=b'"bundle":')
    assert plan_clusters(sealed) == 0


def test_foreign_workflows_and_odd_payloads_are_tolerated() -> None:
    """A non-relmgr workflow ID is skipped; an undecodable memo just leaves defaults."""
    foreign = WorkflowExecutionInfo()
    foreign.execution.workflow_id = "nightly-backup-cron"
    assert row_from_info(foreign) is None
    info = workflow_info(APP, None)
    info.memo.fields[MEMO_DETAIL].CopyFrom(
        Payload(metadata={"encoding": b"binary/encrypted"}, data=b"\x00\x01")
    )
    row = row_from_info(info)
    assert row is not None
    assert (row.entity.state, row.entity.attempt, row.entity.last_error) == (
        EntityState.IN_PROGRESS,
        0,
        None,
    )


def test_queries_quote_only_validated_ids() -> None:
    """Release IDs are validated before they are quoted into a query."""
    assert release_query("rel-a") == "RelmgrReleaseId = 'rel-a'"
    assert release_list_query() == "RelmgrKind = 'release'"
    with pytest.raises(InvalidIdError):
        release_query("rel-a' OR RelmgrKind != '")
    with pytest.raises(InvalidIdError):
        delta_query(T0, ["rel-a", "x' OR '1'='1"], include_release_list=False)


def test_a_delta_query_covers_changes_and_closes_in_scope() -> None:
    """Changed-or-closed since a time, in the listed releases and/or any release row."""
    since = datetime(2026, 11, 26, 13, 0, 0, 123456, tzinfo=UTC)
    assert format_time(since) == "2026-11-26T13:00:00.123456Z"
    assert delta_query(since, ["rel-b", "rel-a"], include_release_list=False) == (
        "(RelmgrLastChange >= '2026-11-26T13:00:00.123456Z' OR "
        "CloseTime >= '2026-11-26T13:00:00.123456Z') AND "
        "(RelmgrReleaseId IN ('rel-a', 'rel-b'))"
    )
    with pytest.raises(ValueError, match="at least one"):
        delta_query(since, [], include_release_list=False)
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2026, 1, 1))
