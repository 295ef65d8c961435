"""Controls in the dashboard: buttons for operators only and only where they apply, the dialog,
and the Waiting-for-you page (a fake reader and a fake controller behind the seams)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from relmgr.auth.users import load_users, write_users
from relmgr.errors import ConflictError, WorkerUnavailableError
from relmgr.models import Control, ControlRecord, EntityState, ReleaseSummary
from relmgr.settings import Settings, get_settings
from relmgr.temporal.messages import ApproveRequest, ControlRequest, ControlResult, RetryRequest
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui import controls
from relmgr.ui.present import md_escape
from tests.ui.conftest import OPERATOR, open_page, sign_in

GATED = "rel-gate"
HELD_APP = "rel-held.wave-1.cluster-c1.bundle-core.app-a1"
ALL = (Control.APPROVE, Control.PAUSE, Control.RESUME, Control.CANCEL)


class FakeController:
    """Records every control; refuses approving wave 3."""

    def __init__(self) -> None:
        self.sent: list[tuple[Control, str, ControlRequest, str]] = []
        self.ids: list[str] = []  # every request ID sent, refused or not (where a test counts)

    async def send(
        self, action: Control, target_id: str, request: ControlRequest, *, request_id: str
    ) -> ControlResult:
        if isinstance(request, ApproveRequest) and request.wave == 3:
            raise ConflictError(
                "wave 3 is PENDING; wave 2 is awaiting approval", entity_id=target_id
            )
        self.sent.append((action, target_id, request, request_id))
        return ControlResult(
            entity_id=target_id,
            action=action,
            state=EntityState.IN_PROGRESS,
            message="it starts now",
        )


@pytest.fixture
def sent(fake: FakeReader) -> Iterator[FakeController]:
    """A gated release (wave 2 awaiting approval) and a held one, and a fake controller."""
    fake.put(
        make_hierarchy(
            "gate",
            waves=3,
            clusters=1,
            apps=1,
            states={
                GATED: EntityState.AWAITING_APPROVAL,
                f"{GATED}.wave-2": EntityState.AWAITING_APPROVAL,
                f"{GATED}.wave-2.cluster-c1": None,  # type: ignore[dict-item]
                f"{GATED}.wave-2.cluster-c1.bundle-core": None,  # type: ignore[dict-item]
                f"{GATED}.wave-2.cluster-c1.bundle-core.app-a1": None,  # type: ignore[dict-item]
                f"{GATED}.wave-3": None,  # type: ignore[dict-item]
                f"{GATED}.wave-3.cluster-c1": None,  # type: ignore[dict-item]
                f"{GATED}.wave-3.cluster-c1.bundle-core": None,  # type: ignore[dict-item]
                f"{GATED}.wave-3.cluster-c1.bundle-core.app-a1": None,  # type: ignore[dict-item]
            },
            started_at=T0 + timedelta(hours=2),
        )
    )
    fake.put(
        make_hierarchy(
            "held",
            waves=1,
            clusters=1,
            apps=1,
            default=EntityState.IN_PROGRESS,
            states={HELD_APP: EntityState.FAILED},
            started_at=T0 + timedelta(hours=1),
        )
    )
    record = ControlRecord(
        at=T0,
        user="ana",
        role="operator",
        action=Control.PAUSE,
        target=GATED,
        reason="<img src=x onerror=alert(1)> **now**",
        request_id="r-1",
    )
    fake.memo[GATED] = {"controls": ALL, "current_wave": 2, "audit": (record,)}
    fake.memo["rel-held"] = {"controls": ALL, "held": (HELD_APP,)}
    controller = FakeController()

    async def factory(settings: Settings) -> FakeController:
        return controller

    controls.set_controller_factory(factory)  # type: ignore[arg-type]
    yield controller
    controls.set_controller_factory(None)


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_viewer_sees_the_state_but_no_control_buttons(app: AppTest, sent: FakeController) -> None:
    """A viewer gets no Approve, Pause or Cancel on a gated release."""
    at = open_page(app, "pages/release.py", release=GATED)
    assert not at.exception
    assert not {"Approve wave 2", "Pause", "Cancel", "Resume"} & set(_labels(at))
    [trail] = [m.value for m in at.markdown if "**ana**" in m.value]
    # The reason is shown escaped: no raw HTML tag, no Markdown emphasis of its own.
    assert md_escape("<img src=x onerror=alert(1)> **now**") in trail
    assert re.search(r"(?<!\\)<", trail) is None  # every "<" escaped


def test_operator_sees_the_controls_that_apply_and_approves_through_the_dialog(
    new_app: Callable[[], AppTest], sent: FakeController
) -> None:
    """Approve wave 2, Pause, Cancel (no Resume); confirming sends approve for wave 2, once."""
    at = open_page(sign_in(new_app(), OPERATOR), "pages/release.py", release=GATED)
    assert not at.exception
    labels = _labels(at)
    assert {"Approve wave 2", "Pause", "Cancel"} <= set(labels)
    assert "Resume" not in labels
    next(b for b in at.button if b.label == "Approve wave 2").click().run()
    at.text_area[0].input("canary <b>ok</b>").run()
    confirm = [b for b in at.button if b.label == "Approve wave 2"][-1]
    confirm.click().run()
    assert not at.exception
    [(action, target, request, _)] = sent.sent
    assert (action, target) == (Control.APPROVE, GATED)
    assert isinstance(request, ApproveRequest)
    assert (request.user, request.role, request.wave, request.reason) == (
        OPERATOR,
        "operator",
        2,
        "canary <b>ok</b>",
    )
    assert [t.value for t in at.toast] == [md_escape("Approve wave 2: it starts now")]
    attempt = controls._trail(None).attempts()[-1]
    assert (attempt.user, attempt.action, attempt.target, attempt.outcome, attempt.client) == (
        OPERATOR,
        "approve",
        GATED,
        "accepted",
        "dashboard",
    )


def test_inbox_lists_the_waiting_wave_and_the_held_app_oldest_first(
    new_app: Callable[[], AppTest], sent: FakeController
) -> None:
    """Waiting for you: the held app (older release) then the gated wave, with their buttons."""
    at = open_page(sign_in(new_app(), OPERATOR), "pages/inbox.py")
    assert not at.exception
    lines = [m.value for m in at.markdown if "since" in m.value]
    assert len(lines) == 2
    assert "app a1 failed and holds its wave" in lines[0]
    assert "wave 2 awaits approval" in lines[1]
    # How long each has waited, then since when (the fake's releases changed days ago).
    for line in lines:
        assert re.search(
            r" · waiting \d+ d \d+ h \(since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\)$", line
        )
    assert {"Retry a1", "Approve wave 2"} <= set(_labels(at))
    # Retry from here: the same dialog, and its result as a toast on this page.
    next(b for b in at.button if b.label == "Retry a1").click().run()
    at.text_area[0].input("flaky registry").run()
    [b for b in at.button if b.label == "Retry a1"][-1].click().run()
    assert not at.exception
    assert [(action, target) for action, target, _, _ in sent.sent] == [(Control.RETRY, HELD_APP)]
    assert [t.value for t in at.toast] == [md_escape("Retry a1: it starts now")]


def test_actions_apply_only_where_the_state_and_the_workflow_allow() -> None:
    """No controls on finished releases or without `relmgr.controls`; Resume only when paused."""
    base = ReleaseSummary(id="rel-x", kind="release", release_id="rel-x", controls=ALL)
    paused = base.model_copy(update={"state": EntityState.PAUSED})
    assert [a.label for a in controls.release_actions(paused)] == ["Resume", "Cancel"]
    running = base.model_copy(update={"state": EntityState.IN_PROGRESS})
    assert [a.label for a in controls.release_actions(running)] == ["Pause", "Cancel"]
    done = base.model_copy(update={"state": EntityState.SUCCEEDED})
    assert controls.release_actions(done) == []
    unadvertised = running.model_copy(update={"controls": ()})
    assert controls.release_actions(unadvertised) == []


def test_needs_attention_offers_retry_of_a_held_app_to_an_operator_through_the_dialog(
    new_app: Callable[[], AppTest], sent: FakeController
) -> None:
    """The held app's row of the needs-attention list gets Retry (there only, not in the header);
    confirming sends retry for that app, once, with the operator's reason."""
    at = open_page(sign_in(new_app(), OPERATOR), "pages/release.py", release="rel-held")
    assert not at.exception
    assert [m for m in at.subheader if m.value == "Needs attention (1)"]
    [retry] = [b for b in at.button if b.label == "Retry a1"]
    assert retry.key == f"control-attention-retry-{HELD_APP}"  # the list's, not the header's
    retry.click().run()
    at.text_area[0].input("flaky registry").run()
    [_, confirm] = [b for b in at.button if b.label == "Retry a1"]
    confirm.click().run()
    assert not at.exception
    [(action, target, request, _)] = sent.sent
    assert (action, target) == (Control.RETRY, HELD_APP)
    assert isinstance(request, RetryRequest)
    assert (request.user, request.role, request.reason) == (OPERATOR, "operator", "flaky registry")
    assert [t.value for t in at.toast] == [md_escape("Retry a1: it starts now")]


