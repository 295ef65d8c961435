"""The deploy activity: a reproducible simulation, or a command run per app without a shell."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from relmgr.settings import get_settings
from relmgr.temporal.activities import command_arguments, deploy_app, simulated_outcome
from relmgr.temporal.messages import DeployOptions, DeployRequest


def _request(app: str = "web", attempt: int = 1, **options: object) -> DeployRequest:
    return DeployRequest(
        app_id=f"rel-x.wave-1.cluster-eu-1.bundle-core.app-{app}",
        app=app,
        cluster="eu-1",
        attempt=attempt,
        options=DeployOptions.model_validate({"min_seconds": 0, "max_seconds": 0.01, **options}),
    )


@pytest.fixture
def deploy_command(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set RELMGR_DEPLOY_COMMAND for one test, with fresh settings before and after."""

    def use(template: str) -> None:
        monkeypatch.setenv("RELMGR_DEPLOY_COMMAND", template)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_the_simulation_is_reproducible_from_its_seed() -> None:
    """The same seed, app and attempt give the same duration and outcome; another seed differs."""
    runs = {
        seed: [simulated_outcome(_request(f"a{i}", seed=seed, failure_rate=0.5)) for i in range(20)]
        for seed in (1, 2)
    }
    again = [simulated_outcome(_request(f"a{i}", seed=1, failure_rate=0.5)) for i in range(20)]
    assert runs[1] == again
    assert runs[1] != runs[2]
    assert 0 < sum(fails for _, fails in runs[1]) < 20


def test_named_apps_always_fail_and_a_zero_rate_never_fails() -> None:
    """fail_apps forces a failure; failure_rate 0 never fails anyone else."""
    assert simulated_outcome(_request("bad", fail_apps=("bad",)))[1] is True
    assert not any(simulated_outcome(_request(f"a{i}"))[1] for i in range(50))


async def test_a_simulated_failure_is_a_non_retryable_deploy_error() -> None:
    """A failed simulated deploy raises DeployFailed, which Temporal must not retry by itself."""
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(deploy_app, _request("bad", fail_apps=("bad",)))
    assert caught.value.type == "DeployFailed"
    assert caught.value.non_retryable is True
    assert caught.value.message == "deploy of bad to eu-1 failed: simulated error (attempt 1)"


def test_command_words_are_formatted_one_by_one() -> None:
    """An app name with spaces or shell syntax stays one argument; nothing is interpreted."""
    request = _request("web")
    hostile = request.model_copy(update={"app": "x; rm -rf / $(id)"})
    assert command_arguments("deploy.sh {app} --cluster={cluster} {attempt}", hostile) == [
        "deploy.sh",
        "x; rm -rf / $(id)",
        "--cluster=eu-1",
        "1",
    ]


def test_an_unknown_placeholder_is_a_clear_error() -> None:
    """A template naming a field that does not exist says which fields do."""
    with pytest.raises(ApplicationError, match=r"use only \{app\}, \{cluster\}"):
        command_arguments("deploy {version}", _request())


async def test_a_command_that_succeeds_deploys(
    tmp_path: Path, deploy_command: Callable[[str], None]
) -> None:
    """Exit status 0 is a successful deploy carrying the command's output."""
    script = tmp_path / "deploy.py"
    script.write_text("import sys\nprint('deployed', sys.argv[1], 'to', sys.argv[2])\n")
    deploy_command(f"{sys.executable} {script} {{app}} {{cluster}}")
    result = await ActivityEnvironment().run(deploy_app, _request("web"))
    assert result.output == "deployed web to eu-1"


async def test_a_command_that_fails_reports_its_output(
    tmp_path: Path, deploy_command: Callable[[str], None]
) -> None:
    """A non-zero exit fails the attempt with the status and the end of the output."""
    script = tmp_path / "deploy.py"
    script.write_text("import sys\nprint('quota exceeded for', sys.argv[1])\nsys.exit(3)\n")
    deploy_command(f"{sys.executable} {script} {{app}}")
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(deploy_app, _request("web"))
    assert caught.value.type == "DeployFailed"
    assert caught.value.message == "deploy command exited with status 3: quota exceeded for web"


async def test_a_missing_command_says_it_could_not_start(
    deploy_command: Callable[[str], None],
) -> None:
    """A command that does not exist fails with a message naming it."""
    deploy_command("/nonexistent/deploy {app}")
    with pytest.raises(ApplicationError, match="'/nonexistent/deploy' could not start"):
        await ActivityEnvironment().run(deploy_app, _request("web"))
