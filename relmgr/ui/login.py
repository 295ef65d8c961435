"""The sign-in gate: streamlit-authenticator over the users file, the cookie key, the account box.

Users come from `relmgr.auth.users.load_users` and reach streamlit-authenticator as a dict: given a
path, streamlit-authenticator 0.4.2 rewrites the YAML file on every login. Passwords are bcrypt
hashes only (`auto_hash=False`). The re-authentication cookie is a JWT signed with the cookie key
from `RELMGR_COOKIE_KEY` or `cookie_key` in `.streamlit/secrets.toml`.

Two details of streamlit-authenticator 0.4.2 shape the code below. Cookies are set and deleted by
a hidden component that must stay on the page long enough to run, so a run that signs in or out
must not end early: a successful form sign-in asks for one more run (to take the form away) and
sets the cookie from that run on (each later run renders the same component, so a quick rerun
cannot unmount it before it has run; a logout's delete likewise stays until the next sign-in);
a logout is requested by the button's callback and carried out at the top of the next run,
which then goes on to show the form. And the cookie is read from `st.context.cookies`, so there
is no need for the library's default 0.7 s wait before each form.

Three checks are relmgr's own. Every session has a record (`SessionRecord`: a random `jti`, the
user's session epoch, the expiry) and the cookie carries the same; a cookie is accepted only if it
is signed with the cookie key, unexpired, names a known user, carries that user's current epoch
(same password hash, roles and generation) and a `jti` not ended (`relmgr.auth.sessions`), and each
run of a signed-in session checks its record the same way, so logout, `relmgr users revoke`, a new
password or role, or removing the user ends the session at its next run. Revocation is by `jti`,
never by the cookie's text, which has other spellings that decode the same. Every refusal looks the
same: the sign-in form. The form's password check goes through `relmgr.auth.users.verify_password`,
which spends a bcrypt check on unknown names too. And failed sign-ins are limited per username
(`RELMGR_LOGIN_ATTEMPTS_PER_MINUTE`) and, much more loosely, per client address
(`RELMGR_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE`, the address found through `RELMGR_TRUSTED_PROXIES`);
a limited attempt is not checked. Logouts, generations and failed sign-ins reach the other
replicas through the process's auth ledger (`relmgr.ui.runtime.auth_ledger`, `relmgr.auth.ledger`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from pydantic import SecretStr

from relmgr.auth.proxies import TrustedProxies
from relmgr.auth.sessions import RevocationStore, is_jti, new_jti
from relmgr.auth.store import shared_store
from relmgr.auth.throttle import LoginLimiter
from relmgr.auth.users import User, UsersFile, session_epoch, verify_password
from relmgr.errors import ConfigError
from relmgr.settings import Settings, check_secret
from relmgr.ui import runtime
from relmgr.ui.present import md_escape

logger = logging.getLogger(__name__)

LOGIN_FORM_KEY = "login-form"
LOGOUT_KEY = "sign-out"
WRONG_CREDENTIALS = "Incorrect username or password."
# One message for a session that ended while open, whatever ended it (logout elsewhere, a revoke,
# a new password or role, the user removed): no hint which check refused it.
SESSION_ENDED = "Your session has ended; please sign in again."
USERS_FILE_PROBLEM = (
    "**The users file on disk is broken; the last good version stays in force.** {problem}"
)
TOO_MANY_FAILURES = "Too many failed sign-ins for this user; try again in {seconds} s."
_LOGOUT_REQUESTED = "relmgr-logout-requested"
# The cookie components run their script once mounted, and a component not rendered by a run is
# unmounted: under load a rerun came before the script had run, and the cookie was never set (or
# never deleted). So each stays on the page, rendered with the same arguments by every run (the
# same element: its script does not run again), for as long as it applies.
# Set by a form sign-in: every run of this signed-in session renders the cookie's set.
_SET_COOKIE = "relmgr-set-cookie"
# Set once this browser's cookie is to go (logout, a refused cookie): every run renders the
# delete until the next sign-in.
_DELETING_COOKIE = "relmgr-deleting-cookie"
# This session's record (`SessionRecord` as a dict): from the browser's cookie, or made at sign-in.
SESSION_KEY = "relmgr-session"
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


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What identifies one signed-in session: in the cookie, and in the session's state."""

    jti: str
    epoch: str
    expires: float

    @classmethod
    def new(cls, user: User, lifetime_days: float) -> SessionRecord:
        """A fresh session of `user`."""
        return cls(
            jti=new_jti(), epoch=session_epoch(user), expires=time.time() + lifetime_days * 86400
        )

    @classmethod
    def from_state(cls, value: object) -> SessionRecord | None:
        """The record kept in session state, or None if there is none (or it is malformed)."""
        if not isinstance(value, dict):
            return None
        jti, epoch, expires = value.get("jti"), value.get("epoch"), value.get("expires")
        if not (is_jti(jti) and isinstance(epoch, str) and isinstance(expires, float)):
            return None
        return cls(jti=jti, epoch=epoch, expires=expires)

    def valid_for(
        self, user: User | None, revocations: RevocationStore, *, from_cookie: bool
    ) -> bool:
        """Whether the session may go on: the user known, same epoch, not ended, not expired.

        A cookie signs a new session in only while the revoked sessions file is usable; a session
        already open goes on unless it is listed (so a damaged file signs nobody out).
        """
        if user is None or self.epoch != session_epoch(user) or self.expires <= time.time():
            return False
        if from_cookie:
            return revocations.accepts(self.jti)
        return not revocations.is_revoked(self.jti)


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


