"""The ports `relmgr dev` listens on: checked free before anything starts, awaited after."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

from relmgr.cli.dev.children import ChildProcess
from relmgr.cli.dev.config import HOST, DevConfig
from relmgr.errors import ConfigError

_PORT_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class PortUse:
    """A port `relmgr dev` will listen on, and how the user can change it."""

    port: int
    label: str
    option: str
    variable: str


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on `host:port` (a bind test; TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so a port a stopped server left in TIME_WAIT is usable;
        # on Linux the bind still fails while anything listens on the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(uses: list[PortUse]) -> None:
    """Raise ConfigError for a port given twice or already in use, naming the option to change."""
    seen: dict[int, PortUse] = {}
    for use in uses:
        if use.port in seen:
            other = seen[use.port]
            raise ConfigError(
                f"{other.option} and {use.option} are both {use.port}: give each its own port"
            )
        seen[use.port] = use
    for use in uses:
        if not port_is_free(use.port):
            raise ConfigError(
                f"port {use.port} ({use.label}) is already in use on {HOST}: stop what uses it "
                f"(an earlier `relmgr dev`?) or choose another with {use.option} or {use.variable}"
            )


def port_uses(config: DevConfig, *, api: bool, ui: bool) -> list[PortUse]:
    """The ports this run will listen on."""
    uses = [
        PortUse(config.temporal_port, "Temporal", "--temporal-port", "RELMGR_TEMPORAL_PORT"),
        PortUse(
            config.temporal_ui_port, "Temporal UI", "--temporal-ui-port", "RELMGR_TEMPORAL_UI_PORT"
        ),
    ]
    if api:
        uses.append(PortUse(config.api_port, "API", "--api-port", "RELMGR_API_PORT"))
    if ui:
        uses.append(PortUse(config.ui_port, "dashboard", "--ui-port", "RELMGR_UI_PORT"))
    return uses


async def wait_for_port(port: int, child: ChildProcess, within_seconds: float) -> bool:
    """True once something accepts connections on `port`; False if `child` exits or time is up."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline and child.exit_status() is None:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(_PORT_POLL_SECONDS)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
