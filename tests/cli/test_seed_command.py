"""`relmgr seed` argument checks and the simulator's plans, without a Temporal server."""

from __future__ import annotations

import pytest

from relmgr.cli import main as cli
from relmgr.errors import ConfigError
from relmgr.settings import Settings
from relmgr.temporal import seed
from relmgr.temporal.messages import OnFailure


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every attempt of `relmgr seed` to connect; a rejected shape must make none."""
    made: list[str] = []

    async def no_connect(settings: Settings, **_: object) -> None:
        made.append(settings.temporal_address)
        raise AssertionError("relmgr seed connected although its arguments were rejected")

    monkeypatch.setattr(cli, "connect", no_connect)
    return made


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--waves", "0"], "--waves must be a whole number from 1 to 99, not 0"),
        (["--waves", "-3"], "--waves must be a whole number from 1 to 99, not -3"),
        (["--waves", "100"], "--waves must be a whole number from 1 to 99, not 100"),
        (["--clusters", "0"], "--clusters must be a whole number from 1 to 1,000, not 0"),
        (["--clusters", "1001"], "--clusters must be a whole number from 1 to 1,000, not 1001"),
        (["--apps", "-1"], "--apps must be a whole number from 1 to 1,000, not -1"),
        (["--apps", "5000"], "--apps must be a whole number from 1 to 1,000, not 5000"),
        (["--releases", "0"], "--releases must be a whole number from 1 to 1,000, not 0"),
        (["--failure-rate", "1.5"], "--failure-rate must be a probability from 0 to 1, not 1.5"),
        (["--failure-rate", "-0.1"], "--failure-rate must be a probability from 0 to 1, not -0.1"),
        (["--failure-rate", "nan"], "--failure-rate must be a probability from 0 to 1, not nan"),
        (["--app-seconds", "-1"], "--app-seconds must be a number of seconds from 0 to 2400"),
        (["--name", "Has_Caps"], "--name 'Has_Caps' does not make valid release IDs"),
    ],
)
def test_impossible_shape_exits_2_with_the_option_named_and_starts_nothing(
    args: list[str],
    message: str,
    connections: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each impossible value gets exit status 2, a one-line message naming it, no connection."""
    options = {"--waves": "2", "--clusters": "3", "--apps": "4"}
    options.update(zip(args[::2], args[1::2], strict=True))

    status = cli.main(["seed", *(part for pair in options.items() for part in pair)])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.startswith("relmgr seed: error: ")
    assert message in err
    assert "Traceback" not in err
    assert connections == []


