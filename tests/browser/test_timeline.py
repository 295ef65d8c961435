"""The release page's timeline in Chromium: the chart is drawn from bundled Vega (no request
leaves loopback), and what it draws is the API's timeline of the same release."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from relmgr.api import create_app
from relmgr.auth.users import add_user, load_users, session_epoch
from relmgr.settings import Settings
from tests.api.conftest import SECRET, claims_for, http_client, sign
from tests.browser.conftest import Seeded
from tests.browser.stack import Dashboard

pytestmark = pytest.mark.browser

CHART = "[data-testid='stVegaLiteChart']"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def api_timeline(stack: Dashboard, release_id: str, tmp_path: Path) -> dict[str, Any]:
    """The API's timeline of the release, from an API on the stack's Temporal (own event loop)."""
    settings = Settings(  # type: ignore[call-arg]
        jwt_secret=SECRET,
        users_file=tmp_path / "users.yaml",
        temporal_address=stack.temporal.address,
        temporal_rpc_timeout=2.0,
    )
    # The token carries the user's session epoch, as one the API issued would.
    claims = claims_for("api", lifetime=600)
    claims["ep"] = session_epoch(load_users(settings.users_file).users["api"])
    headers = {"Authorization": f"Bearer {sign(claims)}"}

    async def fetch() -> dict[str, Any]:
        app = create_app(settings)
        async with app.router.lifespan_context(app), http_client(app) as api:
            for _ in range(100):
                response = await api.get(f"/api/releases/{release_id}/timeline", headers=headers)
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                await asyncio.sleep(0.1)
        raise AssertionError(f"no timeline for {release_id}: {response.status_code}")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result(timeout=60)


def bar_labels(page: Page) -> list[str]:
    """The aria labels of the chart's bars (SVG marks carry their data)."""
    marks = page.locator(f"{CHART} svg [aria-roledescription='bar']")
    expect(marks.first).to_be_attached()
    return [
        label or ""
        for label in marks.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    ]


def test_the_chart_draws_the_api_timeline_and_fetches_nothing_outside(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded, tmp_path: Path
) -> None:
    """A finished release: one bar per wave with the API's entities and states, the header's
    finish time is the API's; the cluster view has the API's clusters; no outside request."""
    add_user(
        tmp_path / "users.yaml",
        username="api",
        email="api@example.com",
        name="API",
        password="api-password-1",
    )
    timeline = api_timeline(stack, seeded.done, tmp_path)
    page = signed_in_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{stack.url}/release?release={seeded.done}")
    finished = timeline["release"]["finished_at"]
    clock = re.search(r"T(\d\d:\d\d)", finished)
    assert clock is not None
    expect(page.get_by_text(f"wave 2 of 2 · 100 % · finished {clock.group(1)}")).to_be_visible()
    labels = bar_labels(page)
    assert len(labels) == len(timeline["waves"])
    for label, wave in zip(labels, timeline["waves"], strict=True):
        assert f"entity: {wave['id']}" in label
        assert f"state: {wave['state']}" in label
        assert f"from: {wave['started_at'][11:19]}; to: {wave['finished_at'][11:19]}" in label
    page.get_by_role("combobox", name="Timeline of").click()
    page.get_by_role("option", name="Wave 1 clusters").click()
    marks = page.locator(f"{CHART} svg [aria-roledescription='bar']")
    first_cluster = timeline["waves"][0]["clusters"][0]["id"]
    expect(marks.first).to_have_attribute("aria-label", re.compile(re.escape(first_cluster)))
    expect(marks).to_have_count(len(timeline["waves"][0]["clusters"]))
    cluster_labels = bar_labels(page)
    for label, cluster in zip(cluster_labels, timeline["waves"][0]["clusters"], strict=True):
        assert f"entity: {cluster['id']}" in label
        assert f"from: {cluster['started_at'][11:19]}" in label
    outside = [
        u
        for u in requests
        if urlparse(u).scheme in ("http", "https", "ws", "wss")
        and urlparse(u).hostname not in LOOPBACK
    ]
    assert outside == []
    assert any(urlparse(u).hostname in LOOPBACK for u in requests)


def test_the_chart_is_updated_in_place_by_the_refresh(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """A running release: across refreshes (its bar grows to 'now') the chart's SVG is the same
    element, redrawn in place, never removed and rebuilt (which would flicker)."""
    page = signed_in_page
    page.goto(f"{stack.url}/release?release={seeded.slow}")
    svg = page.locator(f"{CHART} svg").first
    expect(svg).to_be_attached()
    # The running wave's real span ends at 'now': its label changes with every refresh (1 s).
    running = page.locator(
        f"{CHART} svg [aria-roledescription='bar'][aria-label*='part: actual']"
    ).first
    # Marked once the page has settled (a first refresh has redrawn the chart): on a loaded
    # machine the page's first runs may still lay it out anew, which is loading, not refreshing.
    first = running.get_attribute("aria-label")
    expect(running).not_to_have_attribute("aria-label", first or "", timeout=10_000)
    svg.evaluate("el => { el.dataset.relmgrMark = 'first' }")
    before = running.get_attribute("aria-label")
    expect(running).not_to_have_attribute("aria-label", before or "", timeout=10_000)
    moved = running.get_attribute("aria-label")
    expect(running).not_to_have_attribute("aria-label", moved or "", timeout=10_000)
    assert page.locator(f"{CHART} svg[data-relmgr-mark='first']").count() == 1