def _revocations(settings: Settings) -> RevocationStore:
    """The revoked sessions: this replica's file and the ledger every replica shares."""
    return RevocationStore(settings.revoked_sessions_path, runtime.auth_ledger())


def cookie_key(settings: Settings) -> str:
    """The cookie signing key from the environment or Streamlit secrets; ConfigError if unusable."""
    raw = settings.cookie_key.get_secret_value() or _streamlit_secret("cookie_key")
    return check_secret("cookie_key", SecretStr(raw), dev_mode=settings.dev_mode)


def current_users(settings: Settings) -> UsersFile:
    """The users in force (the store shared with the API's behaviour); ConfigError if unusable."""
    return shared_store(settings.users_file, runtime.auth_ledger()).current()


@lru_cache(maxsize=1)
def login_limiter(failures_per_minute: int, client_failures_per_minute: int) -> LoginLimiter:
    """This process's count of failed sign-ins, shared by all its sessions."""
    return LoginLimiter(
        failures_per_minute, client_failures_per_minute, ledger=runtime.auth_ledger()
    )


def client_address(settings: Settings) -> str:
    """This session's client: the peer, or what a trusted proxy forwarded for it."""
    peer = st.context.ip_address
    if not isinstance(peer, str) or not peer:
        peer = "127.0.0.1"  # Streamlit reports a loopback peer as None
    forwarded_for = st.context.headers.get("X-Forwarded-For")
    return TrustedProxies.parse(settings.trusted_proxies).client(peer, forwarded_for)


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
    limiter = login_limiter(
        settings.login_attempts_per_minute, settings.login_attempts_per_client_per_minute
    )

    def check_credentials(username: str, password: str) -> bool:
        # The form's only password check (the library calls it with the name lower-cased).
        st.session_state.pop(_THROTTLED, None)
        client = client_address(settings)
        throttle = limiter.start(username, client)
        if throttle is not None:
            st.session_state[_THROTTLED] = throttle.retry_after
            return False
        user = None
        try:
            in_force = users
            if settings.auth_ledger:
                # A session is signed in with the generation every replica knows: one issued
                # before this replica's first read of the ledger could be stale, and ended at once.
                runtime.await_ledger()
                in_force = current_users(settings)
            user = verify_password(in_force, username, password)
        finally:
            limiter.finish(username, client, failed=user is None)
        if user is not None:
            # The session's record is made here, with the epoch of the hash just checked.
            record = SessionRecord.new(user, settings.cookie_expiry_days)
            st.session_state[SESSION_KEY] = asdict(record)
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
    # The library's cookie reader checks only the signature and expiry; relmgr's checks the
    # session too (see the module docstring), so a refused cookie signs nobody in.
    authenticator.cookie_controller.get_cookie = lambda: _read_cookie(settings, key, users)
    return authenticator


