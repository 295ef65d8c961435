"""The child processes of `relmgr dev`: how each is started, stopped, and what it is given."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from relmgr.cli.dashboard import DashboardFiles, streamlit_command
from relmgr.cli.dev.config import HOST, DevConfig
from relmgr.cli.dev.datadir import DataDir
from relmgr.errors import ConfigError

# The package's parent: the repository root in a checkout (where streamlit_app.py lives), and
# what children need on PYTHONPATH when relmgr is not installed (hence parents[3]: this file is
# relmgr/cli/dev/children.py).
PACKAGE_PARENT = Path(__file__).resolve().parents[3]


@dataclass
class ChildProcess:
    """A child of `relmgr dev`: in its own process group, output appended to its log file."""

    name: str
    argv: list[str]
    log_file: Path
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start (or restart) the process; raise ConfigError if it cannot be executed."""
        self._close_log()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            self._log = self.log_file.open("ab")
            self._log.write(f"\n=== {stamp} relmgr dev starts: {' '.join(self.argv)}\n".encode())
            self._log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - argv built by relmgr, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # A group of its own: Ctrl-C in the terminal reaches relmgr dev only, which
                # stops children in order; the group signal also reaches their own children.
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise ConfigError(
                f"cannot start {self.name} ({self.argv[0]}): {exc.strerror}"
            ) from None

    def exit_status(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    @property
    def pid(self) -> int | None:
        """The process ID, once started."""
        return None if self.process is None else self.process.pid

    def _signal_group(self, signum: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    async def stop(self, grace_seconds: float, hurry: asyncio.Event) -> None:
        """SIGTERM the group, wait up to `grace_seconds` (less if `hurry` is set), then SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            # A child's exit is not awaitable through Popen; a short poll is the simple way.
            while (  # noqa: ASYNC110
                self.process.poll() is None and time.monotonic() < deadline and not hurry.is_set()
            ):
                await asyncio.sleep(0.05)
        # Whatever is left of the group (the leader, or children it left behind) is killed.
        self._signal_group(signal.SIGKILL)
        while self.process.poll() is None:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.05)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def child_environment(
    config: DevConfig, data: DataDir, secret_values: dict[str, str]
) -> dict[str, str]:
    """The environment of the API and Streamlit: this one, pointed at the embedded server."""
    env = {
        name: value
        for name, value in os.environ.items()
        # A TLS or Cloud setup in the caller's shell must not leak into the local dev server's.
        if not name.startswith(("RELMGR_TEMPORAL_TLS", "RELMGR_TEMPORAL_API_KEY"))
    }
    python_path = [str(PACKAGE_PARENT)]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env.update(
        {
            "RELMGR_DEV_MODE": "1",
            "RELMGR_TEMPORAL_ADDRESS": config.temporal_address,
            "RELMGR_TEMPORAL_NAMESPACE": "default",
            "RELMGR_USERS_FILE": str(data.users_file),
            "RELMGR_TEMPORAL_UI_URL": f"http://{HOST}:{config.temporal_ui_port}",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            **secret_values,
        }
    )
    # Logins, refused tokens and exports, beside the children's logs (unless set elsewhere).
    env.setdefault("RELMGR_AUDIT_LOG", str(data.log("audit")))
    return env


def api_command(config: DevConfig) -> list[str]:
    """The argv of the API child."""
    return [sys.executable, "-m", "relmgr", "api", "--host", HOST, "--port", str(config.api_port)]


def ui_command(config: DevConfig, dashboard: DashboardFiles) -> list[str]:
    """The argv of the Streamlit child: the dashboard with its own Streamlit settings."""
    return streamlit_command(dashboard, host=HOST, port=config.ui_port)
