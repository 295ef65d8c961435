"""Controls: approve, pause, resume and cancel a release, retry a held app; and the audit trail.

Every attempt is checked against the user's role before anything reaches Temporal, and recorded
in the audit log with its outcome, accepted or refused; an accepted one is also durable in
Temporal (the Update in history, the release's `relmgr.audit` memo).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from relmgr import ids
from relmgr.api.deps import (
    ApiState,
    CurrentUser,
    ReaderDep,
    StateDep,
    client_address,
    token_user,
)
from relmgr.api.errors import (
    CONFLICT_DOC,
    FORBIDDEN_DOC,
    INVALID_PARAMETER_DOC,
    NOT_FOUND_DOC,
    UNAUTHORIZED_DOC,
    WORKER_UNAVAILABLE_DOC,
    ApiError,
    error_doc,
    status_of,
    validation_message,
)
from relmgr.api.params import RELEASE_ID_PATTERN, AppIdParam, ReleaseIdParam
from relmgr.api.reads import within_budget
from relmgr.api.schemas import (
    ActionRequest,
    ActionResponse,
    ApproveActionRequest,
    AuditEntry,
    AuditTrail,
    CancelActionRequest,
    ReleaseAction,
)
from relmgr.auth.roles import Permission, authorize, role_of
from relmgr.auth.users import USERNAME_PATTERN, User
from relmgr.control.trail import ControlAttempt
from relmgr.errors import InvalidIdError, RelmgrError, TemporalUnavailableError
from relmgr.ids import MAX_ID_LENGTH
from relmgr.models import Control, EntityKind, ReleaseQuery, ReleaseSummary
from relmgr.reader.matching import matching_releases
from relmgr.temporal.messages import (
    ApproveRequest,
    CancelRequest,
    ControlRequest,
    PauseRequest,
    ResumeRequest,
    RetryRequest,
)


def _body_field(body: bytes, name: str) -> str:
    """A string field of a JSON object body, or "" (the body may be anything a client sent)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    value = parsed.get(name) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else ""


async def record_malformed(request: Request, problem: str) -> None:
    """Record a control request refused as malformed before its handler ran (a 422 for its body,
    path or parameters, a 400 for an unreadable body): who sent it if its token is valid, what it
    asked for, and what is wrong. Only the reason and request ID are taken from the body; the
    token is checked, never written."""
    state: ApiState = request.app.state.api
    user = token_user(state, request)
    params = request.path_params
    action = str(params.get("action") or request.url.path.rstrip("/").rsplit("/", 1)[-1])
    try:
        body = await request.body()  # read (and kept) by FastAPI already, unless it failed
    except Exception:  # a body that could not be read at all: record the attempt without it
        body = b""
    state.audit.controls.record(
        username=user.username if user is not None else None,
        role=role_of(user).value if user is not None else None,
        action=action[:40],
        target=str(params.get("release_id") or params.get("app_id") or ""),
        reason=_body_field(body, "reason"),
        request_id=_body_field(body, "request_id"),
        outcome="invalid",
        message=problem,
        client=client_address(request),
    )


