"""Security headers on every response (a plain ASGI middleware: no per-request task or copy)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API serves JSON and CSV only: nothing may be loaded, framed or scripted from it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The docs page loads its script, styles and the OpenAPI document from this server only. Swagger
# UI sets inline style attributes, hence 'unsafe-inline' for styles (never for scripts).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
DOCS_PREFIX = "/docs"

_COMMON: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Adds nosniff, frame denial, no-referrer and a CSP; HSTS only on requests made over TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/") else API_CSP
        extra = [*_COMMON, (b"content-security-policy", csp.encode())]
        # uvicorn sets the scheme from X-Forwarded-Proto only for trusted proxies.
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
