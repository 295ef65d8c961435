"""The client address and scheme behind trusted reverse proxies (a plain ASGI middleware).

uvicorn's own proxy-header handling is off (`relmgr.api.server`): this is the only place that
believes `X-Forwarded-For` and `X-Forwarded-Proto`, and only from `RELMGR_TRUSTED_PROXIES`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from relmgr.auth.proxies import TrustedProxies


class TrustedProxyMiddleware:
    """Rewrites the scope's client (and scheme) from a trusted proxy's forwarding headers."""

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else None
            if self.proxies.trusts(peer):
                headers = dict(scope.get("headers", []))
                forwarded_for = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                if forwarded_for:
                    address = self.proxies.client(peer, forwarded_for)
                    scope = {**scope, "client": (address, 0)}
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if proto in ("http", "https"):
                    scheme = proto if scope["type"] == "http" else {"http": "ws"}.get(proto, "wss")
                    scope = {**scope, "scheme": scheme}
        await self.app(scope, receive, send)
