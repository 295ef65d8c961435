"""The reference release workflows: Release -> Wave -> Cluster -> Bundle -> App.

Each workflow keeps its state in one `Entity`, answers the `get_state` query with it, and publishes
it to visibility (search attributes + the `relmgr.detail` memo) on every change, so relmgr can read
a whole release with one list call and any entity with one `describe()`, with no worker running.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from relmgr import ids
    from relmgr.contract import (
        MEMO_DETAIL,
        QUERY_GET_STATE,
        SA_LAST_CHANGE,
        SA_STATE,
        EntityMemo,
        initial_search_attributes,
    )
    from relmgr.messages import (
        DEPLOY_FAILED,
        AppInput,
        BundleInput,
        ClusterInput,
        DeployOptions,
        DeployRequest,
        Outcome,
        ReleaseInput,
        WaveInput,
    )
    from relmgr.models import Entity, EntityKind, EntityState, StateCounts

SIGNAL_CLUSTER_FINISHED = "cluster_finished"
# The error type a failed entity raises, so its parent can tell it from infrastructure errors.
ENTITY_FAILED = "EntityFailed"


def outcome_of_failure(entity_id: str, error: ChildWorkflowError) -> Outcome:
    """The outcome a failed child attached to its error, or a plain FAILED one."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == ENTITY_FAILED and cause.details:
        return Outcome.model_validate(cause.details[0])
    message = str(cause) if cause is not None else str(error)
    return Outcome(entity_id=entity_id, state=EntityState.FAILED, error=message)


class _Tracked:
    """State keeping shared by every entity workflow: one Entity, published on every change."""

    _entity: Entity | None = None

    def _begin(self, entity_id: str, kind: EntityKind) -> None:
        ref = ids.parse_entity_id(entity_id, kind=kind)
        self._entity = Entity(
            id=ref.id,
            kind=ref.kind,
            release_id=ref.release_id,
            parent_id=ref.parent_id,
            state=EntityState.PENDING,
            started_at=workflow.info().start_time,
        )
        self._set(EntityState.IN_PROGRESS)

    @property
    def entity(self) -> Entity:
        assert self._entity is not None, "the workflow has not begun"
        return self._entity

    def _memo(self) -> EntityMemo:
        return EntityMemo(
            attempt=self.entity.attempt,
            last_error=self.entity.last_error,
            max_attempts=self.entity.max_attempts,
            next_retry_at=self.entity.next_retry_at,
        )

    def _set(self, state: EntityState, **changes: Any) -> None:
        now = workflow.now()
        update: dict[str, Any] = {"state": state, "last_changed_at": now, **changes}
        if state.is_terminal:
            update["finished_at"] = now
        self._entity = self.entity.model_copy(update=update)
        workflow.upsert_search_attributes(
            [SA_STATE.value_set(state.value), SA_LAST_CHANGE.value_set(now)]
        )
        workflow.upsert_memo({MEMO_DETAIL: self._memo().model_dump(mode="json")})

    def _publish(self) -> None:
        # Memo-only changes (progress) still bump the last-change time so delta reads see them.
        self._set(self.entity.state)

    def _fail(self, error: str, apps: StateCounts) -> ApplicationError:
        self._set(EntityState.FAILED, last_error=error)
        outcome = Outcome(
            entity_id=self.entity.id, state=EntityState.FAILED, apps=apps, error=error
        )
        return ApplicationError(
            error, outcome.model_dump(mode="json"), type=ENTITY_FAILED, non_retryable=True
        )

    def _cancelled(self) -> None:
        self._set(EntityState.CANCELLED)

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> Entity:
        """The entity as this workflow knows it now."""
        return self.entity


async def _child(run: Any, arg: Any, child_id: str) -> Outcome:
    """Run a child entity workflow; a failed child becomes a FAILED outcome, not an exception."""
    try:
        result: Outcome = await workflow.execute_child_workflow(
            run,
            arg,
            id=child_id,
            search_attributes=initial_search_attributes(child_id, now=workflow.now()),
        )
        return result
    except ChildWorkflowError as err:
        if isinstance(err.cause, asyncio.CancelledError):
            raise
        return outcome_of_failure(child_id, err)


