"""Fixtures of the workflow tests: a worker on a task queue of its own, on the session's server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from relmgr.temporal.worker import build_worker


@pytest.fixture
async def worker(client: Client) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own, stopped after the test."""
    w = build_worker(client, task_queue=f"tq-{uuid.uuid4().hex[:8]}")
    async with w:
        yield w
