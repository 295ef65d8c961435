"""/docs in a real Chromium with no network: Swagger UI renders, and logging in through it works."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from relmgr.api import create_app
from relmgr.settings import Settings
from relmgr.testing.chromium import CHROMIUM, CHROMIUM_ARGS
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import SECRET, demo_trees
from tests.api.served import serve_in_thread, write_users
from tests.api.test_openapi import OPERATIONS

pytestmark = pytest.mark.browser

PASSWORD = "docs-password-1"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}")
def test_docs_render_offline_and_authorize(tmp_path: Path) -> None:
    """Every operation shows, no request leaves this server, no CSP or script error, login works."""
    from playwright.sync_api import sync_playwright

    settings = Settings(jwt_secret=SECRET, users_file=write_users(tmp_path / "u.yaml", PASSWORD))
    app = create_app(settings, reader=FakeReader(demo_trees()))
    with serve_in_thread(app) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page()
            hosts: set[str] = set()
            problems: list[str] = []
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.goto(f"{base_url}/docs")
            page.wait_for_selector(".opblock", timeout=15_000)
            # Every operation of the OpenAPI document (tests/api/test_openapi.py lists them)
            assert page.locator(".opblock").count() == len(OPERATIONS) == 16
            assert page.locator(".info .title").first.inner_text().startswith("relmgr API")

            page.click("button.authorize")
            page.fill("#oauth_username", "admin")
            page.fill("#oauth_password", PASSWORD)
            with page.expect_response(lambda r: r.url.endswith("/api/auth/login")) as login:
                page.click(".auth-btn-wrapper button.authorize")
            assert login.value.status == 200
            page.wait_for_selector("text=Logout")
        finally:
            browser.close()
    assert hosts == {urlsplit(base_url).netloc}
    assert problems == []
