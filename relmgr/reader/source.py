"""The visibility source: every call the read path makes to Temporal, bounded, counted, translated.

`VisibilitySource` is the injectable I/O object of the reader (as httpx puts its transport
behind one): the cache and the reader only ever call its methods, so tests swap in an
in-memory source and a fake clock. `TemporalVisibility` is the real one, on a `Client`.

Every call is bounded twice: an RPC deadline handed to the server, and an `asyncio.wait_for`
around it, since the SDK retries a dead server on its own. Failures leave as `relmgr.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DescribeWorkflowExecutionRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from relmgr.errors import (
    LiveStateUnavailableError,
    NotFoundError,
    ReadTimeoutError,
    TemporalUnavailableError,
)
from relmgr.models import Entity
from relmgr.reader.protocol import ReaderStats
from relmgr.reader.queries import release_list_query
from relmgr.reader.rows import VisibilityRow, row_from_info
from relmgr.temporal.client import temporal_errors
from relmgr.temporal.contract import QUERY_GET_STATE

# The most rows a visibility page may hold; the SQLite store caps pages at 1,000.
PAGE_SIZE = 1000
# The client-side bound is a little longer than the server deadline, so that the server's
# DEADLINE_EXCEEDED (a clearer error) normally arrives first.
_GRACE_SECONDS = 0.5
# Pauses before the second and third attempt of a call the server refused as unavailable (a
# restart in progress, a dropped connection being re-made): quick, and within the call's bound.
_RETRY_PAUSES = (0.1, 0.25)
_TRANSIENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED})
T = TypeVar("T")


class VisibilitySource(Protocol):
    """What the read path needs from Temporal; every method raises only `relmgr.errors`."""

    async def list_rows(self, query: str, *, delta: bool = False) -> list[VisibilityRow]:
        """Every row matching a visibility query, all pages (`delta`: few rows expected)."""
        ...

    async def describe_row(self, workflow_id: str) -> VisibilityRow:
        """One workflow, fresh; `NotFoundError` if Temporal has none with this ID."""
        ...

    async def query_state(self, workflow_id: str) -> Entity:
        """The `get_state` query; `LiveStateUnavailableError` if no worker answers in time."""
        ...

    async def ping(self) -> None:
        """A cheap call that succeeds only if visibility answers."""
        ...

    def stats(self) -> ReaderStats:
        """The calls made so far, by type."""
        ...


@dataclass
class _Counters:
    list_calls: int = 0
    count_calls: int = 0
    describe_calls: int = 0
    query_calls: int = 0


class TemporalVisibility:
    """The `VisibilitySource` of a real Temporal client."""

    def __init__(
        self,
        client: Client,
        *,
        rpc_timeout: float,
        list_timeout: float | None = None,
        live_query_timeout: float = 1.0,
    ) -> None:
        """`rpc_timeout` bounds describes, counts and delta lists; `list_timeout` one page of a
        full list (a 1,000-row page takes the dev server ~0.45 s idle, more under load)."""
        self._client = client
        self._rpc_timeout = rpc_timeout
        self._list_timeout = list_timeout if list_timeout is not None else 2.5 * rpc_timeout
        self._live_timeout = live_query_timeout
        self._counters = _Counters()
        # Workflow ID -> (memo field, sink): rows of these workflows are not entities; their
        # memo field's JSON bytes go to the sink instead (the auth ledger, `relmgr.auth.ledger`).
        self._memo_sinks: dict[str, tuple[str, Callable[[bytes], None]]] = {}

    def watch_memo(self, workflow_id: str, field: str, sink: Callable[[bytes], None]) -> None:
        """Hand the memo `field` of `workflow_id` to `sink` whenever a list returns its row."""
        self._memo_sinks[workflow_id] = (field, sink)

    async def _call(
        self,
        counter: str,
        make: Callable[[timedelta], Awaitable[T]],
        *,
        seconds: float,
        what: str,
        entity_id: str | None = None,
    ) -> T:
        """One RPC, retried on its own (not by the SDK) while the server is briefly unavailable.

        The SDK's retries are left off (`retry=False` in `make`): with them a dead server holds
        a call for up to the client's retry budget (5-10 s by default); here a refused
        connection fails in well under a second, and every attempt is counted.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds + _GRACE_SECONDS
        with temporal_errors(entity_id=entity_id, what=what):
            for pause in (*_RETRY_PAUSES, None):
                setattr(self._counters, counter, getattr(self._counters, counter) + 1)
                left = max(0.0, deadline - loop.time())
                server_deadline = timedelta(seconds=max(0.05, left - _GRACE_SECONDS))
                try:
                    return await asyncio.wait_for(make(server_deadline), left)
                except RPCError as exc:
                    if exc.status not in _TRANSIENT or pause is None:
                        raise
                    if loop.time() + pause >= deadline:
                        raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def list_rows(self, query: str, *, delta: bool = False) -> list[VisibilityRow]:
        """Every row matching `query`, page by page (each page one counted call).

        A `delta` list (few rows expected) is bounded by the RPC timeout, so that a hung server
        is noticed within one refresh; a full list by the longer list timeout per page.
        """
        rows: list[VisibilityRow] = []
        token = b""
        service = self._client.workflow_service
        seconds = self._rpc_timeout if delta else self._list_timeout
        while True:
            request = ListWorkflowExecutionsRequest(
                namespace=self._client.namespace,
                page_size=PAGE_SIZE,
                next_page_token=token,
                query=query,
            )
            response = await self._call(
                "list_calls",
                lambda left, r=request: service.list_workflow_executions(  # type: ignore[misc]
                    r, retry=False, timeout=left
                ),
                seconds=seconds,
                what="listing workflows",
            )
            for info in response.executions:
                watched = self._memo_sinks.get(info.execution.workflow_id)
                if watched is not None:
                    payload = info.memo.fields.get(watched[0])
                    if payload is not None:
                        watched[1](payload.data)
                    continue
                row = row_from_info(info)
                if row is not None:
                    rows.append(row)
            token = response.next_page_token
            if not token:
                return rows

    async def describe_row(self, workflow_id: str) -> VisibilityRow:
        """One `describe()` of the workflow with this ID."""
        request = DescribeWorkflowExecutionRequest(
            namespace=self._client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id),
        )
        service = self._client.workflow_service
        response = await self._call(
            "describe_calls",
            lambda left: service.describe_workflow_execution(request, retry=False, timeout=left),
            seconds=self._rpc_timeout,
            entity_id=workflow_id,
            what=f"describing {workflow_id}",
        )
        row = row_from_info(response.workflow_execution_info)
        if row is None:
            raise NotFoundError(f"{workflow_id} is not a relmgr entity", entity_id=workflow_id)
        return row

    async def query_state(self, workflow_id: str) -> Entity:
        """The live `get_state` of a workflow, bounded by the live query timeout."""
        self._counters.query_calls += 1
        handle = self._client.get_workflow_handle(workflow_id)
        unanswered = LiveStateUnavailableError(
            f"no worker answered the live query for {workflow_id} within {self._live_timeout:g} s",
            entity_id=workflow_id,
        )
        try:
            with temporal_errors(entity_id=workflow_id, what=f"querying {workflow_id}"):
                result = await asyncio.wait_for(
                    handle.query(
                        QUERY_GET_STATE,
                        result_type=Entity,
                        rpc_timeout=timedelta(seconds=self._live_timeout),
                    ),
                    self._live_timeout + _GRACE_SECONDS,
                )
        except ReadTimeoutError:
            # The server waited for a worker that never took the query (or we gave up first).
            raise unanswered from None
        except TemporalUnavailableError as exc:
            # "No poller seen for the task queue" and similar refusals: no worker, not no server.
            if "poller" in exc.message.lower() or "worker" in exc.message.lower():
                raise unanswered from None
            raise
        if not isinstance(result, Entity):
            raise LiveStateUnavailableError(
                f"the live query of {workflow_id} did not return an entity", entity_id=workflow_id
            )
        return result

    async def ping(self) -> None:
        """Count the release workflows: proves the server, the namespace and the attributes."""
        request = CountWorkflowExecutionsRequest(
            namespace=self._client.namespace, query=release_list_query()
        )
        service = self._client.workflow_service
        await self._call(
            "count_calls",
            lambda left: service.count_workflow_executions(request, retry=False, timeout=left),
            seconds=self._rpc_timeout,
            what="checking that Temporal answers",
        )

    def stats(self) -> ReaderStats:
        """The calls made so far, by type."""
        c = self._counters
        return ReaderStats(
            list_calls=c.list_calls,
            count_calls=c.count_calls,
            describe_calls=c.describe_calls,
            query_calls=c.query_calls,
        )
