"""Running the API under uvicorn (what `relmgr api` and `relmgr dev` call)."""

from __future__ import annotations

from relmgr.api.app import create_app
from relmgr.settings import Settings


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Validate the configuration, then serve the API until interrupted.

    Raises ConfigError, before anything listens, when the JWT secret is missing, shorter than
    32 bytes or a placeholder (outside dev mode), or when the users file is missing or invalid.
    """
    import uvicorn  # lazy: importing the API for tests needs no server

    # create_app validates the secret and loads the users file; its ConfigError names the problem.
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        # Trust X-Forwarded-For/-Proto only from the addresses in FORWARDED_ALLOW_IPS
        # (default 127.0.0.1), i.e. a reverse proxy on the same host.
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )
