"""Auto-refresh: the interval control, pausing, the configured default, and no polling for a
hidden tab."""

from __future__ import annotations

from datetime import UTC

import pytest
from streamlit.testing.v1 import AppTest

from relmgr.settings import get_settings
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.refresh import PAUSED

RUN_EVERY = "relmgr-run-every"


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
