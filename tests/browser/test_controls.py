"""Controls in a real Chromium against a real Temporal: an operator approves a gated wave through
the dialog and the wave starts; a viewer sees the state but no buttons; the inbox lists a waiting
wave and a held app, how long each has waited, and their buttons, and retries the app from there."""

from __future__ import annotations

import re
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
from relmgr.temporal.messages import DeployOptions, OnFailure
from relmgr.temporal.starter import start_release
from relmgr.testing.factories import make_plan
from relmgr.testing.passwords import cheap_bcrypt
from tests.browser.conftest import (
    FAST,
    LOAD_TIMEOUT_MS,
    expect_page_title,
    sign_in_until_signed_in,
    wait_for_cookie,
)
from tests.browser.stack import Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]

OPERATOR = ("olga", "operator-pass-1")


@pytest.fixture(scope="module")
def operator(stack: Dashboard) -> tuple[str, str]:
    """An operator in the dashboard's users file: username and password."""
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
    return OPERATOR


def _start_gated(stack: Dashboard, release_id: str, waves: int) -> str:
    """Start a release with approval gates and wait until its wave 2 is AWAITING_APPROVAL."""
    temporal = stack.temporal
    temporal.loop.run(
        start_release(
            temporal.client,
            release_id,
            make_plan(waves, 1, 1),
            FAST,
            task_queue=temporal.task_queue,
            approval_gates=True,
        )
    )
    _wait_state(stack, ids.wave_id(release_id, 2), "AWAITING_APPROVAL")
    return release_id


@pytest.fixture(scope="module")
def gated(stack: Dashboard, operator: tuple[str, str]) -> str:
    """A release whose wave 2 is AWAITING_APPROVAL, and an operator in the users file."""
    return _start_gated(stack, f"rel-gated-{secrets.token_hex(3)}", waves=3)


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
    sign_in_until_signed_in(page, stack, password=OPERATOR[1], username=OPERATOR[0])
    wait_for_cookie(page)  # before leaving the page, or the next one asks to sign in again


def _confirm_through_dialog(page: Page, label: str, reason: str) -> None:
    """Click the control's button, give the reason in its dialog, and confirm."""
    page.get_by_role("button", name=label, exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox").fill(reason)
    dialog.get_by_role("button", name=label, exact=True).click()


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
    _confirm_through_dialog(page, "Approve wave 2", "canary <b>healthy</b>")
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


@pytest.fixture(scope="module")
def waiting(stack: Dashboard, operator: tuple[str, str]) -> tuple[str, str]:
    """A gated release waiting for wave 2's approval, and a held one (`--on-failure hold`):
    its app a1 failed its one attempt and holds wave 1 open."""
    token = secrets.token_hex(3)
    gated_id = _start_gated(stack, f"rel-inbox-gated-{token}", waves=2)
    held_id = f"rel-inbox-held-{token}"
    stack.temporal.start_release(
        held_id,
        make_plan(1, 1, 1),
        DeployOptions(
            min_seconds=0.05,
            max_seconds=0.1,
            fail_apps=("a1",),
            fail_attempts=1,  # so the retry's attempt deploys it
            max_attempts=1,
            on_failure=OnFailure.HOLD,
        ),
    )
    _wait_state(stack, _held_app(held_id), "FAILED")
    return gated_id, held_id


def _held_app(release_id: str) -> str:
    return f"{release_id}.wave-1.cluster-c1.bundle-core.app-a1"


def test_the_inbox_lists_a_waiting_wave_and_a_held_app_and_retries_it(
    open_page: Callable[..., Page], stack: Dashboard, waiting: tuple[str, str]
) -> None:
    """olga (operator) on Waiting for you: the gated wave with Approve, the held app with Retry,
    each saying how long it has waited; Retry through the dialog deploys the app again."""
    gated_id, held_id = waiting
    page = open_page("operator")
    _sign_in_as_operator(page, stack)
    page.goto(f"{stack.url}/inbox", timeout=LOAD_TIMEOUT_MS)
    expect_page_title(page, "Waiting for you")
    waited = r" · waiting \d+ (s|min \d\d s) \(since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)"
    for release_id, what, button in (
        (gated_id, "wave 2 awaits approval", "Approve wave 2"),
        (held_id, "app a1 failed and holds its wave", "Retry a1"),
    ):
        line = page.get_by_text(re.compile(f"^{re.escape(release_id)} · {what}{waited}$"))
        expect(line).to_be_visible()
        # The item: the innermost block holding both its line and its button.
        item = (
            page.get_by_test_id("stVerticalBlock")
            .filter(has=line)
            .filter(has=page.get_by_role("button", name=button, exact=True))
            .last
        )
        expect(item.get_by_role("button", name=button, exact=True)).to_be_visible()
        expect(item.get_by_role("button")).to_have_count(1)  # no other control applies
    started = time.monotonic()
    _confirm_through_dialog(page, "Retry a1", "registry was down")
    expect(page.get_by_text(re.compile(r"^Retry a1: "))).to_be_visible()
    state = _wait_state(stack, held_id, "SUCCEEDED")
    print(f"retry from the inbox: release {state} after {time.monotonic() - started:.2f} s")
    expect(page.get_by_text(re.compile(f"^{re.escape(held_id)} · "))).to_have_count(0)
    memo: dict[str, Any] = stack.temporal.loop.run(_memo(stack, held_id))
    [record] = memo["relmgr.audit"]
    assert (record["user"], record["action"], record["reason"]) == (
        "olga",
        "retry",
        "registry was down",
    )
