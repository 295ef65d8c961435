"""A Temporal dev server run as a subprocess we own: stop it, start it again on the same port.

The session fixture's server cannot be stopped mid-session, and `WorkflowEnvironment` picks a new
port on every start; the outage and restart tests (and the benchmark, which measures the server's
CPU by its PID) need a server they can kill and bring back at the same address, optionally with
an on-disk database so that workflows survive the restart.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from relmgr.cli.devserver import dev_server_command, find_temporal_binary
from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process


class DevServerProcess:
    """`temporal server start-dev` on 127.0.0.1:`port`, with relmgr's search attributes."""

    def __init__(self, *, port: int | None = None, db_file: Path | None = None) -> None:
        self.port = port or free_port()
        # A port we picked may be taken before the server binds it (relmgr/testing/ports.py);
        # until the first start has succeeded we may pick another. After that the address must stay.
        self._may_move = port is None
        self.db_file = db_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the gRPC frontend."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process ID (the dev server runs in the CLI's own process)."""
        assert self._process is not None, "not started"
        return self._process.pid

    def _command(self) -> list[str]:
        return dev_server_command(
            find_temporal_binary(),
            port=self.port,
            ui_port=None,
            db_file=self.db_file,
            log_level="error",
        )

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the server process (Popen returns at once; `start` waits for it to answer)."""
        self._process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self._process

    async def start(self, *, wait_seconds: float = 60.0) -> Client:
        """Start the server and return a client once it answers; on the first start, a server
        that exits at once (its port taken meanwhile) is started again on another port."""
        process = self.spawn()
        moves = 3 if self._may_move else 0
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                # The namespace and search attributes are registered a moment after the port
                # opens; a count on a custom attribute proves both.
                await client.count_workflows("RelmgrKind = 'release'")
                self._may_move = False
                return client
            except Exception:
                if process.poll() is not None:
                    if moves > 0:
                        moves -= 1
                        self.port = free_port()
                        process = self.spawn()
                        continue
                    raise RuntimeError(
                        f"temporal dev server exited with {process.returncode}"
                    ) from None
                if asyncio.get_running_loop().time() > deadline:
                    self.stop()
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        process, self._process = self._process, None
        stop_process(process)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")
