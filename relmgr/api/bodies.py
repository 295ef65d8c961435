"""A size limit on the bodies of the auth routes, enforced before anything parses them.

A login is a few hundred bytes; without a limit the form parser would read (and hold) any body
before the login limiter even runs. Bodies over `AUTH_BODY_LIMIT` get 413 at once, judged by
`Content-Length` or, for a chunked body, as soon as the bytes received pass the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUTH_BODY_LIMIT = 4096
AUTH_PREFIX = "/api/auth/"


async def _too_large(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body too large: at most {AUTH_BODY_LIMIT} bytes",
                "details": {"limit": AUTH_BODY_LIMIT},
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthBodyLimitMiddleware:
    """413 for an auth route's body over the limit; the rest is passed on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(AUTH_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > AUTH_BODY_LIMIT
            except ValueError:
                too_large = True
            if too_large:
                await _too_large(send)
                return
        # Read the (small) body here, stopping as soon as it passes the limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > AUTH_BODY_LIMIT:
                await _too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
