"""Links and the address bar in a real Chromium: every move names its entity in the URL, Back and
Forward retrace it, a list row's release and Back keep the list's filter and sort, the release
picker, malformed deep links, and the layout at 1400 px and 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Seeded, expect_page_title
from tests.browser.stack import Dashboard
from tests.browser.test_dashboard import MARKER_PX, ROW_PX, release_links, table_column, tree_node

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _app_id(seeded: Seeded, app: str = "a1") -> str:
    return f"{seeded.failed}.wave-1.cluster-c1.bundle-core.app-{app}"


def test_a_breadcrumb_opens_the_cluster_at_its_url_and_back_returns_to_the_app(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Breadcrumb -> the address bar is the cluster's; Back -> the app again; Forward -> the
    cluster again (st.page_link to the same page left the URL on the app)."""
    page = signed_in_page
    app = _app_id(seeded)
    cluster = f"{seeded.failed}.wave-1.cluster-c1"
    page.goto(f"{stack.url}/entity?id={app}")
    expect_page_title(page, "App a1")
    page.get_by_role("link", name="Cluster c1", exact=True).click()
    expect(page).to_have_url(f"{stack.url}/entity?id={cluster}")
    expect_page_title(page, "Cluster c1")
    page.go_back()
    expect(page).to_have_url(f"{stack.url}/entity?id={app}")
    expect_page_title(page, "App a1")
    page.go_forward()
    expect(page).to_have_url(f"{stack.url}/entity?id={cluster}")
    expect_page_title(page, "Cluster c1")


def test_a_list_row_opens_its_release_and_back_keeps_the_lists_filter_and_sort(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Select a row of a searched, sorted list -> the release's URL; Back -> the list's URL with
    the same search and sort, and the rows in that order."""
    page = signed_in_page
    list_url = f"{stack.url}/?q={seeded.token}&sort=Release+ID&order=Ascending"
    page.goto(list_url)
    expected = release_links([seeded.done, seeded.failed, seeded.slow])
    expect(table_column(page, 1)).to_have_text(expected)
    grid = page.get_by_test_id("stDataFrame").first
    grid.click(position={"x": MARKER_PX / 2, "y": ROW_PX * 2 + ROW_PX / 2})  # row 2's checkbox
    expect(page).to_have_url(f"{stack.url}/release?release={seeded.failed}")
    expect_page_title(page, f"Release {seeded.failed}")
    page.go_back()
    expect(page).to_have_url(list_url)
    expect_page_title(page, "Releases")
    expect(page.get_by_role("textbox", name="Search by ID")).to_have_value(seeded.token)
    expect(table_column(page, 1)).to_have_text(expected)
    # The page came back as it was left, not re-sent to the release by an old selection.
    expect(page).to_have_url(list_url)


def test_tree_nodes_and_the_attention_list_are_links_to_their_own_urls(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """An opened wave offers a plain link to its page; the failed app in Needs attention is a
    link to the app's page; both open in this tab at their own URL."""
    page = signed_in_page
    wave = f"{seeded.failed}.wave-1"
    page.goto(f"{stack.url}/release?release={seeded.failed}")
    expect_page_title(page, f"Release {seeded.failed}")
    attention = page.locator(".relmgr-attention")
    expect(attention.get_by_role("link", name="App a1", exact=True)).to_have_attribute(
        "href", f"entity?id={_app_id(seeded)}"
    )
    tree_node(page, wave).locator("summary").first.click()
    link = tree_node(page, wave).get_by_role("link", name="Open wave 1", exact=True)
    expect(link).to_have_attribute("href", f"entity?id={wave}")
    link.click()
    expect(page).to_have_url(f"{stack.url}/entity?id={wave}")
    expect_page_title(page, "Wave 1")
    page.go_back()
    expect(page).to_have_url(f"{stack.url}/release?release={seeded.failed}")
    page.locator(".relmgr-attention").get_by_role("link", name="App a1", exact=True).click()
    expect(page).to_have_url(f"{stack.url}/entity?id={_app_id(seeded)}")
    expect_page_title(page, "App a1")


def test_the_release_page_without_an_id_offers_a_searchable_picker(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Typing part of a name filters the picker; choosing puts the release into the URL."""
    page = signed_in_page
    page.goto(f"{stack.url}/release")
    expect_page_title(page, "Release")
    # Once the page's run is over: a run still drawing it re-renders the picker under the
    # typing and the click (seen on a loaded machine: another option got the click).
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Release")
    picker.click()
    page.keyboard.type(f"{seeded.token}-fail")
    page.get_by_role("option", name=re.compile(rf"^{seeded.failed} · failed$")).click()
    expect(page).to_have_url(f"{stack.url}/release?release={seeded.failed}")
    expect_page_title(page, f"Release {seeded.failed}")


def test_a_malformed_deep_link_says_what_is_wrong_and_offers_the_picker(
    signed_in_page: Page, stack: Dashboard
) -> None:
    """`/entity?id=rel-x.wave-x`: the expected format, and the picker, no traceback."""
    page = signed_in_page
    page.goto(f"{stack.url}/entity?id=rel-x.wave-x")
    expect_page_title(page, "Entity")
    expect(
        page.get_by_text(re.compile(r"expected wave: <release-id>\.wave-<1-99>"))
    ).to_be_visible()
    expect(page.get_by_test_id("stSelectbox").filter(has_text="Release")).to_be_visible()
