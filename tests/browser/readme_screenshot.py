"""Take the README's screenshot of a release page (`docs/img/release-page.png`).

    .venv/bin/python -m tests.browser.readme_screenshot [--out PATH]

It starts the same stack as the browser tests (a Temporal dev server of its own, a worker and
`streamlit run`, all stopped at the end), starts one release whose `ledger` app fails its first
attempt and waits to retry, signs in, opens wave 1 and one of its clusters, and saves a
1400x1200 screenshot once the page has settled (no change marks left).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from relmgr.messages import DeployOptions
from relmgr.models import BundlePlan, ClusterPlan, ReleasePlan, WavePlan
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
# A little taller than 900 px, so that the header and an open bundle's apps fit in one view.
VIEWPORT_HEIGHT = 1200


def _seed(temporal: TemporalStack) -> None:
    temporal.start_release(RELEASE, PLAN, OPTIONS)


def _open(page: Page, entity_id: str) -> None:
    page.locator(f".st-key-tree-{entity_id.replace('.', '_')}").locator("summary").first.click()


def take(out: Path) -> None:
    """Run the stack, arrange the release page, and save the screenshot to `out`."""
    wave = f"{RELEASE}.wave-1"
    cluster = f"{wave}.cluster-eu-west-1"
    with (
        tempfile.TemporaryDirectory(prefix="relmgr-screenshot-") as workdir,
        dashboard(Path(workdir), seed=_seed, ui_refresh_seconds=3.0, account=ACCOUNT) as stack,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 1400, "height": VIEWPORT_HEIGHT}, color_scheme="light"
            )
            context.set_default_timeout(30_000)
            expect.set_options(timeout=60_000)
            page = context.new_page()
            page.goto(f"{stack.url}/release?release={RELEASE}")
            page.get_by_role("textbox", name="Username").fill(ACCOUNT.username)
            page.get_by_role("textbox", name="Password").fill(ACCOUNT.password)
            page.get_by_role("button", name="Sign in").click()
            # Settled: both wave-1 clusters have deployed every app but the retrying ledger.
            expect(page.get_by_text("Needs attention (2)")).to_be_visible()
            expect(page.get_by_text(re.compile(r"waves 0/2 · apps 8/20"))).to_have_count(2)
            _open(page, wave)
            expect(page.locator(f".st-key-tree-{cluster.replace('.', '_')}")).to_be_visible()
            _open(page, cluster)
            expect(page.get_by_text("Bundle core")).to_be_visible()
            # No change marks left on the tree: the last state change is over ten seconds old.
            icons = page.get_by_test_id("stExpanderIcon")
            expect(icons.filter(has_text=re.compile(r"^\s*(bolt|update)\s*$"))).to_have_count(0)
            expect(page.get_by_test_id("stExpander").get_by_test_id("stDataFrame")).to_be_visible()
            page.mouse.move(0, 0)  # no hover toolbar over a table
            # Streamlit's top padding is empty; start the picture at the "All releases" link.
            page.get_by_test_id("stMain").evaluate("main => main.scrollBy(0, 80)")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=out)
        finally:
            browser.close()
    _shrink(out)


def _shrink(path: Path) -> None:
    """Quantise to a 256-colour palette if the PNG is over the size budget (UI colours are few)."""
    if path.stat().st_size <= MAX_BYTES:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: take the screenshot and print where it went and its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "release-page.png")
    args = parser.parse_args(argv)
    take(args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
