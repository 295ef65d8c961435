"""Who gets in, in a real Chromium: wrong passwords, deep links before sign-in, logout, and
cookies forged without the key, against `streamlit run` on a real Temporal dev server."""

from __future__ import annotations

import json
import secrets
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from playwright.sync_api import Page, expect

from relmgr.auth.sessions import new_jti
from relmgr.auth.users import load_users, session_epoch
from tests.browser.conftest import (
    Seeded,
    expect_page_title,
    log_out,
    sign_in,
    sign_in_until_signed_in,
    wait_for_cookie,
)
from tests.browser.stack import COOKIE_NAME, Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WRONG_CREDENTIALS = "Incorrect username or password."


def session_cookies(page: Page) -> list[dict[str, Any]]:
    """The dashboard's session cookies in this page's browser."""
    return [dict(c) for c in page.context.cookies() if c["name"] == COOKIE_NAME]


def expect_only_the_sign_in_form(page: Page, seeded: Seeded) -> None:
    """The page shows the sign-in form and nothing of the app, once the app is idle."""
    # `.first`: while a run replaces the page, the outgoing form can linger beside the new one.
    expect(page.get_by_role("button", name="Sign in").first).to_be_visible()
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()
    expect(page.get_by_role("textbox", name="Password")).to_be_visible()
    # The run that drew the form is the one that decided about sign-in; wait for it to end.
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(page.get_by_test_id("stExpander")).to_have_count(0)
    main = page.get_by_test_id("stMain")
    for release_id in seeded.ids:
        expect(main).not_to_contain_text(release_id)
    expect(main).not_to_contain_text("Hierarchy")
    expect(main).not_to_contain_text("All releases")


