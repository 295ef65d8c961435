"""Running the API under uvicorn (what `relmgr api` and `relmgr dev` call)."""

from __future__ import annotations

import copy
import logging
from typing import Any

from relmgr.api.app import create_app
from relmgr.settings import Settings, check_bind


class RedactQueryFilter(logging.Filter):
    """Cuts the query string off the path in uvicorn's access log lines.

    A query may hold what must never be logged (a token pasted as `?access_token=`, which the API
    does not accept anyway); the path alone says which route was asked for.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access line: (client, method, path with query, HTTP version, status).
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query:
                record.args = (args[0], args[1], f"{path}?[redacted]", args[3], args[4])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with the access log's query strings redacted."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQueryFilter}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    return config


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` besides the app."""
    return {
        "host": host,
        "port": port,
        # Off: uvicorn would rewrite the client from X-Forwarded-For for FORWARDED_ALLOW_IPS.
        # relmgr.api.proxied does it instead, for RELMGR_TRUSTED_PROXIES only.
        "proxy_headers": False,
        "server_header": False,
        "log_level": "info",
        "log_config": log_config(),
    }


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Validate the configuration, then serve the API until interrupted.

    Raises ConfigError, before anything listens, when the JWT secret is missing, shorter than
    32 bytes, too predictable or a placeholder (outside dev mode), when dev mode is asked to bind
    a non-loopback address, or when the users file is missing or invalid.
    """
    import uvicorn  # lazy: importing the API for tests needs no server

    check_bind(settings, host)
    # create_app validates the secret and loads the users file; its ConfigError names the problem.
    app = create_app(settings)
    uvicorn.run(app, **uvicorn_options(host, port))
