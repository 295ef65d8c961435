"""Starting the Streamlit server without its two network habits relmgr cannot have.

Streamlit 1.67, in its server process, (1) looks up the machine's public address at
checkip.amazonaws.com: at start-up (headless, no `browser.serverAddress`), and on every websocket
handshake whose `Origin` is not localhost, the server's own host or an allowed origin (two
blocking `requests.get` of up to 1 s each on the event loop, retried every time it fails). No
setting stops it: `browser.serverAddress` only adds a name that is compared before the lookup.
relmgr must make no outbound call, so the lookup is replaced by "no public address" (foreign
origins are still refused: they match none of the remaining names). And (2) its uvicorn rewrites
the client address from `X-Forwarded-For` for `FORWARDED_ALLOW_IPS`; relmgr decides that itself
from `RELMGR_TRUSTED_PROXIES` (`relmgr.auth.proxies`), so uvicorn's rewriting is turned off.

Both must be in place before the server accepts its first connection, so the dashboard is started
through this module: `python -m relmgr.ui.server run streamlit_app.py [streamlit options]`
(`relmgr dev` does). `streamlit_app.py` calls `install()` too, which covers a plain `streamlit
run` from its first script run on and logs an error saying how to start it properly. If
Streamlit changes the code these patches rely on, `install()` raises instead of guessing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from relmgr.ui.streamlit_compat import StreamlitChangedError, require

__all__ = ["ORIGINALS", "StreamlitChangedError", "ensure_installed", "install", "installed"]

logger = logging.getLogger(__name__)

_INSTALLED = "_relmgr_installed"
# What install() replaced, by name (for tests that need Streamlit as it ships).
ORIGINALS: dict[str, Any] = {}


def _no_external_ip() -> str | None:
    """Streamlit's external-IP lookup, replaced: relmgr never asks a third party."""
    return None


def _no_http_get(url: str, timeout: float = 5) -> str | None:
    """Streamlit's blocking HTTP helper, replaced: nothing in the server fetches a URL."""
    return None


def _without_proxy_headers(
    original: Callable[[], dict[str, Any]],
) -> Callable[[], dict[str, Any]]:
    def uvicorn_options() -> dict[str, Any]:
        options = original()
        options["proxy_headers"] = False
        return options

    setattr(uvicorn_options, _INSTALLED, True)
    return uvicorn_options


def _require(condition: bool, what: str) -> None:
    require(condition, what, "relmgr/ui/server.py")


def installed() -> bool:
    """Whether `install()` has run in this process."""
    from streamlit import net_util

    return getattr(net_util, "get_external_ip", None) is _no_external_ip


def check_patch_points() -> None:
    """Raise StreamlitChangedError unless Streamlit still has the code `install()` replaces."""
    from streamlit import net_util
    from streamlit.web import bootstrap
    from streamlit.web.server import server_util
    from streamlit.web.server.starlette import starlette_server

    # The callers look the function up on the module at each call (`net_util.get_external_ip()`),
    # so replacing the module's attribute reaches them; check that they still do.
    _require(callable(getattr(net_util, "get_external_ip", None)), "net_util.get_external_ip")
    _require(
        callable(getattr(net_util, "_make_blocking_http_get", None)),
        "net_util._make_blocking_http_get",
    )
    for caller in (server_util.is_url_from_allowed_origins, bootstrap._print_url):
        names = caller.__code__.co_names
        _require(
            "net_util" in names and "get_external_ip" in names,
            f"{caller.__module__}.{caller.__name__} no longer calls net_util.get_external_ip",
        )
    _require(
        callable(getattr(starlette_server, "_get_uvicorn_config_kwargs", None)),
        "starlette_server._get_uvicorn_config_kwargs",
    )


def install() -> None:
    """Make the external-IP lookup impossible and uvicorn's proxy headers off (idempotent).

    Raises StreamlitChangedError if Streamlit's code no longer looks as expected.
    """
    from streamlit import net_util
    from streamlit.web.server.starlette import starlette_server

    if installed():
        return
    check_patch_points()
    options = starlette_server._get_uvicorn_config_kwargs
    ORIGINALS.setdefault("get_external_ip", net_util.get_external_ip)
    ORIGINALS.setdefault("_make_blocking_http_get", net_util._make_blocking_http_get)
    net_util.get_external_ip = _no_external_ip
    net_util._make_blocking_http_get = _no_http_get
    if not getattr(options, _INSTALLED, False):
        ORIGINALS.setdefault("_get_uvicorn_config_kwargs", options)
        starlette_server._get_uvicorn_config_kwargs = _without_proxy_headers(options)


def ensure_installed() -> None:
    """Install now if the process was not started through this module (logged as an error)."""
    if installed():
        return
    logger.error(
        "the dashboard was started without relmgr's Streamlit workarounds: until now a "
        "websocket handshake from a foreign origin could make Streamlit call "
        "checkip.amazonaws.com. Start it with `python -m relmgr.ui.server run streamlit_app.py`"
    )
    install()


def main() -> None:
    """`python -m relmgr.ui.server run streamlit_app.py ...`: Streamlit's CLI, patched first."""
    install()
    from streamlit.web import cli

    sys.argv[0] = "streamlit"
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
