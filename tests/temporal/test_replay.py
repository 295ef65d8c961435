"""Replay (determinism): histories recorded from real runs still replay on today's workflow code.

tests/temporal/histories/ holds every workflow history of three small releases run on a real dev
server by `python -m tests.temporal.record_histories`: one that succeeded, one whose app failed
after a retry, one cancelled while its apps waited to retry. Temporal replays a running
workflow's history whenever a worker picks it up again (after a restart, a cache eviction, a
deploy), so a change to relmgr/temporal/workflows.py that fails here would break releases in flight.

When this test fails after a workflow change, either:
- keep old histories valid: branch with `workflow.patched("<change-id>")` (new code path) and keep
  the old path for histories without the marker, retiring it with `workflow.deprecate_patch` once
  no workflow of the old code can still run; or
- consciously re-record (`python -m tests.temporal.record_histories`), only when no release
  started by the old code can still be running anywhere, and say so in the commit message.
Never re-record just to make this test pass.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from relmgr.temporal.messages import AppInput, Outcome
from relmgr.temporal.workflows import WORKFLOWS, AppWorkflow
from tests.temporal.record_histories import HISTORIES, SCENARIOS


def recorded(scenario: str) -> list[WorkflowHistory]:
    """The histories of one recorded scenario, in workflow ID order."""
    document = json.loads((HISTORIES / f"{scenario}.json").read_text())
    return [
        WorkflowHistory.from_json(item["workflow_id"], item["history"])
        for item in document["histories"]
    ]


def workflow_type(history: WorkflowHistory) -> str:
    """The workflow type the history was started as (Release, Wave, ..., App)."""
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


async def _each(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def _replayer(workflows: list[type], **options: object) -> Replayer:
    # The pydantic converter, as in build_worker's client: payloads were written with it.
    return Replayer(
        workflows=workflows,
        data_converter=pydantic_data_converter,
        **options,  # type: ignore[arg-type]
    )


def test_the_recordings_cover_every_workflow_and_outcome() -> None:
    """Each scenario file exists; together they hold every workflow type, and a completed, a
    failed and a cancelled run of the App workflow (so a replay of them exercises each path)."""
    assert sorted(path.stem for path in Path(HISTORIES).glob("*.json")) == sorted(SCENARIOS)
    everything = [history for scenario in SCENARIOS for history in recorded(scenario)]
    assert {workflow_type(h) for h in everything} == {"Release", "Wave", "Cluster", "Bundle", "App"}
    closes = {
        history.events[-1].WhichOneof("attributes")
        for history in everything
        if workflow_type(history) == "App"
    }
    assert closes == {
        "workflow_execution_completed_event_attributes",
        "workflow_execution_failed_event_attributes",
        "workflow_execution_canceled_event_attributes",
    }


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_recorded_histories_replay_on_the_current_workflows(scenario: str) -> None:
    """Every recorded history of the scenario replays without a nondeterminism error."""
    histories = recorded(scenario)
    assert histories
    results = await _replayer(WORKFLOWS).replay_workflows(
        _each(histories), raise_on_replay_failure=False
    )
    by_run = {history.run_id: history.workflow_id for history in histories}
    failures = {by_run[run]: repr(error) for run, error in results.replay_failures.items()}
    assert failures == {}, "see this module's docstring before re-recording"


@workflow.defn(name="App", sandboxed=False)
class ChangedAppWorkflow(AppWorkflow):
    """The App workflow with one new step before the deploy: a command its history lacks."""

    @workflow.run
    async def run(self, start: AppInput) -> Outcome:
        """Wait a second, then deploy as before."""
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(start)


async def test_a_changed_workflow_fails_replay() -> None:
    """The check can fail: an App workflow with an extra timer does not replay a recorded App
    history (NondeterminismError), while the unchanged one does."""
    app = next(h for h in recorded("succeeded") if workflow_type(h) == "App")
    unchanged = await _replayer(WORKFLOWS).replay_workflow(app, raise_on_replay_failure=False)
    assert unchanged.replay_failure is None
    changed = await _replayer(
        [ChangedAppWorkflow], workflow_runner=UnsandboxedWorkflowRunner()
    ).replay_workflow(app, raise_on_replay_failure=False)
    assert isinstance(changed.replay_failure, workflow.NondeterminismError)