class ControlRoute(APIRoute):
    """A control route: a request refused before its handler runs is recorded all the same.

    FastAPI validates the body, path and parameters before it calls the handler, so `_act` never
    sees a malformed request; this wraps each control route's handler to record those too, in
    one place. GET routes (the trail) are reads and are not recorded."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if "POST" not in (self.methods or ()):
            return handle

        async def recorded(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                await record_malformed(request, validation_message(exc))
                raise
            except StarletteHTTPException as exc:
                if exc.status_code in (400, 413):  # an unreadable or oversized body
                    await record_malformed(request, f"invalid request: {exc.detail}")
                raise

        return recorded


router = APIRouter(tags=["controls"], route_class=ControlRoute)

_ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Accepted: the outcome and the entity's state right after."},
    400: error_doc(
        "The body cannot be read as JSON.", "bad_request", "There was an error parsing the body"
    ),
    401: UNAUTHORIZED_DOC,
    403: FORBIDDEN_DOC,
    404: NOT_FOUND_DOC,
    409: CONFLICT_DOC,
    422: INVALID_PARAMETER_DOC,
    503: WORKER_UNAVAILABLE_DOC,
}
_REQUESTS: dict[Control, type[ControlRequest]] = {
    Control.PAUSE: PauseRequest,
    Control.RESUME: ResumeRequest,
    Control.CANCEL: CancelRequest,
    Control.RETRY: RetryRequest,
}


def _outcome_of(exc: RelmgrError) -> str:
    status, _ = status_of(exc)
    return {403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid"}.get(
        status, "unavailable" if status == 503 else "failed"
    )


def _control_request(action: Control, user: User, role: str, body: ActionRequest) -> ControlRequest:
    if isinstance(body, ApproveActionRequest):
        return ApproveRequest(user=user.username, role=role, reason=body.reason, wave=body.wave)
    return _REQUESTS[action](user=user.username, role=role, reason=body.reason)


async def _act(
    state: ApiState,
    request: Request,
    user: User,
    action: Control,
    target_id: str,
    body: ActionRequest,
) -> ActionResponse:
    """Authorise, send and record one control; every outcome is written to the audit log."""
    request_id = body.request_id or uuid.uuid4().hex

    def record(outcome: str, message: str) -> None:
        state.audit.controls.record(
            username=user.username,
            role=role_of(user).value,
            action=action.value,
            target=target_id,
            reason=body.reason,
            request_id=request_id,
            outcome=outcome,
            message=message,
            client=client_address(request),
        )

    try:
        role = authorize(user, Permission.CONTROL)
        kind = EntityKind.APP if action is Control.RETRY else EntityKind.RELEASE
        ids.parse_entity_id(target_id, kind=kind)
        control = _control_request(action, user, role.value, body)
        if state.controller is None:
            raise TemporalUnavailableError("the API is still connecting to Temporal")
        result = await state.controller.send(action, target_id, control, request_id=request_id)
    except RelmgrError as exc:
        record(_outcome_of(exc), exc.message)
        raise
    record("accepted", result.message)
    return ActionResponse(
        action=result.action,
        entity_id=result.entity_id,
        state=result.state,
        message=result.message,
        request_id=request_id,
    )


@router.post(
    "/api/releases/{release_id}/actions/approve",
    response_model=ActionResponse,
    summary="Approve the gated wave awaiting approval",
    responses=_ACTION_ERRORS,
)
async def approve_wave(
    release_id: ReleaseIdParam,
    body: ApproveActionRequest,
    request: Request,
    user: CurrentUser,
    state: StateDep,
) -> ActionResponse:
    """Let wave `wave` deploy (operators and admins). 409 says why when it cannot, e.g. "wave 3 is
    PENDING; wave 2 is awaiting approval". The same `request_id` sent twice approves once."""
    return await _act(state, request, user, Control.APPROVE, release_id, body)


@router.post(
    "/api/releases/{release_id}/actions/cancel",
    response_model=ActionResponse,
    summary="Cancel a release (a reason is required)",
    responses=_ACTION_ERRORS,
)
async def cancel_release(
    release_id: ReleaseIdParam,
    body: CancelActionRequest,
    request: Request,
    user: CurrentUser,
    state: StateDep,
) -> ActionResponse:
    """Cancel cooperatively: the running wave's workflows are cancelled (never terminated) and
    every unfinished entity ends CANCELLED (operators and admins)."""
    return await _act(state, request, user, Control.CANCEL, release_id, body)


@router.post(
    "/api/releases/{release_id}/actions/{action}",
    response_model=ActionResponse,
    summary="Pause or resume a release",
    responses=_ACTION_ERRORS,
)
async def pause_or_resume(
    release_id: ReleaseIdParam,
    action: ReleaseAction,
    body: ActionRequest,
    request: Request,
    user: CurrentUser,
    state: StateDep,
) -> ActionResponse:
    """`pause`: the running wave finishes and no new wave starts (PAUSED at once); `resume`:
    carry on (operators and admins)."""
    return await _act(state, request, user, Control(action.value), release_id, body)


