"""Release controls in the dashboard: buttons, the confirmation dialog, the Waiting-for-you list.

Buttons show only to users whose role allows controls (`relmgr.auth.roles`, the rule the API uses)
and only where the control applies: the release's workflow advertises it (`relmgr.controls`) and
its state allows it. Each opens a dialog asking for the reason (required to cancel); the request
ID is made when the dialog opens, so a double click acts once. Controls go through one
`SyncController` per process (one background loop, one Temporal client), like reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from relmgr import ids
from relmgr.auth.roles import Permission, allows, role_of
from relmgr.control.trail import ControlTrail
from relmgr.errors import ConfigError, InvalidIdError, RelmgrError
from relmgr.models import Control, EntityKind, EntityState, ReleaseQuery, ReleaseSummary
from relmgr.settings import Settings, get_settings
from relmgr.temporal.messages import (
    ApproveRequest,
    CancelRequest,
    ControlRequest,
    PauseRequest,
    ResumeRequest,
    RetryRequest,
)
from relmgr.ui import login
from relmgr.ui.bridge import SyncController
from relmgr.ui.login import SignedIn
from relmgr.ui.present import md_escape
from relmgr.ui.runtime import get_reader

if TYPE_CHECKING:
    from relmgr.control import ControlSender

ControllerFactory = Callable[[Settings], Awaitable["ControlSender"]]

_RESULT = "relmgr-control-result"
# The action whose dialog is open: kept across runs, so that a run of the whole page (not only
# of the dialog) keeps it open; closing the dialog forgets it.
_OPEN = "relmgr-control-open"
_REQUEST = "relmgr-control-request-id"
MAX_REASON = 500
_REQUESTS: dict[Control, type[ControlRequest]] = {
    Control.PAUSE: PauseRequest,
    Control.RESUME: ResumeRequest,
    Control.CANCEL: CancelRequest,
    Control.RETRY: RetryRequest,
}
# The audit outcome of each refusal, as the API records it.
_OUTCOMES = {
    "ConflictError": "conflict",
    "NotFoundError": "not_found",
    "ForbiddenError": "forbidden",
    "WorkerUnavailableError": "unavailable",
    "TemporalUnavailableError": "unavailable",
    "ReadTimeoutError": "unavailable",
    "InvalidIdError": "invalid",
}
_factory: ControllerFactory | None = None
_generation = 0


# ---------------------------------------------------------------------------------------------
# The controller of this process, and the seam tests swap it through.


async def _create_default_controller(settings: Settings) -> ControlSender:
    # Imported here: temporalio stays out of processes (and tests) that never send a control.
    from relmgr.control.controller import Controller
    from relmgr.temporal.client import connect

    return Controller(await connect(settings, retries=0))


def set_controller_factory(factory: ControllerFactory | None) -> None:
    """Use `factory` for this process's controller from now on; None restores the real one."""
    global _factory, _generation
    _factory = factory
    _generation += 1
    _shared_controller.clear()


@st.cache_resource(show_spinner=False, max_entries=4)
def _trail(path: str | None) -> ControlTrail:
    """This process's control trail (the API's audit log file, when set)."""
    return ControlTrail(Path(path) if path else None)


@st.cache_resource(show_spinner=False, max_entries=1, on_release=lambda c: c.close())
def _shared_controller(generation: int) -> SyncController:
    settings = get_settings()
    factory = _factory or _create_default_controller
    return SyncController(lambda: factory(settings), name=f"relmgr-ui-control-{generation}")


# ---------------------------------------------------------------------------------------------
# Who may, and what applies.


def signed_in_user() -> SignedIn | None:
    """The user of this session from the users file (roles included), or None."""
    username = st.session_state.get("username")
    if st.session_state.get("authentication_status") is not True or not username:
        return None
    try:
        user = login.current_users(get_settings()).get(str(username))
    except ConfigError:
        return None
    if user is None:
        return None
    return SignedIn(username=user.username, name=user.name, roles=user.roles)


def may_control(user: SignedIn | None) -> bool:
    """True if the user's role allows controls (asked before showing any button)."""
    return user is not None and allows(user, Permission.CONTROL)


@dataclass(frozen=True, slots=True)
class Action:
    """One control that applies now, as a button shows it."""

    control: Control
    target_id: str
    label: str
    wave: int | None = None


