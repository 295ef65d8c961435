"""The rollout simulator: release plans of any shape, the demo set, and starting them on Temporal.

`relmgr seed` starts simulated releases of one shape (`SimulationSpec`); `relmgr dev` starts the
demo set (`demo_releases()`) once per data directory: a mix of finished, failing, retrying, running,
big, gated (waiting for approval), held (a failure waiting for a retry) and not-yet-started
releases with deterministic names (`rel-demo-...`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio.client import Client

from relmgr import ids
from relmgr.errors import AlreadyExistsError, ConfigError, InvalidIdError
from relmgr.models import BundlePlan, ClusterPlan, ReleasePlan, WavePlan, entity_count
from relmgr.temporal.client import temporal_errors
from relmgr.temporal.contract import TASK_QUEUE
from relmgr.temporal.messages import DeployOptions, OnFailure
from relmgr.temporal.starter import start_release

# Shapes beyond these are typing mistakes, not tests: refused before anything starts.
MAX_WAVES = 99  # the ID grammar numbers waves 1-99
MAX_CLUSTERS = 1_000
MAX_APPS = 1_000
MAX_RELEASES = 1_000
MAX_WORKFLOWS = 100_000

_REGIONS = (
    "eu-west",
    "us-east",
    "eu-central",
    "us-west",
    "ap-south",
    "ap-northeast",
    "sa-east",
    "ca-central",
)
_APPS = (
    "gateway",
    "auth",
    "catalog",
    "cart",
    "checkout",
    "payments",
    "inventory",
    "search",
    "orders",
    "shipping",
    "notifications",
    "billing",
    "reports",
    "profile",
    "recommendations",
    "reviews",
)
# Pydantic field -> the option that sets it and its range, so that messages speak the user's
# language ("--waves must be 1 to 99") rather than pydantic's.
_OPTIONS: dict[str, tuple[str, str]] = {
    "waves": ("--waves", f"a whole number from 1 to {MAX_WAVES}"),
    "clusters": ("--clusters", f"a whole number from 1 to {MAX_CLUSTERS:,}"),
    "apps": ("--apps", f"a whole number from 1 to {MAX_APPS:,}"),
    "releases": ("--releases", f"a whole number from 1 to {MAX_RELEASES:,}"),
    "app_seconds": ("--app-seconds", "a number of seconds from 0 to 2400"),
    "failure_rate": ("--failure-rate", "a probability from 0 to 1"),
    "seed": ("--seed", "a whole number"),
    "name": ("--name", "at most 40 characters"),
}


class SimulationSpec(BaseModel):
    """What `relmgr seed` starts: `releases` releases of waves x clusters x 1 bundle x apps."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    waves: int = Field(ge=1, le=MAX_WAVES)
    clusters: int = Field(ge=1, le=MAX_CLUSTERS)
    apps: int = Field(ge=1, le=MAX_APPS)
    releases: int = Field(default=1, ge=1, le=MAX_RELEASES)
    # A deploy takes between half and one and a half times this (uniformly drawn).
    app_seconds: float = Field(default=2.0, ge=0, le=2400)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    name: str = Field(default="", max_length=40)
    approval_gates: bool = False
    on_failure: OnFailure = OnFailure.FAIL

    @model_validator(mode="after")
    def _bounded(self) -> SimulationSpec:
        total = self.workflow_count
        if total > MAX_WORKFLOWS:
            raise ValueError(
                f"{self.releases} release(s) of {self.waves}x{self.clusters}x{self.apps} would run "
                f"{total:,} workflows; at most {MAX_WORKFLOWS:,} are allowed"
            )
        return self

    @property
    def workflow_count(self) -> int:
        """How many workflows all the releases of this spec run."""
        clusters = self.waves * self.clusters
        return self.releases * entity_count(
            waves=self.waves, clusters=clusters, apps=clusters * self.apps
        )

    def release_ids(self) -> list[str]:
        """The IDs the releases get: `rel-<name>-<n>`, n from 1."""
        return [f"rel-{self.name}-{n}" for n in range(1, self.releases + 1)]

    def plan(self) -> ReleasePlan:
        """The plan every release of this spec deploys."""
        return simulated_plan(self.waves, self.clusters, self.apps)

    def options(self) -> DeployOptions:
        """How the apps of these releases deploy."""
        return DeployOptions(
            min_seconds=self.app_seconds * 0.5,
            max_seconds=self.app_seconds * 1.5,
            failure_rate=self.failure_rate,
            seed=self.seed,
            on_failure=self.on_failure,
        )


