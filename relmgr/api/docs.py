"""`/docs` served entirely from this process: Swagger UI's files come from the `fastapi-offline`
package, so the page works on a machine with no route to a CDN, and under a strict CSP (the
page has no inline script: its start-up code is `/docs/init.js`).
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")

_INIT_JS = """\
window.addEventListener("load", function () {
  var root = document.body.getAttribute("data-openapi-url");
  window.ui = SwaggerUIBundle({
    url: root,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""


def assets_dir() -> Path:
    """Where the installed `fastapi-offline` package keeps Swagger UI's files."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def _page(title: str, root: str, openapi_url: str) -> str:
    t, r, o = html.escape(title), html.escape(root), html.escape(openapi_url)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{t}</title>
<link rel="icon" type="image/png" href="{r}{STATIC_URL}/favicon.png">
<link rel="stylesheet" href="{r}{STATIC_URL}/swagger-ui.css">
</head>
<body data-openapi-url="{r}{o}">
<div id="swagger-ui"></div>
<script src="{r}{STATIC_URL}/swagger-ui-bundle.js"></script>
<script src="{r}{DOCS_URL}/init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Mount the offline Swagger UI at /docs (the app must be built with docs_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="docs-static")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs_page(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return HTMLResponse(_page(f"{app.title} - API docs", root, openapi_url))

    @app.get(f"{DOCS_URL}/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(_INIT_JS, media_type="text/javascript")
