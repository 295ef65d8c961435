"""The sign-in gate: streamlit-authenticator over the users file, the cookie key, the account box.

Users come from `relmgr.auth.load_users` and reach streamlit-authenticator as a dict: given a
path, streamlit-authenticator 0.4.2 rewrites the YAML file on every login. Passwords are bcrypt
hashes only (`auto_hash=False`). The re-authentication cookie is a JWT signed with the cookie key
from `RELMGR_COOKIE_KEY` or `cookie_key` in `.streamlit/secrets.toml`.

Two details of streamlit-authenticator 0.4.2 shape the code below. Cookies are set and deleted by
a hidden component that must stay on the page long enough to run, so a run that signs in or out
must not end early: a successful form sign-in asks for one more run (to take the form away) and
sets the cookie in that run; a logout is requested by the button's callback and carried out at
the top of the next run, which then goes on to show the form. And the cookie is read from
`st.context.cookies`, so there is no need for the library's default 0.7 s wait before each form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from pydantic import SecretStr

from relmgr.auth import UsersFile, load_users
from relmgr.errors import ConfigError
from relmgr.settings import Settings, check_secret
from relmgr.ui.present import md_escape

LOGIN_FORM_KEY = "login-form"
LOGOUT_KEY = "sign-out"
WRONG_CREDENTIALS = "Incorrect username or password."
SIGNED_OUT_USER_GONE = "Your account is no longer known here; please sign in again."
_LOGOUT_REQUESTED = "relmgr-logout-requested"
_SET_COOKIE = "relmgr-set-cookie"
_FIELDS = {
    "Form name": "Sign in to relmgr",
    "Username": "Username",
    "Password": "Password",
    "Login": "Sign in",
}


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user of this session."""

    username: str
    name: str
    roles: tuple[str, ...]


def _streamlit_secret(name: str) -> str:
    try:
        value = st.secrets.get(name)
    except FileNotFoundError as exc:
        # Streamlit raises this both for "no secrets file" (fine: the environment may have it)
        # and for a secrets file it cannot parse (not fine).
        if getattr(exc, "error_id", None) == "no-secrets-found":
            return ""
        raise ConfigError(f"the Streamlit secrets file cannot be read: {exc}") from None
    return value if isinstance(value, str) else ""


def cookie_key(settings: Settings) -> str:
    """The cookie signing key from the environment or Streamlit secrets; ConfigError if unusable."""
    raw = settings.cookie_key.get_secret_value() or _streamlit_secret("cookie_key")
    return check_secret("cookie_key", SecretStr(raw), dev_mode=settings.dev_mode)


@lru_cache(maxsize=4)
def _users_version(path: str, mtime_ns: int, size: int) -> UsersFile:
    return load_users(Path(path))


def current_users(settings: Settings) -> UsersFile:
    """The users file, read again only when it changed on disk; ConfigError if unusable."""
    path = settings.users_file
    try:
        stat = path.stat()
    except OSError:
        return load_users(path)  # raises the ConfigError that names the problem
    return _users_version(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _authenticator(settings: Settings, key: str, users: UsersFile) -> stauth.Authenticate:
    return stauth.Authenticate(
        users.authenticator_credentials(),
        settings.cookie_name,
        key,
        settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,
    )


def _forget_cookie(authenticator: stauth.Authenticate) -> None:
    """Delete this browser's cookie and stop reading it for the rest of this session."""
    authenticator.cookie_controller.delete_cookie()
    st.session_state["logout"] = True


def _request_logout() -> None:
    st.session_state[_LOGOUT_REQUESTED] = True


def gate(settings: Settings) -> SignedIn | None:
    """Sign the session in: the user, or None after showing the sign-in form (the caller stops).

    Raises ConfigError, before anything is shown, if the cookie key or the users file is unusable.
    """
    key = cookie_key(settings)
    users = current_users(settings)
    authenticator = _authenticator(settings, key, users)
    state = st.session_state
    if state.pop(_LOGOUT_REQUESTED, False) and state.get("authentication_status"):
        authenticator.logout(location="unrendered")
    username = state.get("username")
    if state.get("authentication_status") and users.get(str(username)) is None:
        # Removed from the users file since signing in: signed out at once.
        authenticator.logout(location="unrendered")
    if state.pop(_SET_COOKIE, False) and state.get("authentication_status"):
        authenticator.cookie_controller.set_cookie()
    was_signed_in = bool(state.get("authentication_status"))
    try:
        authenticator.login(location="main", key=LOGIN_FORM_KEY, fields=_FIELDS)
    except stauth.LoginError:
        # Raised only for a valid cookie naming a user who is no longer in the users file:
        # forget the cookie for this session and ask for a sign-in instead.
        _forget_cookie(authenticator)
        st.info(SIGNED_OUT_USER_GONE, icon=":material/person_off:")
        authenticator.login(location="main", key=LOGIN_FORM_KEY, fields=_FIELDS)
    except jwt.InvalidTokenError:
        # A cookie that is not an HS256 token (`alg: none`, another algorithm): the library
        # catches only bad signatures and undecodable tokens, and lets these escape. It is
        # forged or foreign, so it is dropped like any other invalid cookie: the form shows.
        _forget_cookie(authenticator)
        authenticator.login(location="main", key=LOGIN_FORM_KEY, fields=_FIELDS)
    status = state.get("authentication_status")
    if status is False:
        st.error(WRONG_CREDENTIALS, icon=":material/lock:")
        return None
    if not status:
        return None
    if not was_signed_in and not authenticator.cookie_controller.get_cookie():
        # Signed in through the form just now: one more run takes the form away and sets the
        # cookie there, where its component stays mounted.
        state[_SET_COOKIE] = True
        st.rerun()
    user = users.get(str(state.get("username")))
    if user is None:
        return None
    return SignedIn(username=user.username, name=user.name, roles=user.roles)


def require_signed_in() -> None:
    """Stop a page script unless this session is signed in.

    Pages only run through the frame, after `gate`; this is the second lock on the door, so that
    a page never draws data if Streamlit ever runs it on its own.
    """
    if st.session_state.get("authentication_status") is not True:
        st.info("Please [sign in](/) first.")
        st.stop()


def render_account(user: SignedIn) -> None:
    """Who is signed in, and the logout button (in the current container)."""
    st.markdown(f"Signed in as **{md_escape(user.name)}**  \n:gray[{md_escape(user.username)}]")
    st.button(
        "Log out",
        key=LOGOUT_KEY,
        icon=":material/logout:",
        on_click=_request_logout,
        width="stretch",
    )


def render_startup_error(error: ConfigError) -> None:
    """A configuration problem, shown instead of the app (never a traceback)."""
    st.error(
        f"**relmgr cannot start:** {md_escape(error.message)}",
        icon=":material/settings_alert:",
    )
    st.caption("Fix the setting and reload this page. See docs/DEPLOYMENT.md for every setting.")