def test_needs_attention_shows_a_viewer_the_held_app_without_retry(
    app: AppTest, sent: FakeController
) -> None:
    """A viewer sees the held app's failure in needs-attention but no Retry button."""
    at = open_page(app, "pages/release.py", release="rel-held")
    assert not at.exception
    assert [m for m in at.subheader if m.value == "Needs attention (1)"]
    assert any("app-a1" in m.value for m in at.markdown)
    assert not [label for label in _labels(at) if label.startswith("Retry")]


def test_needs_attention_offers_no_retry_for_a_failure_that_holds_nothing(
    new_app: Callable[[], AppTest], sent: FakeController, fake: FakeReader
) -> None:
    """A failed app of a release not held (default `--on-failure fail`) gets no Retry."""
    fake.memo["rel-held"] = {"controls": ALL, "held": ()}
    at = open_page(sign_in(new_app(), OPERATOR), "pages/release.py", release="rel-held")
    assert not at.exception
    assert [m for m in at.subheader if m.value == "Needs attention (1)"]
    assert not [label for label in _labels(at) if label.startswith("Retry")]


def test_confirming_again_after_a_refusal_sends_the_same_request_id(
    new_app: Callable[[], AppTest], sent: FakeController
) -> None:
    """The request ID is made when the dialog opens: a confirm that failed (no worker) and a
    second one send the same ID, so Temporal acts once; each attempt is in the trail."""
    failures = [
        WorkerUnavailableError("no worker is polling task queue relmgr", task_queue="relmgr")
    ]
    original = sent.send

    async def flaky(
        action: Control, target_id: str, request: ControlRequest, *, request_id: str
    ) -> ControlResult:
        sent.ids.append(request_id)
        if failures:
            raise failures.pop()
        return await original(action, target_id, request, request_id=request_id)

    sent.send = flaky  # type: ignore[method-assign]
    at = open_page(sign_in(new_app(), OPERATOR), "pages/release.py", release=GATED)
    next(b for b in at.button if b.label == "Pause").click().run()
    [b for b in at.button if b.label == "Pause"][-1].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["no worker is polling task queue relmgr"]
    [b for b in at.button if b.label == "Pause"][-1].click().run()
    assert not at.exception
    assert len(sent.ids) == 2
    assert sent.ids[0] == sent.ids[1]
    attempts = controls._trail(None).attempts()[-2:]
    assert [(a.outcome, a.request_id) for a in attempts] == [
        ("unavailable", sent.ids[0]),
        ("accepted", sent.ids[0]),
    ]


