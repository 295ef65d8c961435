"""Streamlit's folder mode (a `pages/` folder beside the entry point) never runs a page outside
the frame: a process's first run is started over inside `streamlit_app.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from relmgr.testing.fake_reader import FakeReader
from relmgr.ui import frame
from tests.ui.conftest import APP, NAME, sign_in
from tests.ui.test_login import only_the_login_form


@pytest.fixture
def folder_mode_each_run(fake: FakeReader) -> Iterator[None]:
    """AppTest forgets the mode before every run, so each run here starts like a new process."""
    assert (Path(APP).parent / "pages").is_dir()
    yield
    PagesManager.uses_pages_directory = None


def deep_link(at: AppTest) -> AppTest:
    """Run once, then open the release page by its link, as a fresh process would see it."""
    at.run()
    at.switch_page("pages/release.py")
    at.query_params["release"] = "rel-demo"
    return at.run()


def test_a_deep_link_in_folder_mode_shows_the_sign_in_form(
    folder_mode_each_run: None, fake: FakeReader
) -> None:
    """Not the page's own "please sign in" note (it ran directly) but the frame's form shows."""
    at = deep_link(AppTest.from_file(str(APP), default_timeout=30))
    only_the_login_form(at)
    assert len(at.info) == 0
    assert fake.calls == []
    assert not frame.in_folder_mode()


def test_a_deep_link_in_folder_mode_opens_the_page_inside_the_frame(
    folder_mode_each_run: None, fake: FakeReader
) -> None:
    """Signed in, the release opens with the frame's sidebar (account box and refresh control)."""
    at = deep_link(sign_in(AppTest.from_file(str(APP), default_timeout=30)))
    assert not at.exception
    assert [t.value for t in at.title] == ["Release rel-demo"]
    assert any(NAME in m.value for m in at.sidebar.markdown)
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    assert fake.calls
