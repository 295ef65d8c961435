"""The reference release workflows: Release -> Wave -> Cluster -> Bundle -> App.

Each workflow keeps its state in one `Entity`, answers the `get_state` query with it, and publishes
it to visibility (search attributes + the `relmgr.detail` memo) on every change, so relmgr can read
a whole release with one list call and any entity with one `describe()`, with no worker running.

Controls are Temporal Updates with validators: the release takes `approve`, `pause`, `resume` and
`cancel`, a held app takes `retry`. A validator only reads state and raises to refuse, so a refused
request is answered at once and leaves no history; an accepted one is recorded in history with the
caller's identity and input, and in the release's `relmgr.audit` memo.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from relmgr import ids
    from relmgr.models import Control, ControlRecord, Entity, EntityKind, EntityState, StateCounts
    from relmgr.temporal.contract import (
        APP_CONTROLS,
        AUDIT_MEMO_SIZE,
        MEMO_AUDIT,
        MEMO_CONTROLS,
        MEMO_DETAIL,
        QUERY_GET_STATE,
        SA_LAST_CHANGE,
        SA_STATE,
        EntityMemo,
        initial_search_attributes,
    )
    from relmgr.temporal.messages import (
        DEPLOY_FAILED,
        AppHold,
        AppInput,
        ApproveRequest,
        BundleInput,
        CancelRequest,
        ClusterInput,
        ControlRequest,
        ControlResult,
        DeployOptions,
        DeployRequest,
        OnFailure,
        Outcome,
        PauseRequest,
        ReleaseInput,
        ResumeRequest,
        RetryRequest,
        WaveInput,
    )

SIGNAL_CLUSTER_FINISHED = "cluster_finished"
SIGNAL_APP_HOLD = "app_hold"
SIGNAL_CONTROL_RECORDED = "control_recorded"
SIGNAL_WAVE_APPROVED = "wave_approved"
# The error type a failed entity raises, so its parent can tell it from infrastructure errors.
ENTITY_FAILED = "EntityFailed"
# The error type of a validator's refusal; its message says why, for the operator.
CONTROL_REFUSED = "ControlRefused"


def refuse(message: str) -> ApplicationError:
    """The error a validator raises to refuse a control; relmgr shows its message as the reason."""
    return ApplicationError(message, type=CONTROL_REFUSED, non_retryable=True)


def check_fresh(request: ControlRequest) -> None:
    """Refuse a request its caller has already been told timed out (see `expires_at`)."""
    if request.expires_at is not None and workflow.now() > request.expires_at:
        raise refuse("the request expired before a worker took it; nothing was done")


def control_record(action: Control, request: ControlRequest, target: str) -> ControlRecord:
    """The audit record of the Update being handled now (its ID is the request ID)."""
    update = workflow.current_update_info()
    return ControlRecord(
        at=workflow.now(),
        user=request.user,
        role=request.role,
        action=action,
        target=target,
        reason=request.reason,
        request_id=update.id if update is not None else "",
    )


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

    def _begin(
        self, entity_id: str, kind: EntityKind, state: EntityState = EntityState.IN_PROGRESS
    ) -> None:
        ref = ids.parse_entity_id(entity_id, kind=kind)
        self._entity = Entity(
            id=ref.id,
            kind=ref.kind,
            release_id=ref.release_id,
            parent_id=ref.parent_id,
            state=EntityState.PENDING,
            started_at=workflow.info().start_time,
        )
        self._set(state)

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


async def _start_child(run: Any, arg: Any, child_id: str) -> Any:
    # A child is cancelled, never terminated, when its parent closes before it (it cannot in the
    # normal path: every parent awaits its children, through cancellation too).
    return await workflow.start_child_workflow(
        run,
        arg,
        id=child_id,
        search_attributes=initial_search_attributes(child_id, now=workflow.now()),
        parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
    )


async def _outcome(handle: Any, child_id: str) -> Outcome:
    """A started child's outcome; a failed child becomes a FAILED outcome, not an exception."""
    try:
        result: Outcome = await handle
        return result
    except ChildWorkflowError as err:
        if isinstance(err.cause, CancelledError):
            # The child ended cancelled because we were: carry on cancelling, as asyncio does.
            raise asyncio.CancelledError(str(err.cause)) from err
        return outcome_of_failure(child_id, err)


async def _child(run: Any, arg: Any, child_id: str) -> Outcome:
    """Run a child entity workflow to its outcome."""
    return await _outcome(await _start_child(run, arg, child_id), child_id)


