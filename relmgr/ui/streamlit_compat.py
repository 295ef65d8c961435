"""Every Streamlit workaround of relmgr, in one list, and `check()`: fail loudly when one lapses.

relmgr pins `streamlit>=1.67,<1.68` and `streamlit-authenticator==0.4.2` because it reaches into
their internals in three places. Each reaches for names that a new version may drop or rework;
`check()` (run by `streamlit_app.py` at start-up, before anything is drawn) raises
`StreamlitChangedError` naming the first that is gone, instead of letting a workaround silently
stop working.

Where, which behaviour, what relmgr touches:

- `relmgr/ui/frame.py`: Streamlit 1.67 starts a process with a `pages/` folder in folder-based
  multipage mode, whose first run executes a deep-linked page file without the frame (so without
  the sign-in gate). relmgr writes the class attribute
  `streamlit.runtime.pages_manager.PagesManager.uses_pages_directory`.
- `relmgr/ui/login.py`: streamlit-authenticator 0.4.2 skips bcrypt for unknown names, keeps its
  failure counts in one run's copy, sets its cookie in a run that is cut short by a rerun, and
  trusts any signed cookie. relmgr replaces `check_credentials` of
  `Authenticate().authentication_controller.authentication_model` and `set_cookie` /
  `get_cookie` of `.cookie_controller`, and calls `.cookie_controller.delete_cookie()` and
  `.cookie_controller.cookie_model.cookie_manager.set(...)`.
- `relmgr/ui/server.py`: Streamlit 1.67's server looks up its public address at
  checkip.amazonaws.com (at start-up and on foreign-origin handshakes), and its uvicorn rewrites
  the client address from `X-Forwarded-For`. relmgr replaces `streamlit.net_util.get_external_ip`,
  `net_util._make_blocking_http_get` and `starlette_server._get_uvicorn_config_kwargs`
  (`server.check_patch_points` checks them).
"""

from __future__ import annotations


class StreamlitChangedError(RuntimeError):
    """Streamlit (or streamlit-authenticator) no longer has what a relmgr workaround relies on."""


def require(condition: bool, what: str, where: str) -> None:
    """Raise StreamlitChangedError saying `what` changed and which module's workaround to review."""
    if not condition:
        raise StreamlitChangedError(
            f"Streamlit changed: {what}. relmgr's workaround in {where} no longer applies; "
            "review it before running this version (see relmgr/ui/streamlit_compat.py)"
        )


def _check_frame() -> None:
    from streamlit.runtime.pages_manager import PagesManager

    require(
        hasattr(PagesManager, "uses_pages_directory"),
        "PagesManager.uses_pages_directory is gone",
        "relmgr/ui/frame.py",
    )


def _check_login() -> None:
    import streamlit_authenticator as stauth
    from streamlit_authenticator.controllers.authentication_controller import (
        AuthenticationController,
    )
    from streamlit_authenticator.controllers.cookie_controller import CookieController
    from streamlit_authenticator.models.authentication_model import AuthenticationModel
    from streamlit_authenticator.models.cookie_model import CookieModel

    where = "relmgr/ui/login.py"
    # Instance attributes are set in __init__; their names are in its code.
    for owner, attribute in (
        (stauth.Authenticate, "authentication_controller"),
        (stauth.Authenticate, "cookie_controller"),
        (AuthenticationController, "authentication_model"),
        (CookieController, "cookie_model"),
        (CookieModel, "cookie_manager"),
    ):
        require(
            attribute in owner.__init__.__code__.co_names,
            f"{owner.__name__} no longer sets .{attribute}",
            where,
        )
    for owner, method in (
        (AuthenticationModel, "check_credentials"),
        (CookieController, "set_cookie"),
        (CookieController, "get_cookie"),
        (CookieController, "delete_cookie"),
    ):
        require(callable(getattr(owner, method, None)), f"{owner.__name__}.{method} is gone", where)


def check() -> None:
    """Raise StreamlitChangedError if any workaround's target is gone; quiet when all are there."""
    from relmgr.ui import server

    _check_frame()
    _check_login()
    if not server.installed():  # once installed, install() has checked its targets itself
        server.check_patch_points()
