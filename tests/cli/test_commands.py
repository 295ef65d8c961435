"""`relmgr seed`, `worker` and `api`, and the demo set, against the session's real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from relmgr import ids
from relmgr.cli import main as cli
from relmgr.errors import AlreadyExistsError, InvalidIdError, TemporalUnavailableError
from relmgr.models import EntityState
from relmgr.settings import Settings
from relmgr.temporal.contract import SA_KIND, SA_STATE
from relmgr.temporal.messages import DeployOptions, Outcome
from relmgr.temporal.seed import DemoRelease, demo_releases, simulated_plan, start_demo
from relmgr.temporal.starter import start_release
from relmgr.temporal.worker import build_worker
from relmgr.testing.ports import free_port
from tests.cli.support import REPO_ROOT, relmgr_command, subprocess_env


def _address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def _run(*args: str, env: dict[str, str], within: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *relmgr_command(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _count(client: Client, release_id: str, expected: int) -> int:
    # Visibility is eventually consistent: give it a moment to list every workflow.
    count = 0
    for _ in range(100):
        count = (await client.count_workflows(f"RelmgrReleaseId = '{release_id}'")).count
        if count >= expected:
            break
        await asyncio.sleep(0.1)
    return count


@pytest.mark.integration
async def test_seed_prints_the_ids_and_every_workflow_runs(
    temporal_env: WorkflowEnvironment, client: Client
) -> None:
    """`relmgr seed` prints only the release IDs on stdout; each release runs 1+W+2WC+WCA
    workflows to SUCCEEDED on a worker of the chosen task queue."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    name = f"t{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=task_queue):
        status, out, err = await _run(
            "seed",
            "--waves",
            "2",
            "--clusters",
            "2",
            "--apps",
            "3",
            "--releases",
            "2",
            "--app-seconds",
            "0.02",
            "--name",
            name,
            "--task-queue",
            task_queue,
            env=subprocess_env(RELMGR_TEMPORAL_ADDRESS=_address(temporal_env)),
        )
        assert status == 0, err
        assert out.splitlines() == [f"rel-{name}-1", f"rel-{name}-2"]
        assert "starting 2 release(s) of 2x2x3 (46 workflows in all)" in err
        for release_id in out.splitlines():
            handle = client.get_workflow_handle(release_id, result_type=Outcome)
            outcome = await asyncio.wait_for(handle.result(), 60)
            assert outcome.state is EntityState.SUCCEEDED
            assert outcome.apps.succeeded == 12
            expected = simulated_plan(2, 2, 3).entity_count
            assert await _count(client, release_id, expected) == expected == 23


@pytest.mark.integration
async def test_seed_with_a_taken_name_starts_nothing_new(
    temporal_env: WorkflowEnvironment, client: Client
) -> None:
    """A release that is already running is not started twice: exit 1 and a one-line reason."""
    name = f"t{uuid.uuid4().hex[:8]}"
    taken = ids.release_id(f"{name}-1")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"  # no worker: the release stays running
    await start_release(client, taken, simulated_plan(1, 1, 1), task_queue=task_queue)
    try:
        status, out, err = await _run(
            "seed",
            "--waves",
            "1",
            "--clusters",
            "1",
            "--apps",
            "1",
            "--name",
            name,
            "--task-queue",
            task_queue,
            env=subprocess_env(RELMGR_TEMPORAL_ADDRESS=_address(temporal_env)),
        )
        assert status == 1
        assert out == ""
        assert err.splitlines()[-1] == (
            f"relmgr seed: release {taken} already exists; choose another name"
        )
        assert "Traceback" not in err
    finally:
        await client.get_workflow_handle(taken).terminate("test over")


async def test_seed_against_no_server_is_one_line_and_exit_1() -> None:
    """Temporal unreachable: exit 1, nothing on stdout, one line that says what to check."""
    address = f"127.0.0.1:{free_port()}"
    status, out, err = await _run(
        "seed",
        "--waves",
        "1",
        "--clusters",
        "1",
        "--apps",
        "1",
        env=subprocess_env(RELMGR_TEMPORAL_ADDRESS=address),
    )
    assert status == 1
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"relmgr seed: cannot connect to Temporal at {address}")
    assert "RELMGR_TEMPORAL_ADDRESS" in last
    assert "Traceback" not in err