def test_a_role_lowered_while_the_dialog_is_open_sends_nothing(
    new_app: Callable[[], AppTest],
    sent: FakeController,
    users_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Authorisation is asked again on the run that would send: olga, made a viewer after
    opening the dialog, finds the dialog and the buttons gone when she confirms; nothing is sent."""
    users = tmp_path / "users.yaml"
    shutil.copy(users_file, users)
    monkeypatch.setenv("RELMGR_USERS_FILE", str(users))
    get_settings.cache_clear()
    at = open_page(sign_in(new_app(), OPERATOR), "pages/release.py", release=GATED)
    next(b for b in at.button if b.label == "Pause").click().run()
    assert not at.exception
    lowered = [
        u.model_copy(update={"roles": ("viewer",)}) if u.username == OPERATOR else u
        for u in load_users(users).users.values()
    ]
    write_users(users, lowered)
    [b for b in at.button if b.label == "Pause"][-1].click().run()
    assert not at.exception
    assert sent.sent == []
    assert not {"Pause", "Cancel", "Approve wave 2"} & set(_labels(at))


def test_inbox_shows_a_viewer_what_waits_without_buttons(
    app: AppTest, sent: FakeController
) -> None:
    """A viewer sees the waiting wave and the held app but no Approve or Retry."""
    at = open_page(app, "pages/inbox.py")
    assert not at.exception
    lines = [m.value for m in at.markdown if " · waiting " in m.value]
    assert ["app a1 failed" in lines[0], "wave 2 awaits approval" in lines[1]] == [True, True]
    assert not {"Retry a1", "Approve wave 2"} & set(_labels(at))
