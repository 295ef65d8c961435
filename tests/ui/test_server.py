"""relmgr's Streamlit server workarounds: no external-IP lookup, no uvicorn proxy headers, and a
loud failure if Streamlit's code changes under them."""

from __future__ import annotations

import pytest
from streamlit import net_util
from streamlit.web.server import server_util
from streamlit.web.server.starlette import starlette_server

from relmgr.ui import server


@pytest.fixture
def pristine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit as it ships (even if an app run in this process installed the workarounds), and
    restored after the test whatever it installs."""
    for module, name in (
        (net_util, "get_external_ip"),
        (net_util, "_make_blocking_http_get"),
        (starlette_server, "_get_uvicorn_config_kwargs"),
    ):
        monkeypatch.setattr(module, name, server.ORIGINALS.get(name, getattr(module, name)))


def test_install_makes_the_lookup_impossible_and_keeps_foreign_origins_refused(
    pristine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After install no code path can fetch a URL: the lookup and the HTTP helper answer None
    without touching `requests`, and a foreign origin is still not allowed."""
    import requests

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("an HTTP request was made")

    monkeypatch.setattr(requests, "get", no_network)
    server.install()
    assert server.installed() is True
    assert net_util.get_external_ip() is None
    assert net_util._make_blocking_http_get("http://checkip.amazonaws.com", timeout=1) is None
    assert server_util.is_url_from_allowed_origins("http://evil.example") is False
    assert server_util.is_url_from_allowed_origins("http://localhost:8501") is True
    server.install()  # idempotent
    assert starlette_server._get_uvicorn_config_kwargs()["proxy_headers"] is False


def test_install_fails_loudly_if_streamlit_stops_calling_the_lookup_by_name(
    pristine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the origin check no longer calls `net_util.get_external_ip` (so replacing it might not
    stop the call), install raises naming the function instead of passing silently."""

    def reworked_check(url: str) -> bool:
        return url == "http://localhost"

    monkeypatch.setattr(server_util, "is_url_from_allowed_origins", reworked_check)
    with pytest.raises(server.StreamlitChangedError, match="reworked_check no longer calls"):
        server.install()
    assert server.installed() is False


def test_install_fails_loudly_if_the_lookup_is_gone(
    pristine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Streamlit without `net_util.get_external_ip` is a StreamlitChangedError."""
    monkeypatch.delattr(net_util, "get_external_ip")
    with pytest.raises(server.StreamlitChangedError, match=r"net_util\.get_external_ip"):
        server.install()
