"""Auto-refresh: the interval control in the sidebar, and no polling while the tab is hidden.

Each page puts its data region in `st.fragment(run_every=interval())`, so a refresh reruns that
region only (not the page, not the sign-in). The browser owns the timer: for every fragment that
declares `run_every` it runs a `setInterval` that asks the server to rerun the fragment.

What happens while the browser tab is hidden (read from Streamlit 1.67's frontend, `App`'s
`handleAutoRerun`): nothing in Streamlit stops the timer. The websocket stays open and the
interval keeps firing, so a hidden tab keeps costing one fragment rerun, and one read, per tick.
Browsers only throttle timers of hidden tabs (to at most once a second; Chrome, after five minutes
hidden, to once a minute), which does not slow a 3 s interval for the first five minutes.

What relmgr does about it: Streamlit clears every auto-rerun timer at the start of a full app run
and sets a timer again only for fragments that declare `run_every` in that run. A tiny component
(below) reports `document.visibilityState`; when the tab is hidden its change triggers a full run
in which `interval()` is None, so the fragment declares no `run_every` and polling stops. When the
tab is shown again, the next change triggers another full run, which reads fresh data at once and
sets the timer again.

The choice outlives the page: every move to another entity is a full browser navigation, which
starts a new Streamlit session (`relmgr.ui.links`), so the choice is also kept in a session cookie
(`relmgr_refresh`, set by a second tiny component; not a secret, ends with the browser session),
and a new session starts from it. A value that is not one of the choices is ignored.
"""

from __future__ import annotations

import streamlit as st

from relmgr.settings import Settings, get_settings

CHOICES: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
PAUSED = 0.0
CONTROL_KEY = "refresh-seconds"
_RUN_EVERY = "relmgr-run-every"
_HIDDEN = "hidden"
_KNOWN_HIDDEN = "relmgr-tab-hidden"

# Our own code, run in the app page (components v2 are not sandboxed); it only reads
# `document.visibilityState` and reports changes. `last` starts from what Python last knew, so
# a change is sent exactly once whether or not Streamlit calls this function again per run.
_VISIBILITY_JS = """
export default function (component) {
  const { setStateValue, data } = component;
  let last = Boolean(data && data.hidden);
  const report = () => {
    const hidden = document.visibilityState === "hidden";
    if (hidden !== last) {
      last = hidden;
      setStateValue("hidden", hidden);
    }
  };
  document.addEventListener("visibilitychange", report);
  report();
  return () => document.removeEventListener("visibilitychange", report);
}
"""

_tab_visibility = st.components.v2.component("relmgr_tab_visibility", js=_VISIBILITY_JS)

# The cookie that carries the choice to the next page this browser opens.
CHOICE_COOKIE = "relmgr_refresh"
# Our own code: stores the choice it is given (a number) in the cookie, once per mount (the
# component is keyed by the choice, so a new choice mounts it anew).
_SAVE_CHOICE_JS = f"""
export default function (component) {{
  const seconds = component.data && component.data.seconds;
  if (typeof seconds === "number" && Number.isFinite(seconds)) {{
    document.cookie = `{CHOICE_COOKIE}=${{seconds}}; path=/; SameSite=Strict`;
  }}
}}
"""

_save_choice = st.components.v2.component("relmgr_refresh_choice", js=_SAVE_CHOICE_JS)


def _ignore() -> None:
    """A state change only needs the rerun it causes."""


def choice_text(seconds: float) -> str:
    """How the control shows one choice."""
    return "Paused" if seconds == PAUSED else f"Every {seconds:g} s"


def tab_hidden() -> bool:
    """Mount the visibility reporter; True while the browser says this tab is hidden."""
    known = bool(st.session_state.get(_KNOWN_HIDDEN, False))
    result = _tab_visibility(
        key="tab-visibility",
        data={_HIDDEN: known},
        default={_HIDDEN: False},
        height=0,
        on_hidden_change=_ignore,
    )
    hidden = bool(result.get(_HIDDEN, False))
    st.session_state[_KNOWN_HIDDEN] = hidden
    return hidden


def render_control(settings: Settings) -> float | None:
    """The interval select (in the current container) and the tab watcher; the effective
    `run_every` in seconds, None while paused or hidden. Call once per full run, before the page."""
    default = float(settings.ui_refresh_seconds)
    options = [*sorted({*CHOICES, default}), PAUSED]
    saved = saved_choice(options)
    seconds = st.selectbox(
        "Auto-refresh",
        options,
        index=options.index(saved if saved is not None else default),
        key=CONTROL_KEY,
        format_func=choice_text,
        help="How often the data on this page is read again; the sign-in and the controls stay.",
    )
    # Rendered by every full run (the same element while the choice stays; a new one, whose
    # script stores it, when it changes), so the cookie always holds the choice on screen.
    _save_choice(key=f"refresh-choice-{seconds:g}", data={"seconds": seconds}, height=0)
    hidden = tab_hidden()
    run_every = None if hidden or seconds == PAUSED else float(seconds)
    st.session_state[_RUN_EVERY] = run_every
    return run_every


def saved_choice(options: list[float]) -> float | None:
    """The choice this browser made on an earlier page (its `relmgr_refresh` cookie), if it is
    one of `options`."""
    raw = st.context.cookies.get(CHOICE_COOKIE)
    try:
        value = float(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if value in options else None


def interval() -> float | None:
    """The `run_every` of this run's data fragments: None while paused or the tab is hidden."""
    if _RUN_EVERY in st.session_state:
        value = st.session_state[_RUN_EVERY]
        return float(value) if value is not None else None
    return float(get_settings().ui_refresh_seconds)
