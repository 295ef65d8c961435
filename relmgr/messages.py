"""The one model in and one model out of every relmgr workflow, activity and signal."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from relmgr.models import BundlePlan, ClusterPlan, EntityState, ReleasePlan, StateCounts, WavePlan

# The ApplicationError type of a deploy that failed on its merits (not the infrastructure): the
# activity raises it, and the app workflow's retry policy does not retry it.
DEPLOY_FAILED = "DeployFailed"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeployOptions(_Message):
    """How apps deploy: the simulator's shape and the retry policy every app follows."""

    min_seconds: float = Field(default=0.5, ge=0, le=3600)
    max_seconds: float = Field(default=2.0, ge=0, le=3600)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    # App names (the <slug> of app-<slug>) whose deploy always fails, for demos and tests.
    fail_apps: tuple[str, ...] = ()
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


class WaveInput(_Message):
    """Start wave `number` (1-based) of a release."""

    wave_id: str
    number: int
    plan: WavePlan
    options: DeployOptions


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
