"""The history page in Chromium: the seeded releases in its chart, table and CSV."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Seeded, expect_page_title
from tests.browser.stack import Dashboard

pytestmark = pytest.mark.browser


def test_history_shows_and_downloads_the_releases(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Today's range holds the three seeded releases: one point each for the two finished ones,
    and a CSV with all three, their outcomes, the finished ones' durations and their shapes
    (waves x clusters x apps: clusters from the plan memo of a closed release's row)."""
    page = signed_in_page
    page.goto(f"{stack.url}/history")
    expect_page_title(page, "History")
    chart = page.locator("[data-testid='stVegaLiteChart'] svg")
    for release_id in (seeded.done, seeded.failed):
        expect(chart.locator(f"[aria-label*='release: {release_id};']")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    path = download.value.path()
    with path.open(encoding="utf-8") as file:
        rows = {row["id"]: row for row in csv.DictReader(file)}
    assert rows[seeded.done]["state"] == "SUCCEEDED"
    assert rows[seeded.failed]["state"] == "FAILED"
    assert rows[seeded.slow]["state"] == "IN_PROGRESS"
    assert float(rows[seeded.done]["duration_seconds"]) > 0
    assert rows[seeded.slow]["duration_seconds"] == ""
    assert (rows[seeded.done]["waves"], rows[seeded.done]["clusters"]) == ("2", "4")
    assert rows[seeded.done]["shape"] == "2 waves x 4 clusters x 8 apps"
