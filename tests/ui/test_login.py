"""The sign-in gate: only the form before sign-in, wrong passwords refused, a real bcrypt sign-in,
logout (copies of the cookie included), the limit on failed sign-ins, unknown names costing a
bcrypt check, links that survive the sign-in, and start-up errors shown on the page."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import extra_streamlit_components as stx
import jwt
import pytest
from streamlit.runtime.context import ContextProxy, StreamlitHeaders
from streamlit.testing.v1 import AppTest

from relmgr.auth import users as auth
from relmgr.auth.sessions import new_jti
from relmgr.auth.users import load_users, remove_user, revoke_sessions, session_epoch, write_users
from relmgr.settings import get_settings
from relmgr.temporal.ledger_state import LedgerEvent, LedgerEventKind, LedgerState
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui import runtime
from relmgr.ui.login import (
    SESSION_ENDED,
    SESSION_KEY,
    TOO_MANY_FAILURES,
    WRONG_CREDENTIALS,
)
from relmgr.ui.present import md_escape
from tests.ui.conftest import COOKIE_KEY, NAME, PASSWORD, USERNAME, browser_sends, sign_in


def submit_login(at: AppTest, username: str, password: str) -> AppTest:
    """Fill in the sign-in form and submit it."""
    at.text_input[0].set_value(username)
    at.text_input[1].set_value(password)
    return at.button[0].click().run()


def only_the_login_form(at: AppTest) -> None:
    """The page holds the sign-in form and nothing of the app."""
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Sign in to relmgr"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert len(at.title) == 0
    assert len(at.dataframe) == 0
    assert len(at.metric) == 0
    assert len(at.sidebar.children) == 0


def test_before_sign_in_only_the_form_shows_and_nothing_is_read(
    new_app: Callable[[], AppTest], fake: FakeReader
) -> None:
    """The first visit draws the form alone and makes no read."""
    at = new_app().run()
    only_the_login_form(at)
    assert fake.calls == []


def test_a_deep_link_shows_only_the_form_before_sign_in(
    new_app: Callable[[], AppTest], fake: FakeReader
) -> None:
    """A shared link to a release page reads nothing before sign-in either."""
    at = new_app().run()
    at.switch_page("pages/release.py")
    at.query_params["release"] = "rel-demo"
    at.run()
    only_the_login_form(at)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, "wrong password!"), ("mallory", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_wrong_credentials_are_refused_with_a_clear_message(
    new_app: Callable[[], AppTest], fake: FakeReader, username: str, password: str
) -> None:
    """A wrong password or an unknown user gets the same message and no data."""
    at = submit_login(new_app().run(), username, password)
    assert not at.exception
    assert [e.value for e in at.error] == [WRONG_CREDENTIALS]
    assert at.session_state["authentication_status"] is False
    assert len(at.title) == 0
    assert fake.calls == []


def test_signing_in_through_the_form_with_a_bcrypt_user_opens_the_releases(
    new_app: Callable[[], AppTest], fake: FakeReader
) -> None:
    """The real form, the real users file: signed in, the form gone, the list read and shown."""
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert not at.exception
    assert at.session_state["authentication_status"] is True
    assert at.session_state["username"] == USERNAME
    assert [t.value for t in at.title] == ["Releases"]
    assert [s.value for s in at.subheader] == []  # the form's heading is gone
    assert "list_releases" in fake.calls
    assert at.sidebar.markdown[0].value == f"Signed in as **{NAME}**  \n:gray[{USERNAME}]"
    assert at.sidebar.button(key="sign-out").label == "Log out"


def test_a_link_opened_before_sign_in_opens_after_it(
    new_app: Callable[[], AppTest], fake: FakeReader
) -> None:
    """Signing in on a shared release link lands on that release, not on the list."""
    at = new_app().run()
    at.switch_page("pages/release.py")
    at.query_params["release"] = "rel-demo"
    at = submit_login(at.run(), USERNAME, PASSWORD)
    assert not at.exception
    assert [t.value for t in at.title] == ["Release rel-demo"]
    assert fake.calls[-1] == "get_release_hierarchy"


def test_logout_returns_to_the_form_without_reading(app: AppTest, fake: FakeReader) -> None:
    """The sidebar's logout signs the session out and shows only the form."""
    at = app.run()
    assert [t.value for t in at.title] == ["Releases"]
    reads = len(fake.calls)
    at.sidebar.button(key="sign-out").click().run()
    only_the_login_form(at)
    assert at.session_state["authentication_status"] is None
    assert len(fake.calls) == reads