def default_name() -> str:
    """A release-name prefix unlikely to clash with an earlier run: `sim-<date>-<time>`."""
    return "sim-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def simulation_spec(
    *,
    waves: int,
    clusters: int,
    apps: int,
    releases: int = 1,
    app_seconds: float = 2.0,
    failure_rate: float = 0.0,
    seed: int = 0,
    name: str | None = None,
    approval_gates: bool = False,
    on_failure: OnFailure = OnFailure.FAIL,
) -> SimulationSpec:
    """A validated spec; ConfigError names each impossible value by its command-line option."""
    try:
        spec = SimulationSpec(
            waves=waves,
            clusters=clusters,
            apps=apps,
            releases=releases,
            app_seconds=app_seconds,
            failure_rate=failure_rate,
            seed=seed,
            name=name or default_name(),
            approval_gates=approval_gates,
            on_failure=on_failure,
        )
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            if field in _OPTIONS:
                option, expected = _OPTIONS[field]
                problems.append(f"{option} must be {expected}, not {error['input']!r}")
            else:
                problems.append(str(error["msg"]).removeprefix("Value error, "))
        raise ConfigError("; ".join(problems)) from None
    for release_id in spec.release_ids():
        try:
            ids.validate_release_id(release_id)
        except InvalidIdError:
            raise ConfigError(
                f"--name {spec.name!r} does not make valid release IDs (e.g. {release_id!r}): "
                "use lowercase letters, digits and inner hyphens, short enough that "
                "rel-<name>-<n> has at most 44 characters"
            ) from None
    return spec


def cluster_names(count: int) -> list[str]:
    """`count` distinct cluster names: eu-west-1, us-east-1, ..., eu-west-2, ..."""
    return [f"{_REGIONS[i % len(_REGIONS)]}-{i // len(_REGIONS) + 1}" for i in range(count)]


def app_names(count: int) -> list[str]:
    """`count` distinct app names: well-known services first, then svc-17, svc-18, ..."""
    return [_APPS[i] if i < len(_APPS) else f"svc-{i + 1}" for i in range(count)]


def simulated_plan(waves: int, clusters: int, apps: int, *, bundle: str = "core") -> ReleasePlan:
    """A plan of `waves` x `clusters` x one bundle x `apps`; every cluster gets the same apps."""
    return ReleasePlan.uniform(
        waves=waves, clusters=cluster_names(clusters), apps=app_names(apps), bundle=bundle
    )


async def start_simulation(
    client: Client, spec: SimulationSpec, *, task_queue: str = TASK_QUEUE
) -> AsyncIterator[str]:
    """Start every release of `spec`, yielding each ID as soon as it has started."""
    plan = spec.plan()
    options = spec.options()
    for release_id in spec.release_ids():
        with temporal_errors(entity_id=release_id, what=f"starting {release_id}"):
            await start_release(
                client,
                release_id,
                plan,
                options,
                task_queue=task_queue,
                approval_gates=spec.approval_gates,
            )
        yield release_id


# ---------------------------------------------------------------------------------------------
# The demo set of `relmgr dev`.


