"""Controls in a real Chromium against a real Temporal: an operator approves a gated wave through
the dialog and the wave starts; a viewer sees the state but no buttons; the inbox lists the wave."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from relmgr import ids
from relmgr.auth.users import add_user
from relmgr.temporal.contract import SA_STATE
from relmgr.temporal.starter import start_release
from relmgr.testing.factories import make_plan
from relmgr.testing.passwords import cheap_bcrypt
from tests.browser.conftest import FAST, LOAD_TIMEOUT_MS, expect_page_title, wait_for_cookie
from tests.browser.stack import Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]

OPERATOR = ("olga", "operator-pass-1")


@pytest.fixture(scope="module")
def gated(stack: Dashboard) -> str:
    """A release whose wave 2 is AWAITING_APPROVAL, and an operator in the users file."""
    users_file = Path(stack.streamlit._env["RELMGR_USERS_FILE"])
    with cheap_bcrypt():  # the tests are about the dashboard, not the hash's cost
        add_user(
            users_file,
            username=OPERATOR[0],
            email="olga@example.com",
            name="Olga Operator",
            password=OPERATOR[1],
            roles=("operator",),
        )
    release_id = f"rel-gated-{secrets.token_hex(3)}"
    temporal = stack.temporal
    temporal.loop.run(
        start_release(
            temporal.client,
            release_id,
            make_plan(3, 1, 1),
            FAST,
            task_queue=temporal.task_queue,
            approval_gates=True,
        )
    )
    _wait_state(stack, ids.wave_id(release_id, 2), "AWAITING_APPROVAL")
    return release_id


def _state(stack: Dashboard, entity_id: str) -> str | None:
    async def read() -> str | None:
        try:
            desc = await stack.temporal.client.get_workflow_handle(entity_id).describe()
        except Exception:  # not started yet
            return None
        return desc.typed_search_attributes.get(SA_STATE)

    return stack.temporal.loop.run(read())


def _wait_state(stack: Dashboard, entity_id: str, *states: str, within: float = 30) -> str:
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        seen = _state(stack, entity_id)
        if seen in states:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{entity_id} never reached {states}; last {seen}")


def _sign_in_as_operator(page: Page, stack: Dashboard) -> None:
    page.goto(stack.url, timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('iframe')].some(f => f.src.includes('CookieManager'))",
        timeout=LOAD_TIMEOUT_MS,
    )
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=LOAD_TIMEOUT_MS)
    page.get_by_role("textbox", name="Username").fill(OPERATOR[0])
    page.get_by_role("textbox", name="Password").fill(OPERATOR[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()
    wait_for_cookie(page)  # before leaving the page, or the next one asks to sign in again


def test_a_viewer_sees_the_waiting_wave_but_no_control_buttons(
    signed_in_page: Page, stack: Dashboard, gated: str
) -> None:
    """alice (viewer): the release page shows AWAITING_APPROVAL and no Approve/Pause/Cancel."""
    page = signed_in_page
    page.goto(f"{stack.url}/release?release={gated}", timeout=LOAD_TIMEOUT_MS)
    expect_page_title(page, f"Release {gated}")
    expect(page.get_by_text("AWAITING_APPROVAL").first).to_be_visible()
    for label in ("Approve wave 2", "Pause", "Cancel"):
        expect(page.get_by_role("button", name=label, exact=True)).to_have_count(0)


def test_an_operator_approves_through_the_dialog_and_the_wave_starts(
    open_page: Callable[..., Page], stack: Dashboard, gated: str
) -> None:
    """olga (operator): Approve wave 2 → reason → confirm; a toast says so; wave 2 deploys."""
    page = open_page("operator")
    _sign_in_as_operator(page, stack)
    page.goto(f"{stack.url}/inbox", timeout=LOAD_TIMEOUT_MS)
    expect_page_title(page, "Waiting for you")
    expect(page.get_by_text("wave 2 awaits approval")).to_be_visible()
    page.goto(f"{stack.url}/release?release={gated}", timeout=LOAD_TIMEOUT_MS)
    expect_page_title(page, f"Release {gated}")
    started = time.monotonic()
    page.get_by_role("button", name="Approve wave 2", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox").fill("canary <b>healthy</b>")
    dialog.get_by_role("button", name="Approve wave 2", exact=True).click()
    expect(page.get_by_text("Approve wave 2: wave 2 approved; it starts now")).to_be_visible()
    state = _wait_state(stack, ids.wave_id(gated, 2), "IN_PROGRESS", "SUCCEEDED")
    print(f"approve through the dialog: wave 2 {state} after {time.monotonic() - started:.2f} s")
    _wait_state(stack, ids.wave_id(gated, 3), "AWAITING_APPROVAL")
    memo: dict[str, Any] = stack.temporal.loop.run(_memo(stack, gated))
    [record] = memo["relmgr.audit"]
    assert (record["user"], record["reason"]) == ("olga", "canary <b>healthy</b>")


async def _memo(stack: Dashboard, release_id: str) -> dict[str, Any]:
    desc = await stack.temporal.client.get_workflow_handle(release_id).describe()
    return await desc.memo()