def test_a_user_removed_from_the_users_file_is_signed_out(app: AppTest, fake: FakeReader) -> None:
    """A session whose user is no longer in the file gets the form, not the data."""
    app.session_state["username"] = "bob"
    at = app.run()
    only_the_login_form(at)
    assert fake.calls == []


def startup_error(at: AppTest) -> str:
    """The one start-up error on the page (and nothing else of the app)."""
    assert not at.exception
    assert len(at.error) == 1
    assert len(at.text_input) == 0
    assert len(at.title) == 0
    return str(at.error[0].value)


@pytest.mark.parametrize(
    ("cookie_key", "message"),
    [
        ("please-change-this-cookie-key-to-32-random-bytes", "is missing or a placeholder"),
        ("", "is missing or a placeholder"),
        ("short-but-random-x7", "is too short: 19 bytes, at least 32 are required"),
    ],
    ids=["placeholder", "missing", "short"],
)
def test_an_unusable_cookie_key_is_a_clear_startup_error(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    cookie_key: str,
    message: str,
) -> None:
    """A placeholder, missing or short cookie key stops the app with a message naming it."""
    monkeypatch.setenv("RELMGR_COOKIE_KEY", cookie_key)
    get_settings.cache_clear()
    text = startup_error(new_app().run())
    assert text.startswith("**relmgr cannot start:** RELMGR\\_COOKIE\\_KEY ")
    assert md_escape(message) in text
    assert fake.calls == []


def test_the_cookie_key_can_come_from_streamlit_secrets(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without RELMGR_COOKIE_KEY, `cookie_key` in secrets.toml is used (and checked)."""
    monkeypatch.delenv("RELMGR_COOKIE_KEY")
    get_settings.cache_clear()
    at = new_app()
    at.secrets["cookie_key"] = "s" * 8 + "0123456789abcdefghijklmnopqrstuvwxyz"
    only_the_login_form(at.run())
    at = new_app()
    at.secrets["cookie_key"] = "changeme"
    assert "is missing or a placeholder" in startup_error(at.run())


def test_the_placeholder_cookie_key_is_accepted_in_dev_mode(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dev mode takes any non-empty key, so a demo starts without secrets."""
    monkeypatch.setenv("RELMGR_COOKIE_KEY", "please-change-this-cookie-key-to-32-random-bytes")
    monkeypatch.setenv("RELMGR_DEV_MODE", "true")
    get_settings.cache_clear()
    only_the_login_form(new_app().run())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("credentials: [unclosed", "is not valid YAML at line 1"),
        ("credentials:\n  usernames:\n    bob:\n      password: hunter2\n", "is not a bcrypt hash"),
    ],
    ids=["missing", "not-yaml", "plaintext-password"],
)
def test_a_broken_users_file_is_a_clear_startup_error(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: str | None,
    message: str,
) -> None:
    """A missing, malformed or plaintext users file stops the app with the reason, no trace."""
    path = tmp_path / "users.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("RELMGR_USERS_FILE", str(path))
    get_settings.cache_clear()
    text = startup_error(new_app().run())
    assert text.startswith("**relmgr cannot start:** users file ")
    assert md_escape(message) in text


def test_invalid_settings_are_a_clear_startup_error(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setting outside its range names the variable instead of raising."""
    monkeypatch.setenv("RELMGR_UI_REFRESH_SECONDS", "0")
    get_settings.cache_clear()
    text = startup_error(new_app().run())
    assert "RELMGR\\_UI\\_REFRESH\\_SECONDS" in text


def test_signed_in_state_reached_through_session_state(app: AppTest) -> None:
    """The helper the other page tests use really reaches the signed-in app."""
    at = sign_in(app).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Releases"]


def test_a_valid_cookie_signs_in_without_the_form(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new session with the signed cookie of a known user goes straight to the data."""
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie()})
    at = new_app().run()
    assert not at.exception
    assert at.session_state["username"] == USERNAME
    assert [t.value for t in at.title] == ["Releases"]
    assert "list_releases" in fake.calls


