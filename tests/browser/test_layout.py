"""The layout in a real Chromium: at 1400 px the list's ID, state, times are in view without
scrolling sideways; at 390 px the sidebar starts collapsed and the table starts on the first
screen; the change mark column of an app table is in view at 1400 px."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Seeded, expect_page_title
from tests.browser.stack import Dashboard
from tests.browser.test_dashboard import release_links, table_column, tree_node

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The accessible table holds the raw time (`2026-12-07 00:15:32+00:00`); the canvas shows it
# as `YYYY-MM-DD HH:mm:ss`.
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def test_at_1400_px_the_lists_id_state_and_times_need_no_sideways_scroll(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """The grid draws (and its accessible table holds) only the columns in view: Release,
    State, Complete, Last changed and Started are among them, times in full."""
    page = signed_in_page
    page.goto(f"{stack.url}/?q={seeded.token}&sort=Release+ID&order=Ascending")
    expect(table_column(page, 1)).to_have_text(
        release_links([seeded.done, seeded.failed, seeded.slow])
    )
    expect(table_column(page, 2)).to_have_text(["SUCCEEDED", "FAILED", "IN_PROGRESS"])
    # The accessible table holds the cells the grid draws, the columns in view only.
    for column in (4, 5):  # Last changed, Started
        expect(table_column(page, column)).to_have_text([TIME, TIME, TIME])


def test_at_1400_px_an_app_tables_change_mark_column_is_in_view(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Right after the pinned link column comes the change mark, so a highlight is seen."""
    page = signed_in_page
    bundle = f"{seeded.failed}.wave-1.cluster-c1.bundle-core"
    page.goto(f"{stack.url}/release?release={seeded.failed}")
    expect_page_title(page, f"Release {seeded.failed}")
    for node in (f"{seeded.failed}.wave-1", f"{seeded.failed}.wave-1.cluster-c1"):
        tree_node(page, node).locator("summary").first.click()
    table = tree_node(page, bundle).get_by_test_id("stDataFrame")
    expect(table_column(page, 1, table)).to_have_text(
        [f"entity?id={bundle}.app-a1", f"entity?id={bundle}.app-a2"]
    )
    expect(table_column(page, 2, table)).to_have_text(["", ""])  # Changed: nothing just now
    expect(table_column(page, 3, table)).to_have_text(["FAILED", "SUCCEEDED"])


def test_at_390_px_the_sidebar_is_collapsed_and_the_table_is_on_the_first_screen(
    open_page: Callable[..., Page], signed_in_state: Any, stack: Dashboard, seeded: Seeded
) -> None:
    """A phone: the sidebar does not cover the page, and the list's table starts within the
    first screen (controls two and tiles three to a row)."""
    page = open_page(label="phone", storage_state=signed_in_state)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{stack.url}/?q={seeded.token}")
    expect_page_title(page, "Releases")
    grid = page.get_by_test_id("stDataFrame").first
    expect(grid).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
    box = grid.bounding_box()
    assert box is not None
    assert box["y"] < 844, f"the table starts at {box['y']:.0f} px, below the first screen"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"
