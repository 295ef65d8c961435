"""A `relmgr dev` session in this process (Temporal and the worker, no API or dashboard): demo on
the first run only, a Temporal server that dies is restarted, cancelling stops the server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from relmgr.cli import dev
from relmgr.temporal.seed import demo_releases
from relmgr.testing.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the test process's logging and SDK runtime as they are (the session would send both
    to its data directory, which suits a program, not a test run)."""

    @contextlib.contextmanager
    def unchanged(path: Path) -> Iterator[None]:
        yield

    # Patched where DevSession looks it up.
    monkeypatch.setattr("relmgr.cli.dev.session.logs_to_file", unchanged)
    monkeypatch.setattr("relmgr.auth.users.BCRYPT_ROUNDS", 4)


async def _until(out: io.StringIO, text: str, task: asyncio.Task[None], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while text not in out.getvalue():
        if task.done():
            task.result()
            pytest.fail(f"the session ended before printing {text!r}:\n{out.getvalue()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} within {within} s:\n{out.getvalue()}")
        await asyncio.sleep(0.05)


async def _stop(session: dev.DevSession, task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.temporal is not None
    assert session.temporal.exit_status() is not None


async def test_demo_on_first_run_only_and_temporal_restarted(tmp_path: Path) -> None:
    """Run 1 starts the demo set and restarts a killed server; run 2 finds the same releases and
    starts no demo."""
    config = dev.DevConfig(
        data_dir=tmp_path / "data",
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        api_port=free_port(),
        ui_port=free_port(),
        api=False,
        ui=False,
        grace_seconds=3,
    )
    out = io.StringIO()
    session = dev.DevSession(config, out)
    task = asyncio.create_task(session.run())
    try:
        await _until(out, "Press Ctrl-C to stop.", task)
        for demo in demo_releases():
            assert demo.release_id in out.getvalue()
        assert (tmp_path / "data" / "demo-seeded").read_text().split() == [
            d.release_id for d in demo_releases()
        ]

        assert session.temporal is not None
        assert session.temporal.pid is not None
        os.kill(session.temporal.pid, signal.SIGKILL)
        await _until(out, "Temporal is back", task)
    finally:
        await _stop(session, task)

    out = io.StringIO()
    session = dev.DevSession(config, out)
    task = asyncio.create_task(session.run())
    try:
        await _until(out, "Press Ctrl-C to stop.", task)
        assert "reopening" in out.getvalue()
        assert "starting the demo releases" not in out.getvalue()
        client = await Client.connect(
            config.temporal_address, data_converter=pydantic_data_converter
        )
        listed = [w.id async for w in client.list_workflows("RelmgrKind = 'release'")]
        assert sorted(listed) == sorted(d.release_id for d in demo_releases())
    finally:
        await _stop(session, task)