def test_logout_is_not_undone_by_the_cookie(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After logout the session shows the form even though the browser sent a cookie."""
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie()})
    at = new_app().run()
    at.sidebar.button(key="sign-out").click().run()
    only_the_login_form(at)
    at.run()
    only_the_login_form(at)


def test_a_cookie_of_a_removed_user_asks_for_a_sign_in(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cookie naming a user no longer in the file gets the form like any refused cookie."""
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie("ghost")})
    at = new_app().run()
    only_the_login_form(at)
    assert fake.calls == []


# --- Logout ends every copy of the cookie -------------------------------------------------------

COOKIE_NAME = "relmgr_session"


def signed_cookie(username: str = USERNAME, lifetime: float = 3600, **claims: object) -> str:
    """A cookie token the dashboard itself would set: the user, an expiry, a fresh `jti` and the
    user's current session epoch, HS256 with the key (`claims` override or, as None, drop)."""
    user = load_users(get_settings().users_file).get(username)
    payload: dict[str, object] = {
        "username": username,
        "exp_date": time.time() + lifetime,
        "jti": new_jti(),
        "ep": session_epoch(user) if user is not None else "0" * 24,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, COOKIE_KEY, algorithm="HS256")


def cookie_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Record what the cookie component is asked to do: ("set", name, value) or ("delete", name,
    "")."""
    calls: list[tuple[str, str, str]] = []
    original_set, original_delete = stx.CookieManager.set, stx.CookieManager.delete

    def record_set(self: stx.CookieManager, cookie: str, val: str, **kwargs: object) -> None:
        calls.append(("set", cookie, val))
        original_set(self, cookie, val, **kwargs)

    def record_delete(self: stx.CookieManager, cookie: str, key: str = "delete") -> None:
        calls.append(("delete", cookie, ""))
        original_delete(self, cookie, key)

    monkeypatch.setattr(stx.CookieManager, "set", record_set)
    monkeypatch.setattr(stx.CookieManager, "delete", record_delete)
    return calls


def signed_in_with_the_cookie(at: AppTest) -> None:
    """The session went straight to the data, signed in by the cookie."""
    assert not at.exception
    assert at.session_state["authentication_status"] is True
    assert [t.value for t in at.title] == ["Releases"]


def log_out(at: AppTest) -> AppTest:
    """Press the sidebar's logout button."""
    return at.sidebar.button(key="sign-out").click().run()


def revoked_file() -> Path:
    """The revoked sessions file of this test."""
    return get_settings().revoked_sessions_path