@workflow.defn(name="Release")
class ReleaseWorkflow(_Tracked):
    """Runs the waves in order; a wave that does not succeed stops the release."""

    def __init__(self) -> None:
        self._current_wave: int | None = None
        self._waves_total = 0
        self._apps_total = 0
        self._apps_started = 0  # apps in waves that have started
        self._done = StateCounts()

    def _apps(self) -> StateCounts:
        in_flight = self._apps_started - self._done.total
        pending = self._apps_total - self._apps_started
        if self._entity is not None and self.entity.state.is_terminal:
            return self._done + StateCounts(cancelled=in_flight + pending)
        return self._done + StateCounts(in_progress=in_flight, pending=pending)

    def _memo(self) -> EntityMemo:
        return EntityMemo(
            attempt=self.entity.attempt,
            last_error=self.entity.last_error,
            current_wave=self._current_wave,
            waves_total=self._waves_total,
            apps=self._apps(),
        )

    @workflow.signal(name=SIGNAL_CLUSTER_FINISHED)
    def cluster_finished(self, report: Outcome) -> None:
        """A wave reports one of its clusters finished, with that cluster's apps by state."""
        self._done = self._done + report.apps
        if self._entity is not None and not self.entity.state.is_terminal:
            self._publish()

    @workflow.run
    async def run(self, start: ReleaseInput) -> Outcome:
        """Deploy every wave of the plan, one after the other."""
        plan = start.plan
        self._waves_total = len(plan.waves)
        self._apps_total = plan.app_count
        self._begin(start.release_id, EntityKind.RELEASE)
        try:
            for number, wave in enumerate(plan.waves, start=1):
                self._current_wave = number
                self._apps_started += sum(len(c.bundle.apps) for c in wave.clusters)
                self._publish()
                wave_id = ids.wave_id(start.release_id, number)
                outcome = await _child(
                    WaveWorkflow.run,
                    WaveInput(wave_id=wave_id, number=number, plan=wave, options=start.options),
                    wave_id,
                )
                if outcome.state is not EntityState.SUCCEEDED:
                    raise self._fail(f"wave {number} {outcome.state.value.lower()}", self._apps())
        except asyncio.CancelledError:
            self._cancelled()
            raise
        self._set(EntityState.SUCCEEDED)
        return Outcome(entity_id=self.entity.id, state=EntityState.SUCCEEDED, apps=self._apps())