class DemoRelease(BaseModel):
    """One release of the demo set: its name, plan and deploy options, and what it shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release_id: str
    shows: str
    plan: ReleasePlan
    options: DeployOptions
    start_delay_seconds: float = 0.0
    approval_gates: bool = False


def demo_releases() -> tuple[DemoRelease, ...]:
    """The demo set: the same names and shapes every time, so a second run recognises them."""

    def options(low: float, high: float, **changes: object) -> DeployOptions:
        return DeployOptions.model_validate(
            {"min_seconds": low, "max_seconds": high, "seed": 7, **changes}
        )

    retrying_plan = ReleasePlan(
        waves=(
            WavePlan(
                clusters=(
                    ClusterPlan(
                        name="eu-west-1",
                        bundle=BundlePlan(name="search", apps=("indexer", "query", "ranker")),
                    ),
                    ClusterPlan(
                        name="us-east-1",
                        bundle=BundlePlan(name="search", apps=("query", "ranker")),
                    ),
                )
            ),
        )
    )
    return (
        DemoRelease(
            release_id="rel-demo-payments-small",
            shows="small, finishes in seconds",
            plan=simulated_plan(2, 2, 3, bundle="payments"),
            options=options(0.3, 1.5),
        ),
        DemoRelease(
            release_id="rel-demo-auth-hotfix",
            shows="tiny, finishes at once",
            plan=simulated_plan(1, 1, 2, bundle="auth"),
            options=options(0.2, 0.8),
        ),
        DemoRelease(
            release_id="rel-demo-checkout-failed",
            shows="an app that keeps failing fails its wave and stops the release",
            plan=simulated_plan(2, 3, 5, bundle="checkout"),
            options=options(0.5, 2.0, fail_apps=("cart",), max_attempts=2, retry_seconds=2.0),
        ),
        DemoRelease(
            release_id="rel-demo-search-retrying",
            shows="an app retrying with its last error for about ten minutes",
            plan=retrying_plan,
            options=options(
                1.0,
                3.0,
                fail_apps=("indexer",),
                max_attempts=8,
                retry_seconds=20.0,
                retry_backoff=1.5,
            ),
        ),
        DemoRelease(
            release_id="rel-demo-inventory-rollout",
            shows="in progress for a few minutes",
            plan=simulated_plan(3, 4, 6, bundle="inventory"),
            options=options(8.0, 25.0),
        ),
        DemoRelease(
            release_id="rel-demo-platform-big",
            shows="big: 5 waves x 20 clusters x 10 apps = 1,206 workflows, several minutes",
            plan=simulated_plan(5, 20, 10, bundle="platform"),
            options=options(6.0, 18.0),
        ),
        DemoRelease(
            release_id="rel-demo-orders-gated",
            shows="approval gates: wave 2 waits for an operator to approve it",
            plan=simulated_plan(3, 2, 3, bundle="orders"),
            options=options(0.3, 1.2),
            approval_gates=True,
        ),
        DemoRelease(
            release_id="rel-demo-shipping-held",
            shows="a held failure: an app failed, holds its wave open until an operator retries",
            plan=simulated_plan(2, 2, 3, bundle="shipping"),
            # The first two attempts fail, so a retry (two more attempts) deploys it.
            options=options(
                0.3,
                1.2,
                fail_apps=("catalog",),
                fail_attempts=2,
                max_attempts=2,
                retry_seconds=1.0,
                on_failure="hold",
            ),
        ),
        DemoRelease(
            release_id="rel-demo-billing-scheduled",
            shows="not started yet: begins in six hours",
            plan=simulated_plan(2, 3, 4, bundle="billing"),
            options=options(1.0, 4.0),
            start_delay_seconds=6 * 3600.0,
        ),
    )


async def start_demo(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    releases: Iterable[DemoRelease] | None = None,
) -> AsyncIterator[tuple[DemoRelease, bool]]:
    """Start the demo set, yielding each release with True if started, False if it already ran."""
    for demo in demo_releases() if releases is None else releases:
        delay = timedelta(seconds=demo.start_delay_seconds) if demo.start_delay_seconds else None
        try:
            with temporal_errors(entity_id=demo.release_id, what=f"starting {demo.release_id}"):
                await start_release(
                    client,
                    demo.release_id,
                    demo.plan,
                    demo.options,
                    task_queue=task_queue,
                    start_delay=delay,
                    approval_gates=demo.approval_gates,
                )
        except AlreadyExistsError:
            # A demo release that is still running is kept, not started again.
            yield demo, False
            continue
        yield demo, True
