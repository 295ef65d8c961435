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

Three checks are relmgr's own. Logout lists the session's cookie in the revoked sessions file
(`relmgr.sessions`), so a copy of the cookie signs nobody in, and a session signed in with a
listed cookie (another tab, another replica) is signed out at its next run. The form's password
check goes through `relmgr.auth.verify_password`, which spends a bcrypt check on unknown names
too, so the answer time does not tell which usernames exist. And failed sign-ins per username are
limited in this process (`RELMGR_LOGIN_ATTEMPTS_PER_MINUTE`); a limited attempt is not checked.
Not per client address: behind the reverse proxy that docs/DEPLOYMENT.md asks for, every
session's `st.context.ip_address` is the proxy's, so a few failures would lock everybody out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from pydantic import SecretStr

from relmgr import sessions
from relmgr.auth import UsersFile, load_users, verify_password
from relmgr.errors import ConfigError
from relmgr.settings import Settings, check_secret
from relmgr.throttle import LoginLimiter
from relmgr.ui.present import md_escape

logger = logging.getLogger(__name__)

LOGIN_FORM_KEY = "login-form"
LOGOUT_KEY = "sign-out"
WRONG_CREDENTIALS = "Incorrect username or password."
SIGNED_OUT_USER_GONE = "Your account is no longer known here; please sign in again."
SIGNED_OUT_ELSEWHERE = "This sign-in was ended by a logout elsewhere; please sign in again."
TOO_MANY_FAILURES = "Too many failed sign-ins for this user; try again in {seconds} s."
_LOGOUT_REQUESTED = "relmgr-logout-requested"
_SET_COOKIE = "relmgr-set-cookie"
# The cookie token this session is signed in with: the browser's, or the one set after the form.
_SESSION_COOKIE = "relmgr-session-cookie"
# Seconds to wait, when the last form submission was refused by the limiter.
_THROTTLED = "relmgr-throttled"
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


@lru_cache(maxsize=1)
def login_limiter(failures_per_minute: int) -> LoginLimiter:
    """This process's count of failed sign-ins per username, shared by all its sessions."""
    return LoginLimiter(failures_per_minute)


def _authenticator(settings: Settings, key: str, users: UsersFile) -> stauth.Authenticate:
    """This run's authenticator, its password check routed through the limiter and relmgr.auth."""
    authenticator = stauth.Authenticate(
        users.authenticator_credentials(),
        settings.cookie_name,
        key,
        settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,
    )
    limiter = login_limiter(settings.login_attempts_per_minute)

    def check_credentials(username: str, password: str) -> bool:
        # The form's only password check (the library calls it with the name lower-cased).
        st.session_state.pop(_THROTTLED, None)
        throttle = limiter.start(username)
        if throttle is not None:
            st.session_state[_THROTTLED] = throttle.retry_after
            return False
        user = None
        try:
            user = verify_password(users, username, password)
        finally:
            limiter.finish(username, failed=user is None)
        return user is not None

    # The library's own check skips bcrypt for unknown names and keeps its failure counts in
    # this run's copy of the credentials, which the next run forgets.
    authenticator.authentication_controller.authentication_model.check_credentials = (
        check_credentials
    )
    # The cookie is set by `_set_cookie` alone, one run after the form: the library's own set in
    # the form's run is cut short by that run's rerun, and would make a token the session does
    # not know (so could not list at logout).
    authenticator.cookie_controller.set_cookie = _no_cookie_from_the_library
    return authenticator


def _no_cookie_from_the_library() -> None:
    return None


def _browser_cookie(settings: Settings) -> str | None:
    """The raw cookie the browser sent when this session's connection opened."""
    value = st.context.cookies.get(settings.cookie_name)
    return value if isinstance(value, str) and value else None


def _token_expiry(token: str, key: str) -> float | None:
    """When a cookie token of ours expires; None for a token we did not sign."""
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    expiry = payload.get("exp_date")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    return float(expiry)


def _set_cookie(authenticator: stauth.Authenticate, settings: Settings, key: str) -> str:
    """Set the re-authentication cookie for the signed-in user; the token it holds.

    The token is the library's (`username` and `exp_date`, HS256 with the cookie key), made here
    so that the session knows it and can list it as signed out at logout.
    """
    expires = datetime.now() + timedelta(days=settings.cookie_expiry_days)
    payload = {"username": st.session_state["username"], "exp_date": expires.timestamp()}
    token = jwt.encode(payload, key, algorithm="HS256")
    manager = authenticator.cookie_controller.cookie_model.cookie_manager
    manager.set(settings.cookie_name, token, expires_at=expires)
    return token


def _revoke_session_cookies(settings: Settings, key: str) -> None:
    """List this session's cookie, and the one this browser sent, as signed out."""
    candidates = {st.session_state.get(_SESSION_COOKIE), _browser_cookie(settings)}
    tokens = {
        token: expiry
        for token in candidates
        if isinstance(token, str) and (expiry := _token_expiry(token, key)) is not None
    }
    if not tokens:
        return
    try:
        sessions.revoke(settings.revoked_sessions_path, tokens)
    except ConfigError as exc:
        # The logout itself goes on: this browser's cookie is deleted and the session ends.
        logger.error("logout not recorded, copies of the cookie stay valid: %s", exc.message)


def _enforce_revocations(
    authenticator: stauth.Authenticate, revoked_file: Path, sent: str | None
) -> None:
    """End a session whose cookie was signed out elsewhere; refuse a signed-out cookie."""
    state = st.session_state
    token = state.get(_SESSION_COOKIE)
    if state.get("authentication_status") and token and sessions.is_revoked(revoked_file, token):
        # Signed out in another tab or on another replica: this sign-in is over too.
        authenticator.logout(location="unrendered")
        st.info(SIGNED_OUT_ELSEWHERE, icon=":material/logout:")
    if not state.get("authentication_status"):
        state.pop(_SESSION_COOKIE, None)
        if (
            sent is not None
            and not state.get("logout")
            and not sessions.cookie_accepted(revoked_file, sent)
        ):
            # A signed-out cookie (perhaps a copy), or an unusable revoked sessions file: no
            # sign-in by cookie. The form shows, as for an expired cookie, and the browser's
            # cookie is deleted.
            _forget_cookie(authenticator)


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
        _revoke_session_cookies(settings, key)
        authenticator.logout(location="unrendered")
    username = state.get("username")
    if state.get("authentication_status") and users.get(str(username)) is None:
        # Removed from the users file since signing in: signed out at once.
        authenticator.logout(location="unrendered")
    sent = _browser_cookie(settings)
    _enforce_revocations(authenticator, settings.revoked_sessions_path, sent)
    if state.pop(_SET_COOKIE, False) and state.get("authentication_status"):
        state[_SESSION_COOKIE] = _set_cookie(authenticator, settings, key)
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
        retry_after = state.get(_THROTTLED)
        if retry_after is not None:
            st.error(TOO_MANY_FAILURES.format(seconds=retry_after), icon=":material/timer:")
        else:
            st.error(WRONG_CREDENTIALS, icon=":material/lock:")
        return None
    if not status:
        return None
    state.pop(_THROTTLED, None)
    if not was_signed_in:
        if not authenticator.cookie_controller.get_cookie():
            # Signed in through the form just now: one more run takes the form away and sets
            # the cookie there, where its component stays mounted.
            state[_SET_COOKIE] = True
            st.rerun()
        # Signed in with the cookie the browser sent (checked against the revoked list above).
        state[_SESSION_COOKIE] = sent
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