@workflow.defn(name="Release")
class ReleaseWorkflow(_Tracked):
    """Runs the waves in order; a wave that does not succeed stops the release.

    Operators control it through Updates: `approve` a gated wave, `pause` / `resume` between
    waves, `cancel` everything unfinished. Its apps report holds and retries by signal, so the
    release's memo says which apps hold it and keeps the trail of accepted controls.
    """

    def __init__(self) -> None:
        self._current_wave: int | None = None
        self._waves_total = 0
        self._apps_total = 0
        self._apps_started = 0  # apps in waves that have started
        self._done = StateCounts()
        self._gated = False
        self._awaiting_wave: int | None = None  # a gated wave started, not yet let go
        self._approved: set[int] = set()
        self._wave_states: dict[int, EntityState] = {}
        self._paused = False
        self._cancel: CancelRequest | None = None
        self._body: asyncio.Task[None] | None = None
        self._held: dict[str, str] = {}
        self._audit: list[ControlRecord] = []

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
            held=tuple(self._held),
        )

    def _live_state(self) -> EntityState:
        """The state of a running release: paused, waiting for an approval, or deploying."""
        if self._paused:
            return EntityState.PAUSED
        if self._awaiting_wave is not None and self._awaiting_wave not in self._approved:
            return EntityState.AWAITING_APPROVAL
        return EntityState.IN_PROGRESS

    def _refresh(self) -> None:
        if self._entity is not None and not self.entity.state.is_terminal:
            self._set(self._live_state())

    def _remember(self, record: ControlRecord) -> None:
        self._audit = [*self._audit, record][-AUDIT_MEMO_SIZE:]
        workflow.upsert_memo({MEMO_AUDIT: [r.model_dump(mode="json") for r in self._audit]})
        if self._entity is not None and not self.entity.state.is_terminal:
            self._publish()  # bump the last-change time, so delta reads pick the trail up

    @workflow.signal(name=SIGNAL_CLUSTER_FINISHED)
    def cluster_finished(self, report: Outcome) -> None:
        """A wave reports one of its clusters finished, with that cluster's apps by state."""
        self._done = self._done + report.apps
        if self._entity is not None and not self.entity.state.is_terminal:
            self._publish()

    @workflow.signal(name=SIGNAL_APP_HOLD)
    def app_hold(self, hold: AppHold) -> None:
        """An app reports it holds its wave (failed, waiting for a retry), or no longer does."""
        if hold.held:
            self._held[hold.app_id] = hold.error or "failed"
        else:
            self._held.pop(hold.app_id, None)
        if self._entity is not None and not self.entity.state.is_terminal:
            self._publish()

    @workflow.signal(name=SIGNAL_CONTROL_RECORDED)
    def control_recorded(self, record: ControlRecord) -> None:
        """An entity below reports a control it accepted (a retry), for the release's trail."""
        self._remember(record)

    # -- controls -------------------------------------------------------------------------

    def _check_open(self, request: ControlRequest, action: Control) -> None:
        check_fresh(request)
        if self._entity is None:
            raise refuse("the release has not started yet")
        if self._cancel is not None:
            raise refuse(f"release {self.entity.id} is being cancelled")
        if self.entity.state.is_terminal:
            raise refuse(
                f"release {self.entity.id} is {self.entity.state.value}; "
                f"there is nothing to {action.value}"
            )

    @workflow.update(name=Control.APPROVE)
    async def approve(self, request: ApproveRequest) -> ControlResult:
        """Let the gated wave `request.wave` deploy (once the release is not paused)."""
        wave_id = ids.wave_id(self.entity.id, request.wave)
        self._approved.add(request.wave)
        self._remember(control_record(Control.APPROVE, request, wave_id))
        self._refresh()
        later = "; it starts when the release is resumed" if self._paused else "; it starts now"
        return ControlResult(
            entity_id=self.entity.id,
            action=Control.APPROVE,
            state=self.entity.state,
            message=f"wave {request.wave} approved{later}",
        )

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        self._check_open(request, Control.APPROVE)
        if not self._gated:
            raise refuse(f"release {self.entity.id} has no approval gates; nothing waits")
        number = request.wave
        if number > self._waves_total:
            raise refuse(
                f"release {self.entity.id} has {self._waves_total} wave(s); "
                f"there is no wave {number}"
            )
        if number in self._approved:
            raise refuse(f"wave {number} is already approved")
        if number == self._awaiting_wave:
            return
        state = self._wave_states.get(number, EntityState.PENDING)
        waiting = (
            f"wave {self._awaiting_wave} is awaiting approval"
            if self._awaiting_wave is not None and self._awaiting_wave not in self._approved
            else "no wave is awaiting approval"
        )
        raise refuse(f"wave {number} is {state.value}; {waiting}")

    @workflow.update(name=Control.PAUSE)
    async def pause(self, request: PauseRequest) -> ControlResult:
        """Start no new wave until resumed; the running wave finishes."""
        self._paused = True
        self._remember(control_record(Control.PAUSE, request, self.entity.id))
        self._refresh()
        return ControlResult(
            entity_id=self.entity.id,
            action=Control.PAUSE,
            state=self.entity.state,
            message="paused: the running wave finishes, no new wave starts until resumed",
        )

    @pause.validator
    def _validate_pause(self, request: PauseRequest) -> None:
        self._check_open(request, Control.PAUSE)
        if self._paused:
            raise refuse(f"release {self.entity.id} is already paused")

    @workflow.update(name=Control.RESUME)
    async def resume(self, request: ResumeRequest) -> ControlResult:
        """Let the release start its next wave again."""
        self._paused = False
        self._remember(control_record(Control.RESUME, request, self.entity.id))
        self._refresh()
        return ControlResult(
            entity_id=self.entity.id,
            action=Control.RESUME,
            state=self.entity.state,
            message="resumed",
        )

    @resume.validator
    def _validate_resume(self, request: ResumeRequest) -> None:
        self._check_open(request, Control.RESUME)
        if not self._paused:
            raise refuse(
                f"release {self.entity.id} is not paused (it is {self.entity.state.value})"
            )

    @workflow.update(name=Control.CANCEL)
    async def cancel(self, request: CancelRequest) -> ControlResult:
        """Cancel the release: every unfinished entity below ends CANCELLED."""
        self._cancel = request
        self._remember(control_record(Control.CANCEL, request, self.entity.id))
        if self._body is not None:
            # Cooperative: the running wave's children are cancelled (never terminated) and the
            # release ends CANCELLED once they have.
            self._body.cancel()
        return ControlResult(
            entity_id=self.entity.id,
            action=Control.CANCEL,
            state=self.entity.state,
            message="cancelling: every unfinished entity ends CANCELLED",
        )

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        self._check_open(request, Control.CANCEL)
        if not request.reason.strip():
            raise refuse("a reason is required to cancel a release")

    # -- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: ReleaseInput) -> Outcome:
        """Deploy every wave of the plan, one after the other."""
        plan = start.plan
        self._waves_total = len(plan.waves)
        self._apps_total = plan.app_count
        self._gated = start.approval_gates
        self._begin(start.release_id, EntityKind.RELEASE)
        self._body = asyncio.create_task(self._deploy(start))
        try:
            await self._body
        except asyncio.CancelledError:
            self._cancelled()
            if self._cancel is None:
                raise  # cancelled through Temporal itself: the execution ends CANCELED
            await workflow.wait_condition(workflow.all_handlers_finished)
            return Outcome(
                entity_id=self.entity.id,
                state=EntityState.CANCELLED,
                apps=self._apps(),
                error=f"cancelled by {self._cancel.user}: {self._cancel.reason}",
            )
        self._set(EntityState.SUCCEEDED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return Outcome(entity_id=self.entity.id, state=EntityState.SUCCEEDED, apps=self._apps())

    async def _deploy(self, start: ReleaseInput) -> None:
        for number, wave in enumerate(start.plan.waves, start=1):
            await workflow.wait_condition(lambda: not self._paused)
            gated = self._gated and number > 1
            self._current_wave = number
            self._apps_started += sum(len(c.bundle.apps) for c in wave.clusters)
            self._wave_states[number] = (
                EntityState.AWAITING_APPROVAL if gated else EntityState.IN_PROGRESS
            )
            if gated:
                self._awaiting_wave = number
            self._refresh()
            wave_id = ids.wave_id(start.release_id, number)
            handle = await _start_child(
                WaveWorkflow.run,
                WaveInput(
                    wave_id=wave_id, number=number, plan=wave, options=start.options, gated=gated
                ),
                wave_id,
            )
            if gated:
                try:
                    await workflow.wait_condition(
                        lambda: number in self._approved and not self._paused  # noqa: B023 - awaited here
                    )
                    await handle.signal(SIGNAL_WAVE_APPROVED)
                except asyncio.CancelledError:
                    handle.cancel()
                    await _outcome(handle, wave_id)
                    raise
                self._awaiting_wave = None
                self._wave_states[number] = EntityState.IN_PROGRESS
                self._refresh()
            outcome = await _outcome(handle, wave_id)
            self._wave_states[number] = outcome.state
            if outcome.state is not EntityState.SUCCEEDED:
                raise self._fail(f"wave {number} {outcome.state.value.lower()}", self._apps())


@workflow.defn(name="Wave")
class WaveWorkflow(_Tracked):
    """Deploys to all its clusters in parallel; fails if any cluster fails.

    A gated wave waits, AWAITING_APPROVAL, until its release passes on an operator's approval.
    """

    def __init__(self) -> None:
        self._approved = False

    @workflow.signal(name=SIGNAL_WAVE_APPROVED)
    def wave_approved(self) -> None:
        """The release lets this gated wave deploy (approved, and the release is not paused)."""
        self._approved = True

    @workflow.run
    async def run(self, start: WaveInput) -> Outcome:
        """Run every cluster, report each to the release as it finishes."""
        gate = EntityState.AWAITING_APPROVAL if start.gated else EntityState.IN_PROGRESS
        self._begin(start.wave_id, EntityKind.WAVE, gate)
        release = workflow.get_external_workflow_handle(self.entity.release_id)
        if start.gated:
            try:
                await workflow.wait_condition(lambda: self._approved)
            except asyncio.CancelledError:
                self._cancelled()
                raise
            self._set(EntityState.IN_PROGRESS)

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
    """Deploys one app, retrying in the workflow so that every retry and its error are visible.

    With `on_failure=hold`, an app whose attempts all failed stays FAILED and running, holding its
    bundle (and so its wave) open, until an operator's `retry` runs its deploy again or the
    release is cancelled.
    """

    def __init__(self) -> None:
        self._held = False

    @workflow.update(name=Control.RETRY)
    async def retry(self, request: RetryRequest) -> ControlResult:
        """Run the held app's deploy again (`max_attempts` more attempts)."""
        self._held = False
        self._set(EntityState.IN_PROGRESS)
        state = self.entity.state  # the deploy may finish while we tell the release
        release = workflow.get_external_workflow_handle(self.entity.release_id)
        await release.signal(
            SIGNAL_CONTROL_RECORDED, control_record(Control.RETRY, request, self.entity.id)
        )
        await release.signal(SIGNAL_APP_HOLD, AppHold(app_id=self.entity.id, held=False))
        return ControlResult(
            entity_id=self.entity.id,
            action=Control.RETRY,
            state=state,
            message=f"deploying {self.entity.name} again",
        )

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        check_fresh(request)
        if self._entity is None:
            raise refuse("the app has not started yet")
        if not self._held:
            raise refuse(
                f"app {self.entity.id} is {self.entity.state.value}; only an app held after "
                "a failed deploy can be retried"
            )

    async def _hold(self, error: str) -> None:
        """Stay FAILED, holding the wave, until an operator retries (or cancels the release)."""
        self._held = True
        self._set(EntityState.FAILED, last_error=error)
        release = workflow.get_external_workflow_handle(self.entity.release_id)
        await release.signal(
            SIGNAL_APP_HOLD, AppHold(app_id=self.entity.id, held=True, error=error)
        )
        await workflow.wait_condition(lambda: not self._held)

    @workflow.run
    async def run(self, start: AppInput) -> Outcome:
        """Try the deploy up to `max_attempts` times with exponential backoff."""
        options: DeployOptions = start.options
        self._begin(start.app_id, EntityKind.APP)
        if options.on_failure is OnFailure.HOLD:
            workflow.upsert_memo({MEMO_CONTROLS: [c.value for c in APP_CONTROLS]})
        try:
            outcome = await self._deploy(start, options)
        except asyncio.CancelledError:
            self._cancelled()
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _deploy(self, start: AppInput, options: DeployOptions) -> Outcome:
        ref = ids.parse_entity_id(start.app_id)
        attempt = 0
        limit = options.max_attempts
        while True:
            attempt += 1
            if attempt > 1:
                self._set(
                    EntityState.IN_PROGRESS, attempt=attempt, max_attempts=limit, next_retry_at=None
                )
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
                if isinstance(cause, CancelledError):
                    # Cancelled with the release, not a failed deploy: no retry, no hold.
                    raise asyncio.CancelledError(str(cause)) from err
                error = cause.message if isinstance(cause, ApplicationError) else str(cause)
                if attempt < limit:
                    delay = options.retry_seconds * options.retry_backoff ** (attempt - 1)
                    self._set(
                        EntityState.RETRYING,
                        attempt=attempt,
                        last_error=error,
                        next_retry_at=workflow.now() + timedelta(seconds=delay),
                    )
                    await workflow.sleep(timedelta(seconds=delay))
                    continue
                failure = f"attempt {attempt}/{limit}: {error}"
                if options.on_failure is not OnFailure.HOLD:
                    raise self._fail(failure, StateCounts(failed=1)) from None
                await self._hold(failure)
                limit = attempt + options.max_attempts  # a retry gets a full set of attempts
                continue
            self._set(EntityState.SUCCEEDED)
            return Outcome(
                entity_id=self.entity.id,
                state=EntityState.SUCCEEDED,
                apps=StateCounts(succeeded=1),
            )


WORKFLOWS = [ReleaseWorkflow, WaveWorkflow, ClusterWorkflow, BundleWorkflow, AppWorkflow]
