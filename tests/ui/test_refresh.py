"""Auto-refresh: the interval control, pausing, the configured default, and no polling for a
hidden tab."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from relmgr.settings import get_settings
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.refresh import CHOICE_COOKIE, PAUSED
from tests.ui.conftest import browser_sends

RUN_EVERY = "relmgr-run-every"


def _choice_savers(at: AppTest) -> list[Any]:
    """The components on the page that store the auto-refresh choice in its cookie."""
    return [
        element
        for element in at.get("bidi_component")
        if element.proto.component_name == "relmgr_refresh_choice"
    ]


def test_the_default_is_every_three_seconds(app: AppTest) -> None:
    """The sidebar control starts at the configured 3 s and the data fragments use it."""
    at = app.run()
    control = at.sidebar.selectbox(key="refresh-seconds")
    assert control.label == "Auto-refresh"
    assert control.value == 3.0
    assert control.options == [
        "Every 1 s",
        "Every 2 s",
        "Every 3 s",
        "Every 5 s",
        "Every 10 s",
        "Every 30 s",
        "Every 60 s",
        "Paused",
    ]
    assert at.session_state[RUN_EVERY] == 3.0
    assert at.caption[0].value == "Updated 0 s ago · refreshing every 3 s"


def test_changing_the_interval_reaches_the_data_region(app: AppTest) -> None:
    """A new interval is what the fragments declare from the next run on."""
    at = app.run()
    at.sidebar.selectbox(key="refresh-seconds").set_value(10.0).run()
    assert at.session_state[RUN_EVERY] == 10.0
    assert at.caption[0].value == "Updated 0 s ago · refreshing every 10 s"


def test_pausing_stops_the_auto_refresh(app: AppTest) -> None:
    """Paused: no run_every at all, and the caption says so."""
    at = app.run()
    at.sidebar.selectbox(key="refresh-seconds").set_value(PAUSED).run()
    assert not at.exception
    assert at.session_state[RUN_EVERY] is None
    read_at = at.session_state["relmgr-last-good"]["releases"][1].read_at
    assert at.caption[0].value == (
        f"Auto-refresh paused · data from {read_at.astimezone(UTC):%H:%M:%S} UTC"
    )


def test_refresh_now_reads_again_while_paused(app: AppTest, fake: FakeReader) -> None:
    """Paused, the Refresh-now button is a fresh read, and the caption names its time."""
    at = app.run()
    at.sidebar.selectbox(key="refresh-seconds").set_value(PAUSED).run()
    reads = fake.calls.count("list_releases")
    at.button(key="releases-refresh-now").click().run()
    assert not at.exception
    assert fake.calls.count("list_releases") == reads + 1


def test_a_configured_interval_is_the_default(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELMGR_UI_REFRESH_SECONDS=7 adds 7 s to the choices and starts there."""
    monkeypatch.setenv("RELMGR_UI_REFRESH_SECONDS", "7")
    get_settings.cache_clear()
    at = app.run()
    control = at.sidebar.selectbox(key="refresh-seconds")
    assert control.value == 7.0
    assert "Every 7 s" in control.options
    assert at.caption[0].value == "Updated 0 s ago · refreshing every 7 s"


def test_a_hidden_tab_stops_polling_and_a_shown_one_resumes(app: AppTest) -> None:
    """The tab watcher's report turns the fragments' run_every off, and on again."""
    at = app.run()
    at.session_state["tab-visibility"] = {"hidden": True}
    at.run()
    assert not at.exception
    assert at.session_state[RUN_EVERY] is None
    at.session_state["tab-visibility"] = {"hidden": False}
    at.run()
    assert at.session_state[RUN_EVERY] == 3.0


@pytest.mark.parametrize(("sent", "expected"), [("10", 10.0), ("0", None), ("0.0", None)])
def test_a_choice_made_on_an_earlier_page_is_where_a_new_page_starts(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, sent: str, expected: float | None
) -> None:
    """A browser whose earlier page chose 10 s (or Paused) sends `relmgr_refresh`: the new
    session starts there, and the component that keeps the cookie holds that choice."""
    browser_sends(monkeypatch, {CHOICE_COOKIE: sent})
    at = app.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="refresh-seconds").value == (expected or PAUSED)
    assert at.session_state[RUN_EVERY] == expected
    assert [c.key for c in _choice_savers(at)] == [f"refresh-choice-{float(sent):g}"]


@pytest.mark.parametrize("sent", ["7", "abc", "nan", "", "3; path=/"])
def test_a_cookie_that_names_no_choice_is_ignored(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, sent: str
) -> None:
    """Anything but one of the choices starts at the configured default, as with no cookie."""
    browser_sends(monkeypatch, {CHOICE_COOKIE: sent})
    at = app.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="refresh-seconds").value == 3.0


def test_a_new_choice_is_handed_to_the_cookie(app: AppTest) -> None:
    """Choosing 30 s mounts the cookie's component anew, with 30; choosing the default again
    does the same with 3 (so the next page does not start at 30)."""
    at = app.run()
    assert [c.key for c in _choice_savers(at)] == ["refresh-choice-3"]
    at.sidebar.selectbox(key="refresh-seconds").set_value(30.0).run()
    assert [c.key for c in _choice_savers(at)] == ["refresh-choice-30"]
    at.sidebar.selectbox(key="refresh-seconds").set_value(3.0).run()
    assert [c.key for c in _choice_savers(at)] == ["refresh-choice-3"]
