"""The one model in and one model out of every relmgr workflow, activity and signal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from relmgr.models import (
    BundlePlan,
    ClusterPlan,
    Control,
    EntityState,
    ReleasePlan,
    StateCounts,
    WavePlan,
)

# The ApplicationError type of a deploy that failed on its merits (not the infrastructure): the
# activity raises it, and the app workflow's retry policy does not retry it.
DEPLOY_FAILED = "DeployFailed"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OnFailure(StrEnum):
    """What an app whose deploy failed after all its attempts does."""

    FAIL = "fail"  # fail its bundle, cluster, wave and release (the default)
    HOLD = "hold"  # stay FAILED and hold its wave open until an operator retries or cancels


class DeployOptions(_Message):
    """How apps deploy: the simulator's shape and the retry policy every app follows."""

    min_seconds: float = Field(default=0.5, ge=0, le=3600)
    max_seconds: float = Field(default=2.0, ge=0, le=3600)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    # App names (the <slug> of app-<slug>) whose deploy always fails, for demos and tests.
    fail_apps: tuple[str, ...] = ()
    # With fail_apps: fail only attempts up to this number (0: every attempt), so a retry can work.
    fail_attempts: int = Field(default=0, ge=0, le=1000)
    on_failure: OnFailure = OnFailure.FAIL
    max_attempts: int = Field(default=3, ge=1, le=100)
    retry_seconds: float = Field(default=1.0, ge=0, le=3600)
    retry_backoff: float = Field(default=2.0, ge=1, le=10)
    parallelism: int = Field(default=2, ge=1, le=100)
    seed: int = 0


class ReleaseInput(_Message):
    """Start a release."""

    release_id: str
    plan: ReleasePlan
    options: DeployOptions = DeployOptions()
    # Every wave after the first waits (AWAITING_APPROVAL) until an operator approves it.
    approval_gates: bool = False


class WaveInput(_Message):
    """Start wave `number` (1-based) of a release."""

    wave_id: str
    number: int
    plan: WavePlan
    options: DeployOptions
    # A gated wave starts AWAITING_APPROVAL and deploys once its release signals the approval.
    gated: bool = False


class ClusterInput(_Message):
    """Deploy one cluster's bundle."""

    cluster_id: str
    plan: ClusterPlan
    options: DeployOptions


class BundleInput(_Message):
    """Deploy one bundle's apps."""

    bundle_id: str
    cluster: str
    plan: BundlePlan
    options: DeployOptions


class AppInput(_Message):
    """Deploy one app to one cluster."""

    app_id: str
    cluster: str
    options: DeployOptions


class Outcome(_Message):
    """What a finished entity reports to its parent: its state and its apps by state."""

    entity_id: str
    state: EntityState
    apps: StateCounts = StateCounts()
    error: str | None = None


class DeployRequest(_Message):
    """One attempt at deploying one app to one cluster."""

    app_id: str
    app: str
    cluster: str
    attempt: int
    options: DeployOptions


class DeployResult(_Message):
    """A deploy that succeeded."""

    app_id: str
    seconds: float
    output: str = ""


# ---------------------------------------------------------------------------------------------
# Controls: one request model per Temporal Update, one result model for all of them.


class ControlRequest(_Message):
    """What every control carries: who asks, in which role, and why."""

    user: str = Field(min_length=1, max_length=64)
    role: str = ""
    reason: str = Field(default="", max_length=500)
    # A request still unanswered at this moment is stale: relmgr has told its caller "no worker
    # answered", so a worker that picks it up later refuses it instead of acting behind their back.
    expires_at: datetime | None = None


class ApproveRequest(ControlRequest):
    """Approve gated wave `wave` (1-based) of a release."""

    wave: int = Field(ge=1, le=99)


class PauseRequest(ControlRequest):
    """Pause a release: its running wave finishes, no new wave starts."""


class ResumeRequest(ControlRequest):
    """Resume a paused release."""


class CancelRequest(ControlRequest):
    """Cancel a release and everything unfinished below it (a reason is required)."""


class RetryRequest(ControlRequest):
    """Deploy a held failed app again."""


class ControlResult(_Message):
    """What an accepted control did: the entity's state after it, and a sentence for people."""

    entity_id: str
    action: Control
    state: EntityState
    message: str = ""


class AppHold(_Message):
    """An app tells its release it holds its wave (failed, waiting for retry) or no longer does."""

    app_id: str
    held: bool
    error: str | None = None
