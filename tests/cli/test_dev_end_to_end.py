"""`relmgr dev` for real: it starts, Temporal answers with the contract, Ctrl-C stops every child,
and a second run on the same data directory carries on with the releases of the first."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from relmgr.cli.dev import port_is_free
from relmgr.models import EntityState
from relmgr.temporal.contract import SEARCH_ATTRIBUTES
from relmgr.temporal.messages import Outcome
from relmgr.testing.ports import free_port
from tests.cli.support import REPO_ROOT, relmgr_command, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_LINE = "Press Ctrl-C to stop."


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, from /proc."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after its last ')' do not.
        fields = stat_line.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _started_by(pid: int) -> set[int]:
    """The children of `pid` and every process in their process groups."""
    table = _processes()
    children = {p for p, (parent, _, _) in table.items() if parent == pid}
    return children | {p for p, (_, group, _) in table.items() if group in children}


def _command_lines(pids: set[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def _alive(pids: set[int]) -> set[int]:
    table = _processes()
    return {p for p in pids if p in table and table[p][2] != "Z"}


@dataclass
class DevRun:
    """One `relmgr dev` child process and its output files."""

    process: asyncio.subprocess.Process
    out: Path
    err: Path
    children: frozenset[int] = frozenset()

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    async def ready(self, within: float = 90) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if READY_LINE in text:
                self.children = frozenset(_started_by(self.process.pid))
                return text
            if self.process.returncode is not None:
                pytest.fail(f"relmgr dev exited with {self.process.returncode}:\n{self.output()}")
            await asyncio.sleep(0.1)
        pytest.fail(f"relmgr dev was not ready within {within} s:\n{self.output()}")

    async def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), 60)


@dataclass(frozen=True)
class Ports:
    temporal: int
    temporal_ui: int
    api: int
    ui: int


StartDev = Callable[[str], Awaitable[DevRun]]


@pytest.fixture
def ports() -> Ports:
    return Ports(free_port(), free_port(), free_port(), free_port())


@pytest.fixture
async def start_dev(tmp_path: Path, ports: Ports) -> AsyncIterator[StartDev]:
    """Starts `relmgr dev --no-seed` on the test's ports; kills whatever is left at the end."""
    runs: list[DevRun] = []

    async def start(name: str) -> DevRun:
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *relmgr_command(
                    "dev",
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--temporal-port",
                    str(ports.temporal),
                    "--temporal-ui-port",
                    str(ports.temporal_ui),
                    "--api-port",
                    str(ports.api),
                    "--ui-port",
                    str(ports.ui),
                    "--no-seed",
                ),
                stdout=stdout,
                stderr=stderr,
                env=subprocess_env(),
                cwd=REPO_ROOT,
            )
        run = DevRun(process, out, err)
        runs.append(run)
        return run

    yield start
    for run in runs:  # a failed test leaves nothing behind either
        if run.process.returncode is None:
            run.process.kill()
            await run.process.wait()
        for pid in _alive(set(run.children)):
            os.kill(pid, signal.SIGKILL)


async def _client(port: int) -> Client:
    return await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)


async def _stop_and_check_children(run: DevRun, ports: Ports) -> None:
    children = set(run.children) | _started_by(run.process.pid)
    assert len(children) >= 1, "relmgr dev started no child process"
    assert await run.interrupt() == 0, run.output()
    assert "relmgr dev: stopped" in run.out.read_text()
    assert _alive(children) == set(), f"children left running: {_alive(children)}"
    for port in (ports.temporal, ports.temporal_ui, ports.api, ports.ui):
        assert port_is_free(port), f"port {port} still in use"
    assert "Traceback" not in run.output()


async def test_dev_runs_stops_cleanly_and_carries_on(start_dev: StartDev, ports: Ports) -> None:
    """First run: the server answers with the 5 search attributes, admin's password is printed
    and kept 0600, SIGINT ends every child. Second run on the same data directory: the release
    started during the first is still there and the new worker finishes it."""
    clock = time.monotonic()
    first = await start_dev("first")
    text = await first.ready()
    print(f"first run ready in {time.monotonic() - clock:.1f} s")
    data = Path(re.search(r"\(data in (.+)\)", text).group(1))  # type: ignore[union-attr]
    assert f"Temporal UI   http://127.0.0.1:{ports.temporal_ui}" in text
    assert any(" server start-dev " in line for line in _command_lines(set(first.children)))
    password = re.search(r"Sign in as admin with password (\S+)", text)
    assert password is not None
    assert (data / "admin-password").read_text().strip() == password.group(1)
    for private in ("admin-password", "secrets.env", "users.yaml"):
        assert stat.S_IMODE((data / private).stat().st_mode) == 0o600, private
    assert password.group(1) not in (data / "users.yaml").read_text()

    client = await _client(ports.temporal)
    registered = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert {k.name: registered.custom_attributes.get(k.name) for k in SEARCH_ATTRIBUTES} == {
        k.name: int(k.indexed_value_type) for k in SEARCH_ATTRIBUTES
    }
    _, writer = await asyncio.open_connection("127.0.0.1", ports.temporal_ui)
    writer.close()

    # A release that is still deploying when relmgr dev stops.
    seeding = await asyncio.create_subprocess_exec(
        *relmgr_command(
            "seed",
            "--waves",
            "1",
            "--clusters",
            "1",
            "--apps",
            "2",
            "--app-seconds",
            "2",
            "--name",
            "e2e",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(RELMGR_TEMPORAL_ADDRESS=f"127.0.0.1:{ports.temporal}"),
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(seeding.communicate(), 60)
    assert (seeding.returncode, out.decode()) == (0, "rel-e2e-1\n"), err.decode()

    clock = time.monotonic()
    await _stop_and_check_children(first, ports)
    print(f"first run stopped in {time.monotonic() - clock:.1f} s")

    clock = time.monotonic()
    second = await start_dev("second")
    text = await second.ready()
    print(f"second run ready in {time.monotonic() - clock:.1f} s")
    assert "reopening" in text
    assert f"its password is in {data / 'admin-password'}" in text
    client = await _client(ports.temporal)
    handle = client.get_workflow_handle("rel-e2e-1", result_type=Outcome)
    outcome = await asyncio.wait_for(handle.result(), 60)
    print(f"the release of the first run finished {time.monotonic() - clock:.1f} s later")
    assert outcome.state is EntityState.SUCCEEDED
    assert outcome.apps.succeeded == 2
    clock = time.monotonic()
    await _stop_and_check_children(second, ports)
    print(f"second run stopped in {time.monotonic() - clock:.1f} s")