def _no_cookie_from_the_library() -> None:
    return None


def _browser_cookie(settings: Settings) -> str | None:
    """The raw cookie the browser sent when this session's connection opened."""
    value = st.context.cookies.get(settings.cookie_name)
    return value if isinstance(value, str) and value else None


def _cookie_record(token: str, key: str, users: UsersFile) -> tuple[str, SessionRecord] | None:
    """The username and session record of a cookie token we signed, or None.

    Only the claims count: the same token in another spelling (padding, whitespace) gives the
    same `jti`, so it is refused or accepted exactly like the original.
    """
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    username, jti, epoch = payload.get("username"), payload.get("jti"), payload.get("ep")
    expiry = payload.get("exp_date")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    if not (isinstance(username, str) and is_jti(jti) and isinstance(epoch, str)):
        return None
    record = SessionRecord(jti=jti, epoch=epoch, expires=float(expiry))
    return username, record


def _read_cookie(settings: Settings, key: str, users: UsersFile) -> dict[str, Any] | bool | None:
    """The library's cookie reader, replaced: the claims of an acceptable cookie, else None.

    False after a logout in this session, as the library's own reader does.
    """
    if st.session_state.get("logout"):
        return False
    sent = _browser_cookie(settings)
    found = _cookie_record(sent, key, users) if sent is not None else None
    if found is None:
        return None
    username, record = found
    revocations = _revocations(settings)
    if not record.valid_for(users.get(username), revocations, from_cookie=True):
        return None
    return {"username": username, "exp_date": record.expires, "jti": record.jti}


def _set_cookie(authenticator: stauth.Authenticate, settings: Settings, key: str) -> None:
    """Set the re-authentication cookie of this session's record.

    The token is the library's (`username` and `exp_date`, HS256 with the cookie key) plus the
    record's `jti` and epoch `ep`.
    """
    record = SessionRecord.from_state(st.session_state.get(SESSION_KEY))
    if record is None:
        return
    payload = {
        "username": st.session_state["username"],
        "exp_date": record.expires,
        "jti": record.jti,
        "ep": record.epoch,
    }
    token = jwt.encode(payload, key, algorithm="HS256")
    manager = authenticator.cookie_controller.cookie_model.cookie_manager
    manager.set(settings.cookie_name, token, expires_at=datetime.fromtimestamp(record.expires))


def _revoke_session(settings: Settings, key: str, users: UsersFile) -> None:
    """End this session's record, and the session of the cookie this browser sent, everywhere."""
    records = [SessionRecord.from_state(st.session_state.get(SESSION_KEY))]
    sent = _browser_cookie(settings)
    if sent is not None and (found := _cookie_record(sent, key, users)) is not None:
        records.append(found[1])
    ended = {r.jti: r.expires for r in records if r is not None}
    if not ended:
        return
    try:
        _revocations(settings).revoke(ended)
    except ConfigError as exc:
        # The logout itself goes on: this browser's cookie is deleted and the session ends.
        logger.error("logout not recorded, copies of the cookie stay valid: %s", exc.message)


def _end_stale_session(
    authenticator: stauth.Authenticate, settings: Settings, users: UsersFile
) -> bool:
    """End a signed-in session whose record no longer holds (ended elsewhere, user changed).

    Returns whether it did (and so deleted the browser's cookie in this run)."""
    state = st.session_state
    if not state.get("authentication_status"):
        return False
    record = SessionRecord.from_state(state.get(SESSION_KEY))
    user = users.get(str(state.get("username")))
    revocations = _revocations(settings)
    if record is None or not record.valid_for(user, revocations, from_cookie=False):
        authenticator.logout(location="unrendered")
        state.pop(SESSION_KEY, None)
        state[_DELETING_COOKIE] = True
        st.info(SESSION_ENDED, icon=":material/logout:")
        return True
    return False


