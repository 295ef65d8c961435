"""Logging in for a bearer token, logging it out, and asking whose token it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from relmgr.api.audit import AuditEvent
from relmgr.api.bodies import AUTH_BODY_LIMIT
from relmgr.api.deps import CurrentUser, SessionDep, StateDep, client_address, ledger_read
from relmgr.api.errors import UNAUTHORIZED_DOC, ApiError, error_doc
from relmgr.api.schemas import TokenResponse, UserInfo
from relmgr.errors import ConfigError

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Log in with a username and password for a bearer token",
    responses={
        400: error_doc(
            "A body that cannot be parsed as a form.",
            "bad_request",
            "Missing boundary in multipart.",
        ),
        401: error_doc(
            "Wrong username or password.",
            "invalid_credentials",
            "wrong username or password",
        ),
        413: error_doc(
            f"A body over {AUTH_BODY_LIMIT} bytes (refused before it is parsed).",
            "payload_too_large",
            f"request body too large: at most {AUTH_BODY_LIMIT} bytes",
            {"limit": AUTH_BODY_LIMIT},
        ),
        422: error_doc(
            "A missing or malformed form field.",
            "invalid_parameter",
            "invalid request: body parameter 'password': Field required",
            [{"location": "body", "name": "password", "problem": "Field required"}],
        ),
        429: error_doc(
            "Too many failed logins for this username or from this client; "
            "retry after `Retry-After` seconds.",
            "too_many_requests",
            "too many failed logins; retry in 42 s",
            {"retry_after": 42},
        ),
    },
)
async def login(
    request: Request,
    response: Response,
    state: StateDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenResponse:
    """Check the password against the users file (the dashboard's) and sign a token for the user.

    Send `username` and `password` as an `application/x-www-form-urlencoded` body (OAuth2
    password flow); use the returned `access_token` as `Authorization: Bearer <access_token>`.
    """
    # Judged with what the other replicas know (a token issued with a stale generation would be
    # refused at once; a throttle reached elsewhere holds here).
    await ledger_read(state)
    client = client_address(request)
    throttle = state.limiter.start(form.username, client)
    if throttle is not None:
        state.audit.record(
            AuditEvent.LOGIN_THROTTLED, client=client, username=form.username, reason=throttle.scope
        )
        raise ApiError(
            429,
            "too_many_requests",
            f"too many failed logins; retry in {throttle.retry_after} s",
            headers={"Retry-After": str(throttle.retry_after)},
            details={"retry_after": throttle.retry_after},
        )
    user = None
    try:
        # bcrypt takes a quarter of a second on purpose: keep it off the event loop.
        user = await run_in_threadpool(state.users.authenticate, form.username, form.password)
    finally:
        state.limiter.finish(form.username, client, failed=user is None)
    if user is None:
        state.audit.record(AuditEvent.LOGIN_FAILED, client=client, username=form.username)
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    issued = state.tokens.issue(user)
    # A token response must never be cached (RFC 6749, section 5.1).
    response.headers["Cache-Control"] = "no-store"
    state.audit.record(AuditEvent.LOGIN_SUCCEEDED, client=client, username=user.username)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get(
    "/me",
    response_model=UserInfo,
    summary="The user the bearer token belongs to",
    responses={401: UNAUTHORIZED_DOC},
)
async def me(user: CurrentUser, response: Response) -> UserInfo:
    """Who you are, as the users file says now."""
    response.headers["Cache-Control"] = "no-store"
    return UserInfo(username=user.username, name=user.name, email=user.email, roles=user.roles)


@router.post(
    "/logout",
    status_code=204,
    summary="End the bearer token presented",
    responses={
        401: UNAUTHORIZED_DOC,
        503: error_doc(
            "The revoked sessions file cannot be written; the token stays valid.",
            "service_unavailable",
            "logout not recorded: the revoked sessions file cannot be written",
        ),
    },
)
async def logout(request: Request, session: SessionDep, state: StateDep) -> Response:
    """Revoke this token: from now on every request with it gets 401, on every replica."""
    try:
        await run_in_threadpool(
            state.revocations.revoke, {session.claims.jti: float(session.claims.expires_at)}
        )
    except ConfigError as exc:
        raise ApiError(
            503,
            "service_unavailable",
            "logout not recorded: the revoked sessions file cannot be written",
        ) from exc
    state.audit.record(
        AuditEvent.LOGOUT, client=client_address(request), username=session.user.username
    )
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