@router.post(
    "/api/entities/{app_id}/actions/retry",
    response_model=ActionResponse,
    summary="Deploy a held failed app again",
    responses=_ACTION_ERRORS,
)
async def retry_app(
    app_id: AppIdParam,
    body: ActionRequest,
    request: Request,
    user: CurrentUser,
    state: StateDep,
) -> ActionResponse:
    """Retry an app that failed and holds its wave (releases started with `--on-failure hold`)."""
    return await _act(state, request, user, Control.RETRY, app_id, body)


def _moment(text: str) -> datetime:
    """An ISO 8601 date-time with a time zone; 422 naming the format otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(
            422,
            "invalid_parameter",
            "since must be an ISO 8601 date-time with a time zone, e.g. 2026-11-26T12:00:00Z",
        )
    return moment


def _release_of(target: str) -> str | None:
    try:
        return ids.parse_entity_id(target).release_id
    except InvalidIdError:
        return None


def _from_temporal(summary: ReleaseSummary) -> list[AuditEntry]:
    return [
        AuditEntry(
            at=record.at,
            user=record.user,
            role=record.role or None,
            action=record.action.value,
            target=record.target,
            release_id=summary.id,
            reason=record.reason,
            request_id=record.request_id,
            outcome=record.outcome,
            source="temporal",
        )
        for record in summary.audit
    ]


def _from_log(attempt: ControlAttempt) -> AuditEntry:
    return AuditEntry(
        at=attempt.ts,
        user=attempt.user,
        role=attempt.role,
        action=attempt.action,
        target=attempt.target,
        release_id=_release_of(attempt.target),
        reason=attempt.reason,
        request_id=attempt.request_id,
        outcome=attempt.outcome,
        message=attempt.message,
        source="audit_log",
    )


@router.get(
    "/api/audit",
    response_model=AuditTrail,
    summary="The audit trail of controls, accepted and refused, newest first",
    responses={
        200: {"description": "Control attempts, newest first."},
        401: UNAUTHORIZED_DOC,
        404: NOT_FOUND_DOC,
        422: INVALID_PARAMETER_DOC,
        503: WORKER_UNAVAILABLE_DOC,
    },
)
async def audit_trail(
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    release_id: Annotated[
        str | None,
        Query(
            description="Only this release's controls.",
            json_schema_extra={"pattern": RELEASE_ID_PATTERN, "maxLength": MAX_ID_LENGTH},
        ),
    ] = None,
    by: Annotated[
        str | None,
        Query(
            alias="user",
            description="Only this user's.",
            json_schema_extra={"pattern": USERNAME_PATTERN.pattern},
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            description="Only at or after this time (ISO 8601 with a time zone, e.g. "
            "2026-11-26T12:00:00Z).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> AuditTrail:
    """Accepted controls from Temporal (each release's `relmgr.audit` memo, read with the release
    in the same list call) merged with refused attempts from the audit log."""
    authorize(user, Permission.READ)
    if release_id is not None:
        ids.validate_release_id(release_id)
    if by is not None and not USERNAME_PATTERN.fullmatch(by):
        raise ApiError(422, "invalid_parameter", "user must be a username (1-64 of [a-z0-9._-])")
    after = _moment(since) if since is not None else None
    if release_id is not None:
        summaries = [await within_budget(reader.get_release(release_id))]
    else:
        summaries = list((await within_budget(matching_releases(reader, ReleaseQuery()))).items)
    entries = [entry for summary in summaries for entry in _from_temporal(summary)]
    durable = {entry.request_id for entry in entries}
    for attempt in state.audit.controls.attempts():
        # An accepted attempt whose record Temporal holds is shown once, from Temporal; one
        # that has left the memo's last N stays visible from the log.
        if attempt.outcome == "accepted" and attempt.request_id in durable:
            continue
        entries.append(_from_log(attempt))
    chosen = [
        entry
        for entry in entries
        if (release_id is None or entry.release_id == release_id)
        and (by is None or entry.user == by)
        and (after is None or entry.at >= after)
    ]
    chosen.sort(key=lambda entry: entry.at, reverse=True)
    return AuditTrail(items=tuple(chosen[:limit]))