def test_more_than_100000_workflows_in_all_is_refused(
    connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A shape within every per-level limit but too big in total is refused too."""
    status = cli.main(["seed", "--waves", "10", "--clusters", "100", "--apps", "100"])

    err = capsys.readouterr().err
    assert status == 2
    assert "would run 102,011 workflows; at most 100,000 are allowed" in err
    assert connections == []


def test_non_numeric_count_is_an_argparse_usage_error(
    connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse itself rejects `--waves many` with status 2."""
    status = cli.main(["seed", "--waves", "many", "--clusters", "1", "--apps", "1"])

    assert status == 2
    assert "argument --waves: invalid int value: 'many'" in capsys.readouterr().err
    assert connections == []


def test_missing_shape_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--waves, --clusters and --apps are required."""
    assert cli.main(["seed", "--waves", "1"]) == 2
    assert "the following arguments are required: --clusters, --apps" in capsys.readouterr().err


def test_entity_count_is_one_plus_w_plus_2wc_plus_wca() -> None:
    """The workflow count of a spec, and the plan built for it, agree with the formula."""
    spec = seed.simulation_spec(waves=5, clusters=20, apps=10, releases=2, name="x")
    assert spec.workflow_count == 2 * 1206
    plan = seed.simulated_plan(3, 4, 5)
    assert plan.entity_count == 1 + 3 + 24 + 60
    assert [len(w.clusters) for w in plan.waves] == [4, 4, 4]


def test_generated_names_are_distinct_and_valid_past_the_built_in_lists() -> None:
    """Cluster and app names never repeat, even beyond the well-known ones."""
    clusters = seed.cluster_names(1000)
    apps = seed.app_names(1000)
    assert len(set(clusters)) == 1000
    assert len(set(apps)) == 1000
    assert clusters[:3] == ["eu-west-1", "us-east-1", "eu-central-1"]
    assert apps[16:18] == ["svc-17", "svc-18"]


def test_spec_release_ids_and_deploy_options() -> None:
    """IDs are rel-NAME-1..N; --app-seconds S means deploys of 0.5 S to 1.5 S."""
    spec = seed.simulation_spec(
        waves=1, clusters=1, apps=1, releases=3, app_seconds=4, failure_rate=0.25, seed=9, name="x"
    )
    assert spec.release_ids() == ["rel-x-1", "rel-x-2", "rel-x-3"]
    options = spec.options()
    assert (options.min_seconds, options.max_seconds) == (2.0, 6.0)
    assert (options.failure_rate, options.seed) == (0.25, 9)


def test_default_name_makes_valid_ids() -> None:
    """Without --name the releases are called rel-sim-<date>-<time>-<n>."""
    spec = seed.simulation_spec(waves=1, clusters=1, apps=1, releases=2)
    assert spec.name.startswith("sim-")
    assert spec.release_ids()[1] == f"rel-{spec.name}-2"


def test_too_long_name_is_refused() -> None:
    """A prefix that makes an ID longer than the grammar allows is a ConfigError."""
    with pytest.raises(ConfigError, match="does not make valid release IDs"):
        seed.simulation_spec(waves=1, clusters=1, apps=1, name="a" * 39)


def test_demo_set_is_fixed_and_mixed() -> None:
    """The demo has fixed names, one big 1,206-workflow release, a failing, a retrying and a
    delayed one, so a second `relmgr dev` recognises it and the dashboard shows every state."""
    demos = {d.release_id: d for d in seed.demo_releases()}
    assert list(demos) == [d.release_id for d in seed.demo_releases()]
    assert set(demos) == {
        "rel-demo-payments-small",
        "rel-demo-auth-hotfix",
        "rel-demo-checkout-failed",
        "rel-demo-search-retrying",
        "rel-demo-inventory-rollout",
        "rel-demo-platform-big",
        "rel-demo-orders-gated",
        "rel-demo-shipping-held",
        "rel-demo-billing-scheduled",
    }
    gated = [d.release_id for d in demos.values() if d.approval_gates]
    assert gated == ["rel-demo-orders-gated"]
    held = demos["rel-demo-shipping-held"]
    assert (held.options.on_failure, held.options.fail_apps) == ("hold", ("catalog",))
    assert "catalog" in held.plan.waves[0].clusters[0].bundle.apps
    assert demos["rel-demo-platform-big"].plan.entity_count == 1206
    assert demos["rel-demo-platform-big"].options.min_seconds >= 5
    failing = demos["rel-demo-checkout-failed"]
    assert failing.options.fail_apps == ("cart",)
    assert "cart" in failing.plan.waves[0].clusters[0].bundle.apps
    retrying = demos["rel-demo-search-retrying"].options
    assert retrying.max_attempts * retrying.retry_seconds >= 120
    assert demos["rel-demo-billing-scheduled"].start_delay_seconds >= 3600
    delayed = [d for d in demos.values() if d.start_delay_seconds]
    assert delayed == [demos["rel-demo-billing-scheduled"]]


def test_seed_options_for_gates_and_held_failures() -> None:
    """`--approval-gates` and `--on-failure hold` reach the spec and the deploy options;
    without them a release has no gates and fails as before."""
    shape = ["seed", "--waves", "2", "--clusters", "1", "--apps", "1"]
    args = cli.build_parser().parse_args([*shape, "--approval-gates", "--on-failure", "hold"])
    assert (args.approval_gates, args.on_failure) == (True, "hold")
    spec = seed.simulation_spec(
        waves=2, clusters=1, apps=1, approval_gates=True, on_failure=OnFailure.HOLD, name="g"
    )
    assert spec.approval_gates is True
    assert spec.options().on_failure is OnFailure.HOLD
    plain = seed.simulation_spec(waves=2, clusters=1, apps=1, name="p")
    assert (plain.approval_gates, plain.options().on_failure) == (False, OnFailure.FAIL)


def test_unknown_on_failure_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--on-failure takes fail or hold only."""
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(
            ["seed", "--waves", "1", "--clusters", "1", "--apps", "1", "--on-failure", "skip"]
        )
    assert exited.value.code == 2
    assert "invalid choice: 'skip'" in capsys.readouterr().err