def _forget_cookie(authenticator: stauth.Authenticate) -> None:
    """Delete this browser's cookie and stop reading it for the rest of this session."""
    authenticator.cookie_controller.delete_cookie()
    st.session_state["logout"] = True
    st.session_state[_DELETING_COOKIE] = True


def _request_logout() -> None:
    st.session_state[_LOGOUT_REQUESTED] = True


def gate(settings: Settings) -> SignedIn | None:
    """Sign the session in: the user, or None after showing the sign-in form (the caller stops).

    Raises ConfigError, before anything is shown, if the cookie key or the users file is unusable.
    """
    key = cookie_key(settings)
    if settings.auth_ledger:
        # The reader reads the auth ledger: a cookie is judged once it has (see await_ledger).
        runtime.start_reading()
        if _browser_cookie(settings) is not None:
            runtime.await_ledger()
    users = current_users(settings)
    authenticator = _authenticator(settings, key, users)
    state = st.session_state
    deleted = False  # whether this run has rendered the cookie's delete component
    if state.pop(_LOGOUT_REQUESTED, False) and state.get("authentication_status"):
        _revoke_session(settings, key, users)
        authenticator.logout(location="unrendered")
        state.pop(SESSION_KEY, None)
        state[_DELETING_COOKIE] = deleted = True
    deleted = _end_stale_session(authenticator, settings, users) or deleted
    sent = _browser_cookie(settings)
    if (
        not state.get("authentication_status")
        and sent is not None
        and not state.get("logout")
        and not authenticator.cookie_controller.get_cookie()
    ):
        # A cookie we do not accept (ended, stale, forged, expired, or the revoked sessions file
        # unusable): the form shows, as for no cookie, and the browser's cookie is deleted.
        _forget_cookie(authenticator)
        deleted = True
    if state.get(_DELETING_COOKIE) and not deleted and not state.get("authentication_status"):
        authenticator.cookie_controller.delete_cookie()
        deleted = True
    if not state.get("authentication_status"):
        state.pop(_SET_COOKIE, None)
    elif state.get(_SET_COOKIE):
        _set_cookie(authenticator, settings, key)
    was_signed_in = bool(state.get("authentication_status"))
    try:
        authenticator.login(location="main", key=LOGIN_FORM_KEY, fields=_FIELDS)
    except (stauth.LoginError, jwt.InvalidTokenError):
        # Not expected (relmgr's reader accepts only cookies of known users, decoded safely),
        # but if the library ever raises for a cookie, the cookie is dropped: the form shows.
        if deleted:
            st.session_state["logout"] = True
        else:
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
    state.pop(_DELETING_COOKIE, None)
    if not was_signed_in and not _from_cookie(settings, key, users):
        # Signed in through the form just now: one more run takes the form away and sets the
        # cookie there, and so does every later run of this session (see _SET_COOKIE).
        state[_SET_COOKIE] = True
        st.rerun()
    user = users.get(str(state.get("username")))
    if user is None:
        return None
    return SignedIn(username=user.username, name=user.name, roles=user.roles)


def _from_cookie(settings: Settings, key: str, users: UsersFile) -> bool:
    """Whether the browser's cookie signed this session in; if so, its record is the session's."""
    sent = _browser_cookie(settings)
    found = _cookie_record(sent, key, users) if sent is not None else None
    if found is None or found[0] != st.session_state.get("username"):
        return False
    revocations = _revocations(settings)
    if not found[1].valid_for(users.get(found[0]), revocations, from_cookie=True):
        return False
    st.session_state[SESSION_KEY] = asdict(found[1])
    return True


def users_file_problem(settings: Settings) -> str | None:
    """Why the users file on disk is not in force (a broken edit), or None."""
    return shared_store(settings.users_file, runtime.auth_ledger()).problem


def render_users_file_problem(settings: Settings, user: SignedIn) -> None:
    """A banner for admins while a broken edit of the users file is kept out of force."""
    problem = users_file_problem(settings)
    if problem is not None and "admin" in user.roles:
        st.error(USERS_FILE_PROBLEM.format(problem=md_escape(problem)), icon=":material/group_off:")


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
