"""The API's dependencies: its per-app state, the reader, and the user behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from relmgr.api.audit import AuditEvent, AuditLog
from relmgr.api.caching import ResponseCache
from relmgr.api.errors import ApiError
from relmgr.api.security import TokenClaims, TokenProblem, TokenRejectedError, TokenService
from relmgr.auth.ledger import AuthLedger
from relmgr.auth.proxies import TrustedProxies
from relmgr.auth.sessions import RevocationStore
from relmgr.auth.store import UsersStore
from relmgr.auth.throttle import LoginLimiter
from relmgr.auth.users import User, session_epoch
from relmgr.control import ControlSender
from relmgr.errors import TemporalUnavailableError
from relmgr.reader.protocol import ReleaseReader
from relmgr.settings import Settings

TOKEN_URL = "/api/auth/login"  # noqa: S105  # a route, not a password


@dataclass
class ApiState:
    """Everything one app instance holds: no module-level singletons, so tests can run many apps."""

    settings: Settings
    tokens: TokenService
    users: UsersStore
    limiter: LoginLimiter
    audit: AuditLog
    revocations: RevocationStore
    ledger: AuthLedger = field(default_factory=AuthLedger)
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))
    reader: ReleaseReader | None = None
    controller: ControlSender | None = None
    cache: ResponseCache = field(default_factory=ResponseCache)
    # Why the last attempt to connect to Temporal failed (cause and setting), until one succeeds.
    connect_problem: str | None = None
    # Whether this app's own reader reads the auth ledger: sessions are then judged and issued
    # once it has been read (see `ledger_read`).
    reads_ledger: bool = False

    def not_connected(self) -> TemporalUnavailableError:
        """The error for a read before the reader exists: the last connection problem, if any."""
        if self.connect_problem is None:
            return TemporalUnavailableError("the API is still connecting to Temporal")
        return TemporalUnavailableError(f"the API is not connected: {self.connect_problem}")

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
    """The client's address: the peer, or what a trusted proxy forwarded (`api.proxied`)."""
    return request.client.host if request.client is not None else "unknown"


async def get_reader(state: StateDep) -> ReleaseReader:
    """The reader; 503 while the API is still connecting to Temporal."""
    if state.reader is None:
        raise state.not_connected()
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

_MISSING_MESSAGE = (
    "missing bearer token: log in at POST /api/auth/login and send "
    "'Authorization: Bearer <access_token>'"
)
# One answer for every refused token, whatever the check that refused it (expired, revoked,
# forged, its user changed or gone): the audit log has the reason, the client learns nothing.
_REFUSED_MESSAGE = (
    "the bearer token is invalid or has expired: log in again at POST /api/auth/login"
)


def _refuse(problem: TokenProblem) -> ApiError:
    if problem is TokenProblem.MISSING:
        return ApiError(
            401, "not_authenticated", _MISSING_MESSAGE, headers={"WWW-Authenticate": "Bearer"}
        )
    return ApiError(
        401,
        "invalid_token",
        _REFUSED_MESSAGE,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@dataclass(frozen=True, slots=True)
class Session:
    """A request's verified bearer token and the user it belongs to now."""

    user: User
    claims: TokenClaims


def _check(state: ApiState, token: str | None) -> Session:
    if not token:
        raise TokenRejectedError(TokenProblem.MISSING)
    claims = state.tokens.verify(token)
    user = state.users.get(claims.subject)
    if user is None:
        raise TokenRejectedError(TokenProblem.UNKNOWN_USER)
    if claims.epoch != session_epoch(user):
        raise TokenRejectedError(TokenProblem.STALE_SESSION)
    if not state.revocations.accepts(claims.jti):
        raise TokenRejectedError(TokenProblem.REVOKED)
    return Session(user=user, claims=claims)


def token_user(state: ApiState, request: Request) -> User | None:
    """The user of the request's bearer token if it is valid now, else None (nothing raised, nothing
    recorded): for a request refused before its dependencies ran, such as a malformed body."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return _check(state, token).user
    except TokenRejectedError:
        return None


async def ledger_read(state: ApiState) -> None:
    """Wait, once per app and at most `FIRST_READ_WAIT_SECONDS`, for the first read of the auth
    ledger: a fresh replica then judges and issues tokens with the sign-outs and generations
    the other replicas know. Free once it has been read."""
    if state.reads_ledger and not state.ledger.first_read_settled:
        # The reader sets `loaded` on this event loop: wait in a thread, never on the loop.
        await run_in_threadpool(state.ledger.await_first_read)


async def current_session(
    request: Request,
    state: StateDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Session:
    """The session of a valid bearer token; 401 with `WWW-Authenticate: Bearer` otherwise.

    Valid means: signed by us, unexpired, its `jti` not revoked, its user still in the users
    file, and its session epoch that user's current one (same password, roles and generation).
    """
    await ledger_read(state)
    try:
        return _check(state, token)
    except TokenRejectedError as exc:
        state.audit.record(
            AuditEvent.TOKEN_REJECTED,
            client=client_address(request),
            reason=exc.problem.value,
            path=request.url.path,
        )
        raise _refuse(exc.problem) from None


SessionDep = Annotated[Session, Depends(current_session)]


async def current_user(session: SessionDep) -> User:
    """The user a valid bearer token names; 401 with `WWW-Authenticate: Bearer` otherwise."""
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]
