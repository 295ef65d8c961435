"""The worker that runs the reference release workflows and the deploy activity."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from relmgr.temporal.activities import deploy_app
from relmgr.temporal.contract import TASK_QUEUE
from relmgr.temporal.workflows import WORKFLOWS


def build_worker(
    client: Client,
    task_queue: str = TASK_QUEUE,
    *,
    max_concurrent_activities: int = 200,
) -> Worker:
    """A worker for every relmgr workflow and activity (the client needs the pydantic converter)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[deploy_app],
        max_concurrent_activities=max_concurrent_activities,
    )