def test_a_copy_of_the_cookie_signs_nobody_in_after_logout(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cookie copied before logout gets only the form in a new session, which deletes it."""
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    at = new_app().run()
    signed_in_with_the_cookie(at)
    only_the_login_form(log_out(at))

    calls = cookie_calls(monkeypatch)
    thief = new_app().run()
    only_the_login_form(thief)
    assert thief.session_state["authentication_status"] is None
    assert calls == [("delete", COOKIE_NAME, "")]
    reads = len(fake.calls)
    thief.run()
    only_the_login_form(thief)
    assert len(fake.calls) == reads
    # Every later run renders the delete again (the same component, which stays mounted until its
    # script has run, however soon a rerun comes), and nothing else.
    assert calls == [("delete", COOKIE_NAME, "")] * 2


def test_the_cookie_components_stay_on_the_page_while_they_apply(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After logout each run of the form renders the cookie's delete; a sign-in stops it, and
    each run from then on renders the same set of the new cookie, until the next logout."""
    at = app.run()
    calls = cookie_calls(monkeypatch)
    only_the_login_form(log_out(at))
    at.run()
    only_the_login_form(at)
    assert calls == [("delete", COOKIE_NAME, "")] * 2
    calls.clear()
    submit_login(at, USERNAME, PASSWORD)
    assert [t.value for t in at.title] == ["Releases"]
    at.run()
    assert [kind for kind, _, _ in calls] == ["delete", "set", "set"]
    [token] = {value for kind, _, value in calls if kind == "set"}
    assert calls[-1][1] == COOKIE_NAME
    calls.clear()
    only_the_login_form(log_out(at))
    assert calls == [("delete", COOKIE_NAME, "")]
    assert jwt.decode(token, COOKIE_KEY, algorithms=["HS256"])["username"] == USERNAME


def test_the_revoked_sessions_file_holds_the_jti_and_the_expiry_never_the_token(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logout lists the cookie's `jti` with the cookie's own expiry."""
    cookie = signed_cookie(lifetime=5000)
    claims = jwt.decode(cookie, COOKIE_KEY, algorithms=["HS256"])
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    log_out(new_app().run())
    text = revoked_file().read_text(encoding="utf-8")
    assert json.loads(text) == {"version": 2, "revoked": {claims["jti"]: claims["exp_date"]}}
    assert cookie.split(".")[2] not in text


def spellings(token: str) -> dict[str, str]:
    """Other spellings of a cookie token that decode to the same claims."""
    header, payload, signature = token.split(".")
    return {
        "trailing =": token + "=",
        "trailing ==": token + "==",
        "padded signature": f"{header}.{payload}.{signature}{'=' * (-len(signature) % 4)}=",
        "padded payload": f"{header}.{payload}{'=' * (-len(payload) % 4)}=.{signature}",
        "leading space": " " + token,
        "trailing space": token + " ",
        "trailing newline": token + "\n",
    }


def test_a_respelled_cookie_is_the_same_session(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before logout, the cookie with `=` appended signs in: it is the same token to the JWT
    library (which is why revocation cannot be keyed by the cookie's text)."""
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: spellings(cookie)["trailing ="]})
    signed_in_with_the_cookie(new_app().run())


@pytest.mark.parametrize(
    "spelling",
    [
        "trailing =",
        "trailing ==",
        "padded signature",
        "padded payload",
        "leading space",
        "trailing space",
        "trailing newline",
    ],
)
def test_no_spelling_of_a_logged_out_cookie_signs_in(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    spelling: str,
) -> None:
    """After logout, the copied cookie in another spelling gets the sign-in form and no data."""
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    signed_in_with_the_cookie(new_app().run())
    only_the_login_form(log_out(new_app().run()))
    browser_sends(monkeypatch, {COOKIE_NAME: spellings(cookie)[spelling]})
    reads = len(fake.calls)
    thief = new_app().run()
    only_the_login_form(thief)
    assert thief.session_state["authentication_status"] is None
    thief.run()
    only_the_login_form(thief)
    assert len(fake.calls) == reads


@pytest.mark.parametrize(
    "claims",
    [{"jti": None}, {"ep": None}, {"jti": "not-a-jti"}, {"jti": 7}, {"ep": "0" * 24}],
    ids=["no-jti", "no-epoch", "malformed-jti", "numeric-jti", "old-epoch"],
)
def test_a_cookie_without_a_valid_jti_or_epoch_is_refused(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, object],
) -> None:
    """A signed cookie lacking a `jti` or the user's current epoch gets the form and no data."""
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie(**claims)})
    only_the_login_form(new_app().run())
    assert fake.calls == []


def test_the_cookie_set_after_a_form_sign_in_is_listed_at_logout(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cookie given to the browser after the form works in a new session until logout."""
    calls = cookie_calls(monkeypatch)
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert [t.value for t in at.title] == ["Releases"]
    [(action, name, cookie)] = calls  # set once, in the run after the form
    assert (action, name) == ("set", COOKIE_NAME)

    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    signed_in_with_the_cookie(new_app().run())
    log_out(at)
    only_the_login_form(new_app().run())


def test_a_session_signed_in_with_a_cookie_ends_when_it_is_logged_out_elsewhere(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tabs on one cookie: logging out in one ends the other at its next run."""
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie()})
    first, second = new_app().run(), new_app().run()
    signed_in_with_the_cookie(first)
    signed_in_with_the_cookie(second)
    log_out(second)
    first.run()
    assert [i.value for i in first.info] == [SESSION_ENDED]
    assert [t.label for t in first.text_input] == ["Username", "Password"]
    assert first.session_state["authentication_status"] is None
    assert len(first.title) == 0