def test_worker_that_cannot_connect_exits_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relmgr worker` reports a connection failure in one line, exit 1."""

    async def unreachable(settings: Settings, **_: object) -> Client:
        raise TemporalUnavailableError(f"cannot connect to Temporal at {settings.temporal_address}")

    monkeypatch.setattr(cli, "connect", unreachable)
    monkeypatch.setenv("RELMGR_TEMPORAL_ADDRESS", "127.0.0.1:1")

    assert cli.main(["worker"]) == 1
    assert capsys.readouterr().err == ("relmgr worker: cannot connect to Temporal at 127.0.0.1:1\n")


@pytest.mark.integration
async def test_worker_command_runs_releases_and_stops_on_sigint(
    temporal_env: WorkflowEnvironment, client: Client
) -> None:
    """`relmgr worker` runs a release on its task queue, and SIGINT stops it with exit 0."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    process = await asyncio.create_subprocess_exec(
        *relmgr_command("worker", "--task-queue", task_queue),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(RELMGR_TEMPORAL_ADDRESS=_address(temporal_env)),
        cwd=REPO_ROOT,
    )
    try:
        release_id = ids.release_id(f"t{uuid.uuid4().hex[:8]}")
        handle = await start_release(
            client,
            release_id,
            simulated_plan(1, 2, 2),
            DeployOptions(min_seconds=0, max_seconds=0.02),
            task_queue=task_queue,
        )
        outcome = await asyncio.wait_for(handle.result(), 60)
        assert outcome.state is EntityState.SUCCEEDED
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert f"polling task queue {task_queue!r}" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.integration
async def test_demo_set_starts_once_and_is_recognised_the_second_time(client: Client) -> None:
    """The demo releases start PENDING-visible with their fixed IDs; starting them again while
    they run starts nothing and reports each as already there."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"  # no worker: nothing moves
    expected = [d.release_id for d in demo_releases()]
    try:
        first = [(d.release_id, new) async for d, new in start_demo(client, task_queue=task_queue)]
        assert first == [(release_id, True) for release_id in expected]
        again = [(d.release_id, new) async for d, new in start_demo(client, task_queue=task_queue)]
        assert again == [(release_id, False) for release_id in expected]
        for release_id in expected:
            description = await client.get_workflow_handle(release_id).describe()
            assert description.typed_search_attributes.get(SA_KIND) == "release"
            assert description.typed_search_attributes.get(SA_STATE) == "PENDING"
    finally:
        for release_id in expected:
            with contextlib.suppress(RPCError):  # not started if the test failed early
                await client.get_workflow_handle(release_id).terminate("test over")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`relmgr --help` exits 0 and names dev, worker, seed, users and api."""
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("dev", "worker", "seed", "users", "api"):
        assert f"    {command} " in out


def test_api_command_serves_on_the_given_host_and_settings_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`relmgr api` hands the settings, --host and RELMGR_API_PORT (or --port) to serve()."""
    calls: list[tuple[str, int]] = []

    def serve(settings: Settings, *, host: str, port: int) -> None:
        calls.append((host, port))

    monkeypatch.setattr("relmgr.api.server.serve", serve)
    monkeypatch.setenv("RELMGR_API_PORT", "18123")
    assert cli.main(["api", "--host", "127.0.0.2"]) == 0
    assert cli.main(["api", "--port", "18124"]) == 0
    assert calls == [("127.0.0.2", 18123), ("127.0.0.1", 18124)]


def test_api_refusing_its_configuration_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No JWT secret outside dev mode: the API's ConfigError becomes one line, exit 1."""
    assert cli.main(["api", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err.startswith("relmgr api: RELMGR_JWT_SECRET is missing or a placeholder")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.integration
async def test_starting_a_running_release_again_is_already_exists(client: Client) -> None:
    """A second start of a running release raises AlreadyExistsError naming it (a 409, not the
    422 of a malformed ID), and leaves the first run alone."""
    release_id = ids.release_id(f"t{uuid.uuid4().hex[:8]}")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"  # no worker: the release stays running
    first = await start_release(client, release_id, simulated_plan(1, 1, 1), task_queue=task_queue)
    try:
        with pytest.raises(AlreadyExistsError) as raised:
            await start_release(client, release_id, simulated_plan(2, 1, 1), task_queue=task_queue)
        assert not isinstance(raised.value, InvalidIdError)
        assert raised.value.entity_id == release_id
        assert raised.value.message == f"release {release_id} already exists; choose another name"
        description = await client.get_workflow_handle(release_id).describe()
        assert description.run_id == first.result_run_id
    finally:
        await client.get_workflow_handle(release_id).terminate("test over")


@pytest.mark.integration
async def test_demo_start_reports_a_malformed_id_instead_of_calling_it_already_ran(
    client: Client,
) -> None:
    """Only "already exists" counts as "already ran": a demo release with a malformed ID raises
    InvalidIdError (before it reaches Temporal) instead of being reported as kept."""
    template = demo_releases()[0]
    bad = DemoRelease.model_validate({**template.model_dump(), "release_id": "REL_bad"})
    with pytest.raises(InvalidIdError) as raised:
        await anext(start_demo(client, releases=[bad]))
    assert raised.value.value == "REL_bad"
