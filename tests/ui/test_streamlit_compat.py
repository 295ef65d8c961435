"""`streamlit_compat.check()`: quiet on the pinned Streamlit, loud and named when a workaround's
target is gone."""

from __future__ import annotations

import pytest
import streamlit_authenticator as stauth
from streamlit import net_util
from streamlit.runtime.pages_manager import PagesManager
from streamlit_authenticator.controllers.cookie_controller import CookieController
from streamlit_authenticator.models.authentication_model import AuthenticationModel

from relmgr.ui import server, streamlit_compat
from relmgr.ui.streamlit_compat import StreamlitChangedError


@pytest.fixture
def pristine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit's server helpers as they ship, so that `check` looks at them (restored after)."""
    for name in ("get_external_ip", "_make_blocking_http_get"):
        monkeypatch.setattr(net_util, name, server.ORIGINALS.get(name, getattr(net_util, name)))


def test_check_passes_on_the_pinned_versions(pristine: None) -> None:
    """Streamlit 1.67 and streamlit-authenticator 0.4.2 have every target: no error."""
    assert server.installed() is False
    streamlit_compat.check()


def test_check_names_the_frame_attribute_when_it_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `PagesManager.uses_pages_directory` the frame's workaround cannot work."""
    monkeypatch.delattr(PagesManager, "uses_pages_directory")
    with pytest.raises(StreamlitChangedError, match=r"uses_pages_directory.*relmgr/ui/frame\.py"):
        streamlit_compat.check()


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (AuthenticationModel, "check_credentials"),
        (CookieController, "set_cookie"),
        (CookieController, "get_cookie"),
        (CookieController, "delete_cookie"),
    ],
)
def test_check_names_a_login_method_when_it_is_gone(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> None:
    """Each streamlit-authenticator method login.py replaces or calls is checked by name."""
    monkeypatch.delattr(owner, name)
    with pytest.raises(
        StreamlitChangedError, match=rf"{owner.__name__}\.{name} is gone.*relmgr/ui/login\.py"
    ):
        streamlit_compat.check()


def test_check_notices_a_controller_that_is_no_longer_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An `Authenticate` that no longer sets `cookie_controller` in its constructor is caught
    without building one (building needs a running app)."""

    def reworked_init(self: stauth.Authenticate, *args: object, **kwargs: object) -> None:
        self.authentication_controller = None

    monkeypatch.setattr(stauth.Authenticate, "__init__", reworked_init)
    with pytest.raises(StreamlitChangedError, match=r"Authenticate no longer sets \.cookie_contr"):
        streamlit_compat.check()


def test_check_covers_the_server_workaround_before_it_is_installed(
    pristine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before `server.install()` ran, a missing lookup is reported as server.py's."""
    monkeypatch.delattr(net_util, "get_external_ip")
    with pytest.raises(StreamlitChangedError, match=r"get_external_ip.*relmgr/ui/server\.py"):
        streamlit_compat.check()
