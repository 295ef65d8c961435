"""The FastAPI application: routers, error handlers, middleware, docs, and the reader's lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from relmgr.api.audit import AuditLog
from relmgr.api.bodies import AuthBodyLimitMiddleware
from relmgr.api.deps import ApiState
from relmgr.api.docs import install_docs
from relmgr.api.errors import install_error_handlers
from relmgr.api.head import HeadAsGetMiddleware
from relmgr.api.headers import SecurityHeadersMiddleware
from relmgr.api.proxied import TrustedProxyMiddleware
from relmgr.api.routes import auth, controls, entities, health, releases
from relmgr.api.security import TokenService
from relmgr.auth.ledger import AuthLedger
from relmgr.auth.proxies import TrustedProxies
from relmgr.auth.sessions import RevocationStore
from relmgr.auth.store import UsersStore
from relmgr.auth.throttle import LoginLimiter
from relmgr.control import ControlSender
from relmgr.errors import TemporalUnavailableError
from relmgr.reader.protocol import ReleaseReader
from relmgr.settings import Settings, get_settings

logger = logging.getLogger("relmgr.api")

# How often to try again to reach Temporal when it was down at start-up.
CONNECT_RETRY_SECONDS = 2.0
# How long start-up waits for Temporal before serving anyway (/health at once, reads 503 until
# connected): a down Temporal must not keep the API from answering.
STARTUP_WAIT_SECONDS = 3.0

DESCRIPTION = """\
The data of the relmgr dashboard for scripts and tools, read through the same reader.

**Authentication**: `POST /api/auth/login` with a form `username=...&password=...` (the
dashboard's users) returns a bearer token; send it as `Authorization: Bearer <token>`.
`POST /api/auth/logout` ends it. A token also ends when it expires (`expires_in`, at most 8 h)
or when its user's password or roles change, the user is removed, or `relmgr users revoke` runs.

**Caching**: read endpoints send a weak `ETag`; send it back in `If-None-Match` and get `304 Not
Modified` with no body while nothing changed.

**Controls** (operators and admins): `POST /api/releases/{id}/actions/{approve|pause|resume|
cancel}` and `POST /api/entities/{app_id}/actions/retry`, body `{"reason": ..., "wave": ...,
"request_id": ...}`; the same `request_id` acts once. `GET /api/audit` is the trail.

**Errors** all have one shape: `{"error": {"code": "...", "message": "...", "details": ...}}`.
401 for a missing, invalid or expired token; 403 for a role too low; 404 for an unknown ID; 409
for a control the current state does not allow (the message says why); 422 for a malformed ID or
parameter (the message names the expected format); 429 after too many failed logins; 503 with
`Retry-After` when Temporal does not answer within 2 s, or no worker answers a control in 5 s.

**CSV**: `?format=csv` (or `Accept: text/csv`) on the release list and on a release's hierarchy.
"""


async def _connect(state: ApiState, first_attempt: asyncio.Event) -> None:
    """Create the production reader, trying again for as long as Temporal is unavailable.

    Sets `first_attempt` once the first try has succeeded or failed. Any other error (a
    ConfigError for bad TLS files, say) ends the task with that error.
    """
    from relmgr.control.controller import Controller  # lazy, like the reader: it loads the SDK
    from relmgr.reader import create_reader  # lazy: tests inject a reader and never need Temporal
    from relmgr.temporal.client import connect

    def note(problem: str) -> None:
        if state.connect_problem is None:  # once, not at every attempt or every 2 s
            logger.warning("Temporal unavailable, reads answer 503 meanwhile: %s", problem)
        state.connect_problem = problem
        first_attempt.set()

    while True:
        try:
            if state.reader is None:
                state.reader = await create_reader(
                    state.settings, on_failed_attempt=note, auth_ledger=state.ledger
                )
                state.connect_problem = None
            # Controls go through a client of their own: they send Updates, the reader only
            # reads; each Update names its operator in its own identity.
            state.controller = Controller(await connect(state.settings, retries=0))
            logger.info("connected to Temporal at %s", state.settings.temporal_address)
            return
        except TemporalUnavailableError as exc:
            if exc.message != state.connect_problem and state.connect_problem is not None:
                logger.warning("Temporal still unavailable: %s", exc.message)
            note(exc.message)
        await asyncio.sleep(CONNECT_RETRY_SECONDS)


def _log_failure(task: asyncio.Task[None]) -> None:
    # Nobody awaits the task once serving has begun: log here, or its failure would vanish.
    if not task.cancelled() and task.exception() is not None:
        logger.error("the API cannot read from Temporal: %s", task.exception())


def create_app(
    settings: Settings | None = None,
    reader: ReleaseReader | None = None,
    controller: ControlSender | None = None,
) -> FastAPI:
    """The API application; ConfigError if the JWT secret or the users file cannot be used.

    With `reader` the app uses it (and `controller`, if given, for controls) and leaves closing
    them to the caller; without, the app's lifespan connects both and closes them on shutdown.
    """
    settings = settings or get_settings()
    # Shared with the other replicas through Temporal once the reader connects (`_connect`).
    ledger = AuthLedger()
    state = ApiState(
        settings=settings,
        tokens=TokenService.from_settings(settings),
        users=UsersStore(settings.users_file, ledger),
        limiter=LoginLimiter(
            settings.login_attempts_per_minute,
            settings.login_attempts_per_client_per_minute,
            ledger=ledger,
        ),
        audit=AuditLog(settings.audit_log),
        revocations=RevocationStore(settings.revoked_sessions_path, ledger),
        ledger=ledger,
        proxies=TrustedProxies.parse(settings.trusted_proxies),
        reader=reader,
        controller=controller,
        reads_ledger=settings.auth_ledger and reader is None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if reader is not None:
            yield
            return
        first_attempt = asyncio.Event()
        connecting = asyncio.create_task(_connect(state, first_attempt))
        # Serve as soon as the outcome is known: connected, or a problem /ready can name.
        attempted = asyncio.create_task(first_attempt.wait())
        await asyncio.wait(
            {connecting, attempted}, timeout=STARTUP_WAIT_SECONDS, return_when="FIRST_COMPLETED"
        )
        attempted.cancel()
        if connecting.done() and (problem := connecting.exception()) is not None:
            raise problem  # settings that cannot work (ConfigError): refuse to start
        connecting.add_done_callback(_log_failure)
        try:
            yield
        finally:
            connecting.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await connecting
            if state.reader is not None:
                await state.reader.aclose()
                state.reader = None

    app = FastAPI(
        title="relmgr API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "auth", "description": "Log in for a bearer token."},
            {"name": "releases", "description": "The release list and release trees."},
            {"name": "entities", "description": "Any entity by ID."},
            {
                "name": "controls",
                "description": "Approve, pause, resume, cancel, retry (operators and admins), "
                "and the audit trail of every attempt.",
            },
            {"name": "health", "description": "Probes for load balancers and orchestrators."},
        ],
    )
    app.state.api = state
    install_error_handlers(app)
    for router in (auth.router, releases.router, entities.router, controls.router, health.router):
        app.include_router(router)
    install_docs(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "Retry-After", "Content-Disposition"],
            max_age=600,
        )
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(AuthBodyLimitMiddleware)
    # Added last, so it is outermost and also covers CORS preflights and error responses.
    app.add_middleware(SecurityHeadersMiddleware)
    # Outside even that: everything inside sees the client and scheme a trusted proxy forwarded.
    app.add_middleware(TrustedProxyMiddleware, proxies=state.proxies)
    return app