def test_a_wrong_password_is_refused_and_shows_no_data(
    page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """A wrong password gets the one clear message, the form again, no data and no cookie."""
    page.goto(stack.url)
    refused = page.get_by_text(WRONG_CREDENTIALS, exact=True)
    for attempt in range(1, 4):  # a dropped click (see `log_out`) leaves the form as it was
        sign_in(page, stack, password="not-the-password-1")
        try:
            expect(refused).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            if attempt == 3:
                raise
            print(f"sign-in click {attempt} did not take; signing in again")
    expect_only_the_sign_in_form(page, seeded)
    assert session_cookies(page) == []


def test_a_deep_link_before_sign_in_shows_only_the_form_then_opens_after_it(
    page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """`/release?release=ID` shows only the sign-in form; after signing in, that release opens."""
    deep_link = f"{stack.url}/release?release={seeded.done}"
    page.goto(deep_link)
    expect_only_the_sign_in_form(page, seeded)
    assert page.url == deep_link

    sign_in_until_signed_in(page, stack)
    expect_page_title(page, f"Release {seeded.done}")
    assert page.url == deep_link


def test_a_deep_link_as_the_first_request_after_a_restart_still_asks_for_sign_in(
    page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """A new Streamlit process starts in folder mode (there is a `pages/` folder); its very first
    run, from a deep link, must still be the frame's: only the form, then the release with the
    sidebar after signing in."""
    stack.streamlit.stop()
    stack.streamlit.start()
    deep_link = f"{stack.url}/release?release={seeded.failed}"
    page.goto(deep_link)
    expect_only_the_sign_in_form(page, seeded)
    expect(page.get_by_text("Please sign in first")).to_have_count(0)

    sign_in_until_signed_in(page, stack)
    expect_page_title(page, f"Release {seeded.failed}")
    assert page.url == deep_link


def test_logout_ends_the_session(page: Page, stack: Dashboard, seeded: Seeded) -> None:
    """After logout the form is back, the cookie is gone, and a reloaded deep link asks again."""
    page.goto(stack.url)
    sign_in_until_signed_in(page, stack)
    wait_for_cookie(page)

    log_out(page)
    expect_only_the_sign_in_form(page, seeded)
    page.wait_for_function(
        f"!document.cookie.split('; ').some(c => c.startsWith('{COOKIE_NAME}='))"
    )
    assert session_cookies(page) == []

    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect_only_the_sign_in_form(page, seeded)
    page.reload()
    expect_only_the_sign_in_form(page, seeded)


def _b64(data: dict[str, Any]) -> str:
    return urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(username: str = "alice", epoch: str = "0" * 24) -> dict[str, Any]:
    # What streamlit-authenticator 0.4.2 puts in its cookie (the user and an expiry timestamp),
    # and relmgr's session ID and the user's session epoch.
    return {"username": username, "exp_date": time.time() + 86_400, "jti": new_jti(), "ep": epoch}


def _random_value(_: Dashboard, __: dict[str, Any]) -> str:
    return secrets.token_urlsafe(48)


def _signed_with_another_key(_: Dashboard, __: dict[str, Any]) -> str:
    return jwt.encode(_claims(), secrets.token_urlsafe(48), algorithm="HS256")


def _alg_none(_: Dashboard, __: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."


def _real_cookie_with_changed_claims(_: Dashboard, signed_in_state: dict[str, Any]) -> str:
    """The cookie of a real sign-in with its payload replaced (expiry pushed out by a year)."""
    real = next(c["value"] for c in signed_in_state["cookies"] if c["name"] == COOKIE_NAME)
    header, payload, signature = real.split(".")
    claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp_date"] += 365 * 86_400
    return f"{header}.{_b64(claims)}.{signature}"


def _signed_with_the_key(stack: Dashboard, _: dict[str, Any]) -> str:
    assert stack.users_file is not None
    user = load_users(stack.users_file).users[stack.account.username]
    claims = _claims(stack.account.username, session_epoch(user))
    return jwt.encode(claims, stack.cookie_key, algorithm="HS256")


@pytest.mark.parametrize(
    "forge",
    [_random_value, _signed_with_another_key, _alg_none, _real_cookie_with_changed_claims],
    ids=["random-value", "jwt-signed-with-another-key", "jwt-alg-none", "tampered-real-cookie"],
)
def test_a_forged_cookie_does_not_sign_in(
    open_page: Callable[..., Page],
    stack: Dashboard,
    seeded: Seeded,
    signed_in_state: dict[str, Any],
    forge: Callable[[Dashboard, dict[str, Any]], str],
) -> None:
    """A cookie made without the key, under the app's cookie name, gets the sign-in form (and
    never an error page) on a deep link."""
    page = open_page()
    page.context.add_cookies(
        [{"name": COOKIE_NAME, "value": forge(stack, signed_in_state), "url": stack.url}]
    )
    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect_only_the_sign_in_form(page, seeded)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("This app has encountered an error")).to_have_count(0)


def test_a_cookie_signed_with_the_key_signs_in(
    open_page: Callable[..., Page], stack: Dashboard, seeded: Seeded
) -> None:
    """The control for the forgeries: the same cookie signed with the real key opens the page,
    so the tests above fail if the cookie were ever not read at all."""
    page = open_page()
    page.context.add_cookies(
        [{"name": COOKIE_NAME, "value": _signed_with_the_key(stack, {}), "url": stack.url}]
    )
    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect_page_title(page, f"Release {seeded.done}")
    expect(page.get_by_text("Signed in as")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)


def signed_in_owner(open_page: Callable[..., Page], stack: Dashboard) -> tuple[Page, Any]:
    """A page signed in through the form, and a copy of its session cookie."""
    page = open_page("owner")
    page.goto(stack.url)
    sign_in_until_signed_in(page, stack)
    wait_for_cookie(page)
    [copied] = session_cookies(page)
    return page, copied


def test_a_cookie_copied_before_logout_signs_nobody_in(
    open_page: Callable[..., Page], stack: Dashboard, seeded: Seeded
) -> None:
    """A cookie copied out of a signed-in browser is worth nothing once that session logs out:
    another browser given the copy gets only the sign-in form, and loses the copy."""
    page, copied = signed_in_owner(open_page, stack)

    log_out(page)
    expect_only_the_sign_in_form(page, seeded)

    thief = open_page("copy")
    thief.context.add_cookies([copied])
    thief.goto(f"{stack.url}/release?release={seeded.done}")
    expect_only_the_sign_in_form(thief, seeded)
    thief.wait_for_function(
        f"!document.cookie.split('; ').some(c => c.startsWith('{COOKIE_NAME}='))"
    )
    assert session_cookies(thief) == []
    thief.reload()
    expect_only_the_sign_in_form(thief, seeded)


def _respelled(value: str) -> dict[str, str]:
    """Other spellings of a cookie token that decode to the same claims (whitespace, which a
    browser will not store in a cookie, is covered by tests/ui/test_login.py)."""
    header, payload, signature = value.split(".")
    return {
        "trailing =": value + "=",
        "trailing ==": value + "==",
        "padded payload": f"{header}.{payload}{'=' * (-len(payload) % 4)}=.{signature}",
        "padded signature": f"{header}.{payload}.{signature}{'=' * (-len(signature) % 4)}=",
    }


def test_no_spelling_of_a_copied_cookie_signs_in_after_logout(
    open_page: Callable[..., Page], stack: Dashboard, seeded: Seeded
) -> None:
    """The copy of a logged-out cookie with `=` appended, or padding added, gets the sign-in form
    on a deep link, and not one websocket frame carries a release ID or its data. Before logout,
    the `=` spelling opened the release: it is the same token to the JWT library."""
    page, copied = signed_in_owner(open_page, stack)
    spellings = _respelled(copied["value"])

    before = open_page("respelled-before-logout")
    before.context.add_cookies([{**copied, "value": spellings["trailing ="]}])
    before.goto(f"{stack.url}/release?release={seeded.done}")
    expect_page_title(before, f"Release {seeded.done}")

    log_out(page)
    expect_only_the_sign_in_form(page, seeded)

    # Each spelling in a browser of its own, all loading at once (the server judges each alone).
    thieves: dict[str, tuple[Page, list[str]]] = {}
    for kind, value in spellings.items():
        thief = open_page(f"respelled-{kind.replace(' ', '-').replace('=', 'eq')}")
        frames: list[str] = []
        thief.on(
            "websocket",
            lambda ws, frames=frames: ws.on(
                "framereceived",
                lambda payload, frames=frames: frames.append(
                    payload.decode("latin-1") if isinstance(payload, bytes) else payload
                ),
            ),
        )
        thief.context.add_cookies([{**copied, "value": value}])
        thief.goto(f"{stack.url}/release?release={seeded.done}", wait_until="commit")
        thieves[kind] = (thief, frames)
    for kind, (thief, frames) in thieves.items():
        expect_only_the_sign_in_form(thief, seeded)
        assert frames, kind  # the websocket was watched: the form itself came over it
        received = "".join(frames)
        for release_id in seeded.ids:
            assert release_id not in received, (kind, release_id)
        assert "wave-1" not in received, kind