def release_actions(summary: ReleaseSummary) -> list[Action]:
    """The controls that apply to a release now: advertised by its workflow and allowed by its
    state (a finished release takes none)."""
    state = summary.state
    if state.is_terminal or not summary.started:
        return []
    offered = set(summary.controls)
    actions = []
    awaiting = state is EntityState.AWAITING_APPROVAL and summary.current_wave is not None
    if Control.APPROVE in offered and awaiting:
        wave = summary.current_wave
        actions.append(Action(Control.APPROVE, summary.id, f"Approve wave {wave}", wave))
    if Control.PAUSE in offered and state in (
        EntityState.IN_PROGRESS,
        EntityState.AWAITING_APPROVAL,
    ):
        actions.append(Action(Control.PAUSE, summary.id, "Pause"))
    if Control.RESUME in offered and state is EntityState.PAUSED:
        actions.append(Action(Control.RESUME, summary.id, "Resume"))
    if Control.CANCEL in offered:
        actions.append(Action(Control.CANCEL, summary.id, "Cancel"))
    return actions


def retry_actions(summary: ReleaseSummary) -> list[Action]:
    """A Retry for every app holding the release (failed, waiting for an operator)."""
    if summary.state.is_terminal:
        return []
    return [Action(Control.RETRY, app_id, f"Retry {_name(app_id)}") for app_id in summary.held]


def _name(entity_id: str) -> str:
    try:
        return ids.parse_entity_id(entity_id).name
    except InvalidIdError:
        return entity_id


# ---------------------------------------------------------------------------------------------
# Buttons and the dialog.


def _request(action: Action, user: SignedIn, reason: str) -> ControlRequest:
    role = role_of(user).value
    if action.control is Control.APPROVE:
        assert action.wave is not None
        return ApproveRequest(user=user.username, role=role, reason=reason, wave=action.wave)
    return _REQUESTS[action.control](user=user.username, role=role, reason=reason)


def _forget_open_dialog() -> None:
    st.session_state.pop(_OPEN, None)


@st.dialog("Confirm", on_dismiss=_forget_open_dialog)
def _confirm(action: Action, user: SignedIn) -> None:
    st.markdown(f"**{md_escape(action.label)}** · `{md_escape(action.target_id)}`")
    required = action.control is Control.CANCEL
    reason = st.text_area(
        "Reason (required)" if required else "Reason",
        max_chars=MAX_REASON,
        key=f"control-reason-{action.control}-{action.target_id}",
    )
    # Made when the dialog opens: a second click on Confirm sends the same request, which acts
    # once (it is the Temporal Update ID).
    request_key = f"{_REQUEST}-{action.control}-{action.target_id}"
    request_id = st.session_state.setdefault(request_key, uuid.uuid4().hex)
    confirm = st.button(
        action.label,
        type="primary",
        disabled=required and not reason.strip(),
        key=f"control-confirm-{action.control}-{action.target_id}",
    )
    if not confirm:
        return
    audit_log = get_settings().audit_log
    trail = _trail(str(audit_log) if audit_log else None)

    def record(outcome: str, message: str) -> None:
        trail.record(
            username=user.username,
            role=role_of(user).value,
            action=action.control.value,
            target=action.target_id,
            reason=reason,
            request_id=request_id,
            outcome=outcome,
            message=message,
            client="dashboard",
        )

    try:
        result = _shared_controller(_generation).send(
            action.control,
            action.target_id,
            _request(action, user, reason),
            request_id=request_id,
        )
    except RelmgrError as exc:
        record(_OUTCOMES.get(type(exc).__name__, "failed"), exc.message)
        st.error(md_escape(exc.message), icon=":material/block:")
        return
    record("accepted", result.message)
    st.session_state.pop(request_key, None)
    st.session_state.pop(_OPEN, None)
    st.session_state[_RESULT] = f"{action.label}: {result.message}"
    st.rerun()


def show_result() -> None:
    """The toast of the control accepted in the last run (the dialog's run ends with a rerun)."""
    message = st.session_state.pop(_RESULT, None)
    if message:
        st.toast(md_escape(message), icon=":material/check_circle:")


def render_buttons(actions: list[Action], user: SignedIn, *, key: str) -> None:
    """One button per action, each opening the confirmation dialog."""
    if not actions:
        return
    columns = st.columns(len(actions) + 2, gap="small")
    for column, action in zip(columns, actions, strict=False):
        button_key = f"control-{key}-{action.control}-{action.target_id}"
        if column.button(action.label, key=button_key, width="stretch"):
            st.session_state[_OPEN] = (key, action)
    opened = st.session_state.get(_OPEN)
    if opened is not None and opened[0] == key and opened[1] in actions:
        _confirm(opened[1], user)


