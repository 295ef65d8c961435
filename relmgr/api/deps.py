"""The API's dependencies: its per-app state, the reader, and the user behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from relmgr.api.audit import AuditEvent, AuditLog
from relmgr.api.caching import SnapshotCache
from relmgr.api.errors import ApiError
from relmgr.api.security import TokenProblem, TokenRejectedError, TokenService
from relmgr.api.users import UsersStore
from relmgr.auth import User
from relmgr.control import ControlSender
from relmgr.errors import TemporalUnavailableError
from relmgr.reader.base import ReleaseReader
from relmgr.settings import Settings
from relmgr.throttle import LoginLimiter

TOKEN_URL = "/api/auth/login"  # noqa: S105  # a route, not a password


@dataclass
class ApiState:
    """Everything one app instance holds: no module-level singletons, so tests can run many apps."""

    settings: Settings
    tokens: TokenService
    users: UsersStore
    limiter: LoginLimiter
    audit: AuditLog
    reader: ReleaseReader | None = None
    controller: ControlSender | None = None
    cache: SnapshotCache = field(default_factory=SnapshotCache)

    @property
    def max_age(self) -> int:
        """Seconds a client may reuse a read without asking (about one refresh of the reader)."""
        return max(1, round(self.settings.refresh_seconds))


# The dependencies are `async def` so FastAPI runs them on the event loop: they are cheap, and a
# worker-thread hop per request would cost more than the work itself.


async def get_state(request: Request) -> ApiState:
    """The app's state."""
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The client's address as uvicorn saw it (after trusted proxy headers)."""
    return request.client.host if request.client is not None else "unknown"


async def get_reader(state: StateDep) -> ReleaseReader:
    """The reader; 503 while the API is still connecting to Temporal."""
    if state.reader is None:
        raise TemporalUnavailableError("the API is still connecting to Temporal")
    return state.reader


ReaderDep = Annotated[ReleaseReader, Depends(get_reader)]


async def get_controller(state: StateDep) -> ControlSender:
    """The controller; 503 while the API is still connecting to Temporal."""
    if state.controller is None:
        raise TemporalUnavailableError("the API is still connecting to Temporal")
    return state.controller


ControllerDep = Annotated[ControlSender, Depends(get_controller)]

# auto_error=False: a missing token is refused below, in the API's own error shape.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

_MESSAGES = {
    TokenProblem.MISSING: "missing bearer token: log in at POST /api/auth/login and send "
    "'Authorization: Bearer <access_token>'",
    TokenProblem.EXPIRED: "the bearer token has expired: log in again at POST /api/auth/login",
    TokenProblem.UNKNOWN_USER: "the bearer token's user no longer exists",
}
_DEFAULT_MESSAGE = "the bearer token is invalid: log in again at POST /api/auth/login"


def _refuse(problem: TokenProblem) -> ApiError:
    code = {
        TokenProblem.MISSING: "not_authenticated",
        TokenProblem.EXPIRED: "token_expired",
    }.get(problem, "invalid_token")
    header = "Bearer" if problem is TokenProblem.MISSING else 'Bearer error="invalid_token"'
    return ApiError(
        401,
        code,
        _MESSAGES.get(problem, _DEFAULT_MESSAGE),
        headers={"WWW-Authenticate": header},
    )


async def current_user(
    request: Request,
    state: StateDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    """The user a valid bearer token names; 401 with `WWW-Authenticate: Bearer` otherwise."""
    try:
        if not token:
            raise TokenRejectedError(TokenProblem.MISSING)
        claims = state.tokens.verify(token)
        user = state.users.get(claims.subject)
        if user is None:
            raise TokenRejectedError(TokenProblem.UNKNOWN_USER)
    except TokenRejectedError as exc:
        state.audit.record(
            AuditEvent.TOKEN_REJECTED,
            client=client_address(request),
            reason=exc.problem.value,
            path=request.url.path,
        )
        raise _refuse(exc.problem) from None
    return user


CurrentUser = Annotated[User, Depends(current_user)]
