"""Liveness and readiness probes (no token needed, never cached)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from relmgr.api.deps import StateDep
from relmgr.api.errors import UNAVAILABLE_DOC
from relmgr.api.reads import within_budget
from relmgr.api.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, summary="Liveness: the process answers")
async def health(response: Response) -> HealthResponse:
    """Always 200 while the process runs; says nothing about Temporal."""
    response.headers["Cache-Control"] = "no-store"
    return HealthResponse()


@router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="Readiness: the API can read from Temporal",
    responses={503: UNAVAILABLE_DOC},
)
async def ready(response: Response, state: StateDep) -> ReadyResponse:
    """200 when Temporal answers within the read budget; 503 with `Retry-After` otherwise."""
    if state.reader is None:
        raise state.not_connected()
    await within_budget(state.reader.check_ready())
    response.headers["Cache-Control"] = "no-store"
    stats = state.reader.stats()
    return ReadyResponse(
        refresh_cycles=stats.refresh_cycles,
        list_calls=stats.list_calls,
        refreshing=stats.refreshing,
    )