def render_release_controls(release_id: str) -> None:
    """The release page's controls, for operators, where they apply (viewers see the held apps
    and the trail, not the buttons)."""
    show_result()
    try:
        summary = get_reader().get_release(release_id)
    except RelmgrError:
        return  # the page's data region says what is wrong
    if summary.held and not summary.state.is_terminal:
        names = ", ".join(_name(a) for a in summary.held)
        st.warning(
            f"Held: {md_escape(names)} failed and waits for a retry.", icon=":material/back_hand:"
        )
    user = signed_in_user()
    if may_control(user):
        assert user is not None
        # Retry is offered beside each held app, in the needs-attention list.
        render_buttons(release_actions(summary), user, key="release")
    render_trail(summary)


def render_attention_controls(release_id: str, failed_apps: list[str]) -> None:
    """Retry for each app of the needs-attention list that holds its release (failed, waiting
    for an operator), for operators only; the same dialog as the app page's Retry."""
    user = signed_in_user()
    if not failed_apps or not may_control(user):
        return
    assert user is not None
    try:
        summary = get_reader().get_release(release_id)
    except RelmgrError:
        return  # the data region says what is wrong
    listed = set(failed_apps)
    actions = [a for a in retry_actions(summary) if a.target_id in listed]
    render_buttons(actions, user, key="attention")


def render_trail(summary: ReleaseSummary) -> None:
    """The release's last accepted controls (its `relmgr.audit` memo), newest first, escaped."""
    if not summary.audit:
        return
    with st.expander(f"Controls ({len(summary.audit)})", icon=":material/history:"):
        for record in reversed(summary.audit):
            when = record.at.strftime("%Y-%m-%d %H:%M:%S UTC")
            reason = f" — {md_escape(record.reason)}" if record.reason else ""
            st.markdown(
                f"{when} · **{md_escape(record.user)}** ({md_escape(record.role or '?')}) · "
                f"{record.action.value} `{md_escape(record.target)}`{reason}"
            )


def render_entity_controls(entity_id: str) -> None:
    """Retry on the page of an app that holds its release (operators only)."""
    show_result()
    user = signed_in_user()
    if not may_control(user):
        return
    assert user is not None
    try:
        ref = ids.parse_entity_id(entity_id)
        if ref.kind is not EntityKind.APP:
            return
        summary = get_reader().get_release(ref.release_id)
    except RelmgrError:
        return
    actions = [a for a in retry_actions(summary) if a.target_id == entity_id]
    render_buttons(actions, user, key="entity")


# ---------------------------------------------------------------------------------------------
# Waiting for you.


@dataclass(frozen=True, slots=True)
class WaitingItem:
    """Something waiting for a person: a gated wave, a paused release or a held app."""

    release_id: str
    what: str
    since: datetime | None
    actions: tuple[Action, ...]


def waiting_items(summaries: list[ReleaseSummary]) -> list[WaitingItem]:
    """Every wave awaiting approval, paused release and held app, oldest first."""
    items = []
    for summary in summaries:
        if summary.state.is_terminal:
            continue
        actions = release_actions(summary)
        since = summary.last_changed_at
        if summary.state is EntityState.AWAITING_APPROVAL:
            wave = summary.current_wave
            approve = tuple(a for a in actions if a.control is Control.APPROVE)
            items.append(WaitingItem(summary.id, f"wave {wave} awaits approval", since, approve))
        elif summary.state is EntityState.PAUSED:
            resume = tuple(a for a in actions if a.control is Control.RESUME)
            items.append(WaitingItem(summary.id, "paused", since, resume))
        for retry in retry_actions(summary):
            what = f"app {_name(retry.target_id)} failed and holds its wave"
            items.append(WaitingItem(summary.id, what, since, (retry,)))
    return sorted(items, key=lambda item: (item.since is None, item.since or datetime.min))


def read_waiting() -> list[WaitingItem]:
    """The waiting items of every release (one list call, from the reader's cache)."""
    page = get_reader().list_releases(ReleaseQuery(page_size=500))
    return waiting_items(list(page.items))


def waiting_count() -> int | None:
    """How many items wait, for an operator's sidebar; None for viewers (it is nothing they can
    act on, and their runs cost no extra read) or when it cannot be read now."""
    if not may_control(signed_in_user()):
        return None
    try:
        return len(read_waiting())
    except RelmgrError:
        return None
