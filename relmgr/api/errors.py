"""One JSON error shape for every failure, and the one table mapping each error class to a status.

    {"error": {"code": "invalid_id", "message": "...", "details": {...}}}

`relmgr.errors` classes map through `STATUS_BY_ERROR` (most specific class wins); the API's own
refusals (401, 429) are `ApiError`; FastAPI's validation errors, Starlette's 404/405 and anything
unexpected are reshaped here too. No handler ever puts a traceback or an exception's text from
outside relmgr into a response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from relmgr.api.schemas import ErrorInfo, ErrorResponse
from relmgr.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    InvalidIdError,
    InvalidQueryError,
    LiveStateUnavailableError,
    NotFoundError,
    ReadTimeoutError,
    RelmgrError,
    TemporalUnavailableError,
    WorkerUnavailableError,
)

logger = logging.getLogger("relmgr.api")

# Seconds a client should wait before retrying a 503.
RETRY_AFTER_UNAVAILABLE = 2

# Each relmgr error class answers with exactly one status and code.
STATUS_BY_ERROR: dict[type[RelmgrError], tuple[int, str]] = {
    InvalidIdError: (422, "invalid_id"),
    InvalidQueryError: (422, "invalid_query"),
    NotFoundError: (404, "not_found"),
    AlreadyExistsError: (409, "already_exists"),
    ReadTimeoutError: (503, "temporal_timeout"),
    TemporalUnavailableError: (503, "temporal_unavailable"),
    LiveStateUnavailableError: (503, "live_state_unavailable"),
    WorkerUnavailableError: (503, "worker_unavailable"),
    ConflictError: (409, "conflict"),
    ForbiddenError: (403, "forbidden"),
    ConfigError: (500, "server_misconfigured"),
    RelmgrError: (500, "internal_error"),
}

_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
_MAX_SHOWN = 80


class ApiError(Exception):
    """A refusal decided by the API itself (bad token, too many logins), with its status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Any | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Any | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A response in the one error shape."""
    body = ErrorResponse(error=ErrorInfo(code=code, message=message, details=details))
    return Response(
        content=body.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def status_of(exc: RelmgrError) -> tuple[int, str]:
    """The status and code of a relmgr error: its own class's, else its nearest ancestor's."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return STATUS_BY_ERROR[RelmgrError]


def _details_of(exc: RelmgrError) -> dict[str, str] | None:
    if isinstance(exc, InvalidIdError):
        return {"value": exc.value[:_MAX_SHOWN], "expected": exc.expected}
    if isinstance(exc, InvalidQueryError):
        return {"field": exc.field}
    if isinstance(exc, NotFoundError | AlreadyExistsError | LiveStateUnavailableError):
        return {"entity_id": exc.entity_id[:_MAX_SHOWN]}
    if isinstance(exc, ConflictError):
        return {"entity_id": exc.entity_id[:_MAX_SHOWN]}
    if isinstance(exc, WorkerUnavailableError):
        return {"task_queue": exc.task_queue[:_MAX_SHOWN]}
    if isinstance(exc, ForbiddenError):
        return {"role": exc.role}
    if isinstance(exc, TemporalUnavailableError) and exc.last_success_at is not None:
        return {"last_success_at": exc.last_success_at.isoformat()}
    return None


def relmgr_error_response(exc: RelmgrError) -> Response:
    """The response for a relmgr error (500s keep their message out of the body and in the log)."""
    status, code = status_of(exc)
    headers: dict[str, str] = {}
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    if status >= 500 and status != 503:
        logger.error("relmgr error answered with %d: %s", status, exc.message)
        return error_response(status, code, "the server cannot answer this request; see its log")
    return error_response(status, code, exc.message, details=_details_of(exc), headers=headers)


def _where(loc: tuple[Any, ...] | list[Any]) -> tuple[str, str]:
    parts = [str(p) for p in loc]
    if not parts:
        return "request", ""
    return parts[0], ".".join(parts[1:])


def _problems(exc: RequestValidationError) -> list[dict[str, str]]:
    problems = []
    for err in exc.errors():
        location, name = _where(err.get("loc", ()))
        problems.append({"location": location, "name": name, "problem": str(err.get("msg", ""))})
    return problems


def validation_message(exc: RequestValidationError) -> str:
    """`invalid request: <what is wrong with each parameter>` (the input is not echoed)."""
    summary = "; ".join(
        f"{p['location']} parameter {p['name']!r}: {p['problem']}" if p["name"] else p["problem"]
        for p in _problems(exc)[:5]
    )
    return f"invalid request: {summary}"


def validation_error_response(exc: RequestValidationError) -> Response:
    """A 422 naming each bad parameter and what it should have been (the input is not echoed)."""
    return error_response(422, "invalid_parameter", validation_message(exc), details=_problems(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure through the one error shape."""

    async def on_relmgr_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RelmgrError)
        return relmgr_error_response(exc)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = {
            404: f"no such resource: {request.url.path[:_MAX_SHOWN]}",
            405: f"method {request.method} is not allowed here",
        }.get(exc.status_code, str(exc.detail)[:200])
        return error_response(exc.status_code, code, message, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log only; the client learns nothing about the internals.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error; see the server log")

    app.add_exception_handler(RelmgrError, on_relmgr_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def error_doc(
    description: str, code: str, message: str, details: Any | None = None
) -> dict[str, Any]:
    """An OpenAPI response entry in the error shape, with one example."""
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {
            "application/json": {
                "example": {"error": {"code": code, "message": message, "details": details}}
            }
        },
    }


UNAUTHORIZED_DOC = error_doc(
    "Missing, malformed, expired or revoked bearer token (`WWW-Authenticate: Bearer`).",
    "invalid_token",
    "the bearer token is invalid or expired; log in again at POST /api/auth/login",
)
UNAVAILABLE_DOC = error_doc(
    "Temporal did not answer in time; retry after `Retry-After` seconds.",
    "temporal_unavailable",
    "Temporal is unavailable",
)
INVALID_PARAMETER_DOC = error_doc(
    "A malformed ID, filter or paging value; the message names the expected format.",
    "invalid_id",
    "malformed ID 'REL_1': expected release: rel-<name>, e.g. rel-2026-11-payments "
    "(lowercase letters, digits and '-'; <name> 1-40 and <slug> 1-32 characters)",
    {"value": "REL_1", "expected": "rel-<name>, e.g. rel-2026-11-payments"},
)
NOT_FOUND_DOC = error_doc(
    "A well-formed ID that names no release or entity.",
    "not_found",
    "release rel-2026-11-payments not found",
    {"entity_id": "rel-2026-11-payments"},
)
FORBIDDEN_DOC = error_doc(
    "The user's role does not allow this (controls need operator or admin); nothing was sent.",
    "forbidden",
    "vic has the viewer role; control needs the operator role or higher",
    {"role": "viewer"},
)
CONFLICT_DOC = error_doc(
    "Not possible in the entity's current state; the message says why. Nothing was changed.",
    "conflict",
    "wave 3 is PENDING; wave 2 is awaiting approval",
    {"entity_id": "rel-2026-11-payments"},
)
WORKER_UNAVAILABLE_DOC = error_doc(
    "Temporal or the worker did not answer within 5 s (an Update needs a worker); retry after "
    "`Retry-After` seconds with the same `request_id`. Nothing was changed.",
    "worker_unavailable",
    "no worker is polling task queue relmgr-releases: start one (`relmgr worker`) and try "
    "again; nothing was changed",
    {"task_queue": "relmgr-releases"},
)
