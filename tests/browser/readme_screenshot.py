"""Take the dashboard's screenshots: every page in light and dark, at 1400 and 390 px wide.

    .venv/bin/python -m tests.browser.readme_screenshot [--out-dir DIR]

It starts the same stack as the browser tests (a Temporal dev server of its own, a worker and
`streamlit run`, all stopped at the end), starts a release whose `ledger` app fails its first
attempt and waits to retry, one that succeeds and one that fails, signs in once, and saves
`docs/img/{releases,release,entity}-{light,dark}-{1400,390}.png` (the release page with wave 1
and one of its clusters open) once each page has settled (no change marks left), plus the
README's `docs/img/release-page.png` (light, 1400 px, a little taller).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from relmgr.models import BundlePlan, ClusterPlan, ReleasePlan, WavePlan
from relmgr.temporal.messages import DeployOptions
from tests.browser.stack import ROOT, Account, TemporalStack, dashboard, launch_chromium

RELEASE = "rel-2026-11-payments"
APPS = ("api-gateway", "checkout", "ledger", "payments-api", "notifications")
PLAN = ReleasePlan(
    waves=tuple(
        WavePlan(
            clusters=tuple(
                ClusterPlan(name=name, bundle=BundlePlan(name="core", apps=APPS))
                for name in cluster_names
            )
        )
        for cluster_names in (("eu-west-1", "us-east-1"), ("ap-south-1", "eu-central-1"))
    )
)
# `ledger` fails its first attempt everywhere and then waits ten minutes before its second:
# wave 1 shows succeeded, retrying and (briefly) running apps while waves 2 is still pending.
OPTIONS = DeployOptions(
    min_seconds=1.0,
    max_seconds=3.0,
    fail_apps=("ledger",),
    max_attempts=3,
    retry_seconds=600.0,
    parallelism=2,
)
ACCOUNT = Account(username="ops", name="Release Operator", password="readme-screenshot-1")
MAX_BYTES = 300_000
# Taller than 900 px, so that the header, needs attention and an open bundle's apps fit in one view.
VIEWPORT_HEIGHT = 1500


DONE = "rel-2026-11-search"
FAILED = "rel-2026-11-checkout"
WIDTHS: dict[int, int] = {1400: 900, 390: 844}  # width -> height of the viewport
SCHEMES = ("light", "dark")


def _seed(temporal: TemporalStack) -> None:
    temporal.start_release(RELEASE, PLAN, OPTIONS)
    small = ReleasePlan(waves=(WavePlan(clusters=(ClusterPlan(name="eu-west-1", bundle=BUNDLE),)),))
    fast = DeployOptions(min_seconds=0.1, max_seconds=0.3)
    temporal.start_release(DONE, small, fast)
    failing = DeployOptions(
        min_seconds=0.1, max_seconds=0.3, fail_apps=("checkout",), max_attempts=1
    )
    temporal.start_release(FAILED, small, failing)


BUNDLE = BundlePlan(name="core", apps=("checkout", "search", "ledger"))


def _open(page: Page, entity_id: str) -> None:
    page.locator(f".st-key-tree-{entity_id.replace('.', '_')}").locator("summary").first.click()


def _settled(page: Page) -> None:
    """Until no change mark is left on the page and no run is under way."""
    icons = page.get_by_test_id("stExpanderIcon")
    expect(icons.filter(has_text=re.compile(r"^\s*(bolt|update)\s*$"))).to_have_count(0)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    # No element still drawn as a placeholder (at 390 px one was caught mid-load).
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)
    page.mouse.move(0, 0)  # no hover toolbar over a table


def _release_page(page: Page, url: str, *, open_tree: bool) -> None:
    wave = f"{RELEASE}.wave-1"
    cluster = f"{wave}.cluster-eu-west-1"
    page.goto(f"{url}/release?release={RELEASE}")
    # Settled: both wave-1 clusters have deployed every app but the retrying ledger.
    expect(page.get_by_text("Needs attention (2)")).to_be_visible()
    expect(page.get_by_text(re.compile(r"waves 0/2 · apps 8/20"))).to_have_count(2)
    expect(page.locator("[data-testid='stVegaLiteChart'] svg").first).to_be_visible()
    if open_tree:
        _open(page, wave)
        expect(page.locator(f".st-key-tree-{cluster.replace('.', '_')}")).to_be_visible()
        _open(page, cluster)
        expect(page.get_by_text("Bundle core", exact=True)).to_be_visible()
        expect(page.get_by_test_id("stExpander").get_by_test_id("stDataFrame")).to_be_visible()
    _settled(page)


def _sign_in(browser: Browser, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill(ACCOUNT.username)
        page.get_by_role("textbox", name="Password").fill(ACCOUNT.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as")).to_be_visible()
        page.wait_for_function("document.cookie.includes('relmgr_session=')")
        return context.storage_state()
    finally:
        context.close()


def take(out_dir: Path) -> list[Path]:
    """Run the stack, arrange each page, and save the screenshots into `out_dir`."""
    app = f"{RELEASE}.wave-1.cluster-eu-west-1.bundle-core.app-ledger"
    saved: list[Path] = []
    with (
        tempfile.TemporaryDirectory(prefix="relmgr-screenshot-") as workdir,
        dashboard(
            Path(workdir),
            seed=_seed,
            ui_refresh_seconds=3.0,
            account=ACCOUNT,
            # Shown as links only; nothing is served there during the screenshots.
            temporal_ui_url="http://127.0.0.1:8233",
        ) as stack,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        expect.set_options(timeout=60_000)
        try:
            state = _sign_in(browser, stack.url)
            out_dir.mkdir(parents=True, exist_ok=True)
            for scheme in SCHEMES:
                for width, height in WIDTHS.items():
                    context = browser.new_context(
                        viewport={"width": width, "height": height},
                        color_scheme=scheme,  # type: ignore[arg-type]
                        storage_state=state,
                    )
                    context.set_default_timeout(30_000)
                    page = context.new_page()
                    suffix = f"{scheme}-{width}.png"
                    page.goto(f"{stack.url}/?sort=Release+ID&order=Ascending")
                    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
                    _settled(page)
                    page.screenshot(path=out_dir / f"releases-{suffix}")
                    _release_page(page, stack.url, open_tree=width > 400)
                    page.screenshot(path=out_dir / f"release-{suffix}")
                    page.goto(f"{stack.url}/entity?id={app}")
                    expect(page.get_by_role("heading", name="App ledger")).to_be_visible()
                    expect(page.get_by_text("Last error")).to_be_visible()
                    _settled(page)
                    page.screenshot(path=out_dir / f"entity-{suffix}")
                    saved += [out_dir / f"{name}-{suffix}" for name in ENTITY_PAGES]
                    if (scheme, width) == ("light", 1400):
                        page.set_viewport_size({"width": 1400, "height": VIEWPORT_HEIGHT})
                        _release_page(page, stack.url, open_tree=True)
                        readme = out_dir / "release-page.png"
                        page.screenshot(path=readme)
                        saved.append(readme)
                    context.close()
        finally:
            browser.close()
    for path in saved:
        _shrink(path)
    return saved


ENTITY_PAGES = ("releases", "release", "entity")


def _shrink(path: Path) -> None:
    """Quantise to a 256-colour palette if the PNG is over the size budget (UI colours are few)."""
    if path.stat().st_size <= MAX_BYTES:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: take the screenshots and print where each went and its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    for path in take(args.out_dir):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