def test_a_password_sign_in_after_a_copied_cookie_was_refused_stays_signed_in(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser still sends the revoked cookie; the new sign-in's own cookie is what counts."""
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    log_out(new_app().run())
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert [t.value for t in at.title] == ["Releases"]
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Releases"]
    assert at.session_state["authentication_status"] is True


def test_an_unusable_revoked_sessions_file_refuses_cookies_but_not_passwords(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A corrupt file is logged by name; cookies get the form, the password still signs in."""
    revoked_file().write_text("{not json", encoding="utf-8")
    browser_sends(monkeypatch, {COOKIE_NAME: signed_cookie()})
    with caplog.at_level(logging.WARNING, logger="relmgr.auth.sessions"):
        only_the_login_form(new_app().run())
    warnings = {r.getMessage() for r in caplog.records if r.name == "relmgr.auth.sessions"}
    assert [w.split(" is not a ")[0] for w in warnings] == [
        f"revoked sessions file {revoked_file()}"
    ]
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Releases"]


# --- Failed sign-ins are limited per username ---------------------------------------------------


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record the hash of every bcrypt check relmgr.auth.users makes."""
    checked: list[bytes] = []
    original = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return original(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", checkpw)
    return checked


def throttled_for(at: AppTest) -> int:
    """The seconds the one error on the page asks to wait (it must be the limiter's message)."""
    assert not at.exception
    [error] = [e.value for e in at.error]
    found = re.fullmatch(TOO_MANY_FAILURES.replace("{seconds}", r"(\d+)"), error)
    assert found is not None, error
    return int(found.group(1))


def test_failed_sign_ins_are_limited_per_user_and_the_password_is_then_not_checked(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After N failures in a minute even the right password is refused unchecked, in any session."""
    monkeypatch.setenv("RELMGR_LOGIN_ATTEMPTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    checked = count_password_checks(monkeypatch)
    at = new_app().run()
    for attempt in range(2):
        submit_login(at, USERNAME, f"wrong password {attempt}")
        assert [e.value for e in at.error] == [WRONG_CREDENTIALS]
    assert len(checked) == 2

    submit_login(at, " Alice ", PASSWORD)  # the library lower-cases and strips the name
    assert 55 <= throttled_for(at) <= 60
    assert at.session_state["authentication_status"] is False
    assert len(at.title) == 0
    other = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert 55 <= throttled_for(other) <= 60
    assert len(checked) == 2
    assert fake.calls == []


def test_the_limit_of_one_user_leaves_other_names_alone(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures for one name do not limit another: it still gets the plain refusal."""
    monkeypatch.setenv("RELMGR_LOGIN_ATTEMPTS_PER_MINUTE", "1")
    get_settings.cache_clear()
    at = submit_login(new_app().run(), "mallory", "guess one")
    assert [e.value for e in at.error] == [WRONG_CREDENTIALS]
    assert 55 <= throttled_for(submit_login(at, "mallory", "guess two")) <= 60
    submit_login(at, USERNAME, "wrong password!")
    assert [e.value for e in at.error] == [WRONG_CREDENTIALS]


def test_a_successful_sign_in_does_not_count_against_the_limit(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing in right twice with a limit of one failure a minute works both times."""
    monkeypatch.setenv("RELMGR_LOGIN_ATTEMPTS_PER_MINUTE", "1")
    get_settings.cache_clear()
    for _ in range(2):
        at = submit_login(new_app().run(), USERNAME, PASSWORD)
        assert not at.exception
        assert [t.value for t in at.title] == ["Releases"]


# --- Unknown names cost a bcrypt check ----------------------------------------------------------


def test_an_unknown_username_costs_one_bcrypt_check_of_the_users_cost(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name not in the file is checked against a hash of the same cost as the users' hashes."""
    # The session's users file is hashed at bcrypt's cheapest cost, not the default one: the
    # dummy must follow the file.
    alice = load_users(get_settings().users_file).users[USERNAME].password.encode()
    cost = alice[:7]
    assert cost == b"$2b$04$"
    checked = count_password_checks(monkeypatch)
    at = submit_login(new_app().run(), "mallory", PASSWORD)
    assert [e.value for e in at.error] == [WRONG_CREDENTIALS]
    assert [h[:7] for h in checked] == [cost]
    submit_login(at, USERNAME, "wrong password!")
    assert [h[:7] for h in checked] == [cost, cost]
    assert checked[0] != checked[1]  # the dummy, then alice's own hash
    assert checked[1] == alice


# --- Sessions follow the user -------------------------------------------------------------------


def own_users_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *roles: str) -> Path:
    """A copy of the users file for this test (alice with `roles`, if given)."""
    path = tmp_path / "users.yaml"
    alice = load_users(get_settings().users_file).users[USERNAME]
    if roles:
        alice = alice.model_copy(update={"roles": roles})
    write_users(path, [alice])
    monkeypatch.setenv("RELMGR_USERS_FILE", str(path))
    get_settings.cache_clear()
    return path


def touch(path: Path, seconds: int) -> None:
    """Move the file's mtime on, so a whole-second filesystem still shows the change."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


@pytest.mark.parametrize("change", ["new password", "new role", "revoke", "removed"])
def test_a_change_to_the_user_ends_its_sessions_and_cookies(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: str,
) -> None:
    """A new password or role, `relmgr users revoke`, or removing the user ends an open session
    at its next run (the same message whatever the change) and refuses the cookie it had."""
    path = own_users_file(monkeypatch, tmp_path)
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    at = new_app().run()
    signed_in_with_the_cookie(at)
    alice = load_users(path).users[USERNAME]
    if change == "new password":
        write_users(path, [alice.model_copy(update={"password": auth.hash_password("new pass 2")})])
    elif change == "new role":
        write_users(path, [alice.model_copy(update={"roles": ("operator",)})])
    elif change == "revoke":
        revoke_sessions(path, USERNAME)
    else:
        remove_user(path, USERNAME)
    touch(path, 2)
    reads = len(fake.calls)
    at.run()
    assert [i.value for i in at.info] == [SESSION_ENDED]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert len(at.title) == 0
    only_the_login_form(new_app().run())
    assert len(fake.calls) == reads


def test_a_broken_users_file_edit_keeps_the_last_good_one_and_tells_admins(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A YAML error in an edit signs nobody out and locks nobody out: the last good users stay in
    force, the error is logged with its line, and admins see a banner."""
    path = own_users_file(monkeypatch, tmp_path, "admin")
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert [t.value for t in at.title] == ["Releases"]
    path.write_text("credentials:\n  usernames:\n    alice: [unclosed\n", encoding="utf-8")
    touch(path, 2)
    with caplog.at_level(logging.ERROR, logger="relmgr.users"):
        at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Releases"]
    [banner] = [e.value for e in at.error]
    assert banner.startswith("**The users file on disk is broken; the last good version stays")
    assert "line 4" in banner
    [logged] = [r.getMessage() for r in caplog.records if r.name == "relmgr.users"]
    assert f"users file {path} is not valid YAML at line 4" in logged
    other = submit_login(new_app().run(), USERNAME, PASSWORD)  # signing in still works
    assert [t.value for t in other.title] == ["Releases"]


def test_a_viewer_sees_no_users_file_banner(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The banner is for admins only; a viewer's pages show no error."""
    path = own_users_file(monkeypatch, tmp_path, "viewer")
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    path.write_text("credentials: [unclosed", encoding="utf-8")
    touch(path, 2)
    at.run()
    assert [t.value for t in at.title] == ["Releases"]
    assert [e.value for e in at.error] == []


def browser_forwarded_for(monkeypatch: pytest.MonkeyPatch, forwarded_for: str) -> None:
    """Make the session's request headers carry this X-Forwarded-For (the peer is loopback)."""
    monkeypatch.setattr(
        ContextProxy,
        "headers",
        property(lambda self: StreamlitHeaders([("X-Forwarded-For", forwarded_for)])),
    )


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the proxy trusted, one outsider failing names until its client limit trips does not
    hold up alice coming through the same proxy from another address."""
    monkeypatch.setenv("RELMGR_TRUSTED_PROXIES", "127.0.0.1")
    monkeypatch.setenv("RELMGR_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE", "2")
    get_settings.cache_clear()
    browser_forwarded_for(monkeypatch, "198.51.100.7")
    outsider = new_app().run()
    for name in ("u1", "u2"):
        submit_login(outsider, name, "wrong password!")
        assert [e.value for e in outsider.error] == [WRONG_CREDENTIALS]
    assert 55 <= throttled_for(submit_login(outsider, "u3", "wrong password!")) <= 60
    browser_forwarded_for(monkeypatch, "192.0.2.1")
    at = submit_login(new_app().run(), USERNAME, PASSWORD)
    assert [t.value for t in at.title] == ["Releases"]


def test_without_trusted_proxies_forwarded_for_is_ignored(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, a rotated X-Forwarded-For does not give a client a fresh limit."""
    monkeypatch.setenv("RELMGR_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE", "2")
    get_settings.cache_clear()
    for n, name in enumerate(("u1", "u2")):
        browser_forwarded_for(monkeypatch, f"198.51.100.{n}")
        submit_login(new_app().run(), name, "wrong password!")
    browser_forwarded_for(monkeypatch, "198.51.100.9")
    assert 55 <= throttled_for(submit_login(new_app().run(), "u3", "x")) <= 60


def test_no_cookie_password_or_key_reaches_the_logs(
    new_app: Callable[[], AppTest],
    fake: FakeReader,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Signing in with a cookie and a password, a refused copy, a wrong password, and a logout
    that cannot be recorded (logged as an error) write no cookie, password or key anywhere."""
    cookie = signed_cookie()
    browser_sends(monkeypatch, {COOKIE_NAME: cookie})
    with caplog.at_level(logging.DEBUG):
        at = new_app().run()
        signed_in_with_the_cookie(at)
        log_out(at)
        browser_sends(monkeypatch, {COOKIE_NAME: cookie + "="})
        thief = new_app().run()
        only_the_login_form(thief)
        submit_login(thief, USERNAME, "Wr0ng-Passw0rd!")
        revoked_file().write_text("{broken", encoding="utf-8")
        log_out(submit_login(thief, USERNAME, PASSWORD))
    captured = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records) + captured.out + captured.err
    assert "logout not recorded" in logged
    for secret in (cookie, cookie.split(".")[2], PASSWORD, "Wr0ng-Passw0rd!", COOKIE_KEY):
        assert secret not in logged


def test_a_form_sign_in_on_a_fresh_replica_waits_for_the_ledgers_generation(
    new_app: Callable[[], AppTest], fake: FakeReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica raised alice's generation to 2 (her file here says 0) and this process has
    not read the ledger yet: the form's sign-in waits for that first read, so the session is of
    generation 2 and stays signed in on the next run (one of generation 0 would end at once)."""
    monkeypatch.setenv("RELMGR_AUTH_LEDGER", "true")
    get_settings.cache_clear()
    ledger = runtime.auth_ledger()
    shared = LedgerState()
    shared.apply(LedgerEvent(kind=LedgerEventKind.GENERATION, username=USERNAME, generation=2))

    def first_read() -> None:
        ledger.apply_memo(json.dumps(shared.to_memo()).encode())
        ledger.loaded.set()

    at = new_app().run()
    only_the_login_form(at)
    reading = threading.Timer(0.4, first_read)
    reading.start()
    try:
        at = submit_login(at, USERNAME, PASSWORD)
    finally:
        reading.cancel()
    assert ledger.loaded.is_set()
    raised = load_users(get_settings().users_file).get(USERNAME)
    assert raised is not None
    expected = session_epoch(raised.model_copy(update={"session_generation": 2}))
    assert at.session_state[SESSION_KEY]["epoch"] == expected
    at = at.run()
    assert at.session_state["authentication_status"] is True
    assert [t.value for t in at.title] == ["Releases"]
    assert SESSION_ENDED not in [i.value for i in at.info]