@workflow.defn(name="Wave")
class WaveWorkflow(_Tracked):
    """Deploys to all its clusters in parallel; fails if any cluster fails."""

    @workflow.run
    async def run(self, start: WaveInput) -> Outcome:
        """Run every cluster, report each to the release as it finishes."""
        self._begin(start.wave_id, EntityKind.WAVE)
        release = workflow.get_external_workflow_handle(self.entity.release_id)

        async def one(cluster_id: str, plan: Any) -> Outcome:
            outcome = await _child(
                ClusterWorkflow.run,
                ClusterInput(cluster_id=cluster_id, plan=plan, options=start.options),
                cluster_id,
            )
            await release.signal(SIGNAL_CLUSTER_FINISHED, outcome)
            return outcome

        try:
            outcomes = await asyncio.gather(
                *(one(ids.cluster_id(start.wave_id, c.name), c) for c in start.plan.clusters)
            )
        except asyncio.CancelledError:
            self._cancelled()
            raise
        apps = sum((o.apps for o in outcomes), StateCounts())
        failed = [o.entity_id for o in outcomes if o.state is not EntityState.SUCCEEDED]
        if failed:
            names = ", ".join(ids.parse_entity_id(f).name for f in failed[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise self._fail(f"{len(failed)} cluster(s) failed: {names}{more}", apps)
        self._set(EntityState.SUCCEEDED)
        return Outcome(entity_id=self.entity.id, state=EntityState.SUCCEEDED, apps=apps)


@workflow.defn(name="Cluster")
class ClusterWorkflow(_Tracked):
    """Deploys the cluster's one bundle."""

    @workflow.run
    async def run(self, start: ClusterInput) -> Outcome:
        """Run the bundle and take its outcome."""
        self._begin(start.cluster_id, EntityKind.CLUSTER)
        bundle_id = ids.bundle_id(start.cluster_id, start.plan.bundle.name)
        try:
            outcome = await _child(
                BundleWorkflow.run,
                BundleInput(
                    bundle_id=bundle_id,
                    cluster=start.plan.name,
                    plan=start.plan.bundle,
                    options=start.options,
                ),
                bundle_id,
            )
        except asyncio.CancelledError:
            self._cancelled()
            raise
        if outcome.state is not EntityState.SUCCEEDED:
            raise self._fail(outcome.error or "bundle failed", outcome.apps)
        self._set(EntityState.SUCCEEDED)
        return Outcome(entity_id=self.entity.id, state=EntityState.SUCCEEDED, apps=outcome.apps)


@workflow.defn(name="Bundle")
class BundleWorkflow(_Tracked):
    """Deploys its apps in plan order, `parallelism` at a time; starts none after a failure."""

    @workflow.run
    async def run(self, start: BundleInput) -> Outcome:
        """Deploy every app; a failed app fails the bundle and the rest never start."""
        self._begin(start.bundle_id, EntityKind.BUNDLE)
        queue = [ids.app_id(start.bundle_id, name) for name in start.plan.apps]
        outcomes: list[Outcome] = []
        failure: str | None = None

        async def runner() -> None:
            nonlocal failure
            while queue and failure is None:
                app_id = queue.pop(0)
                outcome = await _child(
                    AppWorkflow.run,
                    AppInput(app_id=app_id, cluster=start.cluster, options=start.options),
                    app_id,
                )
                outcomes.append(outcome)
                if outcome.state is not EntityState.SUCCEEDED and failure is None:
                    failure = f"app {ids.parse_entity_id(app_id).name}: {outcome.error or 'failed'}"

        try:
            await asyncio.gather(*(runner() for _ in range(start.options.parallelism)))
        except asyncio.CancelledError:
            self._cancelled()
            raise
        apps = sum((o.apps for o in outcomes), StateCounts())
        if failure is not None:
            raise self._fail(failure, apps + StateCounts(cancelled=len(queue)))
        self._set(EntityState.SUCCEEDED)
        return Outcome(entity_id=self.entity.id, state=EntityState.SUCCEEDED, apps=apps)


@workflow.defn(name="App")
class AppWorkflow(_Tracked):
    """Deploys one app, retrying in the workflow so that every retry and its error are visible."""

    @workflow.run
    async def run(self, start: AppInput) -> Outcome:
        """Try the deploy up to `max_attempts` times with exponential backoff."""
        self._begin(start.app_id, EntityKind.APP)
        options: DeployOptions = start.options
        ref = ids.parse_entity_id(start.app_id)
        try:
            for attempt in range(1, options.max_attempts + 1):
                if attempt > 1:
                    self._set(EntityState.IN_PROGRESS, attempt=attempt, next_retry_at=None)
                else:
                    self._entity = self.entity.model_copy(
                        update={"attempt": 1, "max_attempts": options.max_attempts}
                    )
                try:
                    await workflow.execute_activity(
                        "deploy_app",
                        DeployRequest(
                            app_id=start.app_id,
                            app=ref.name,
                            cluster=start.cluster,
                            attempt=attempt,
                            options=options,
                        ),
                        start_to_close_timeout=timedelta(seconds=options.max_seconds + 600),
                        heartbeat_timeout=timedelta(seconds=10),
                        # Temporal retries only infrastructure failures (a worker lost
                        # mid-deploy); a failed deploy is retried by the loop around us.
                        retry_policy=RetryPolicy(
                            maximum_attempts=3, non_retryable_error_types=[DEPLOY_FAILED]
                        ),
                    )
                except ActivityError as err:
                    cause = err.cause
                    error = cause.message if isinstance(cause, ApplicationError) else str(cause)
                    if attempt == options.max_attempts:
                        raise self._fail(
                            f"attempt {attempt}/{options.max_attempts}: {error}",
                            StateCounts(failed=1),
                        ) from None
                    delay = options.retry_seconds * options.retry_backoff ** (attempt - 1)
                    self._set(
                        EntityState.RETRYING,
                        attempt=attempt,
                        last_error=error,
                        next_retry_at=workflow.now() + timedelta(seconds=delay),
                    )
                    await workflow.sleep(timedelta(seconds=delay))
                    continue
                self._set(EntityState.SUCCEEDED)
                return Outcome(
                    entity_id=self.entity.id,
                    state=EntityState.SUCCEEDED,
                    apps=StateCounts(succeeded=1),
                )
        except asyncio.CancelledError:
            self._cancelled()
            raise
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


WORKFLOWS = [ReleaseWorkflow, WaveWorkflow, ClusterWorkflow, BundleWorkflow, AppWorkflow]
