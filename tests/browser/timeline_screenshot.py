"""Take the README's screenshot of a release page's timeline (`docs/img/release-timeline.png`).

    .venv/bin/python -m tests.browser.timeline_screenshot [--out PATH]

It starts the same stack as the browser tests (its own Temporal dev server, a worker and
`streamlit run`, all stopped at the end), runs one release to the end so that there is history
of its shape, starts a second of the same shape, and once that one is in its third wave with an
estimate, signs in and saves a 1400x900 picture of its timeline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from relmgr.models import BundlePlan, ClusterPlan, ReleasePlan, WavePlan
from relmgr.temporal.messages import DeployOptions
from tests.browser.readme_screenshot import _shrink
from tests.browser.stack import ROOT, Account, TemporalStack, dashboard, launch_chromium

EARLIER = "rel-2026-11-checkout"
RELEASE = "rel-2026-12-checkout"
APPS = ("api-gateway", "checkout", "ledger")
REGIONS = (
    ("eu-west-1", "us-east-1"),
    ("eu-central-1", "us-west-2", "ap-south-1"),
    ("eu-north-1", "us-east-2", "ap-northeast-1"),
    ("sa-east-1", "ca-central-1"),
    ("af-south-1", "me-south-1"),
)
PLAN = ReleasePlan(
    waves=tuple(
        WavePlan(
            clusters=tuple(
                ClusterPlan(name=name, bundle=BundlePlan(name="core", apps=APPS)) for name in names
            )
        )
        for names in REGIONS
    )
)
OPTIONS = DeployOptions(min_seconds=6.0, max_seconds=12.0, parallelism=1)
ACCOUNT = Account(username="ops", name="Release Operator", password="readme-screenshot-1")


def _seed(temporal: TemporalStack) -> None:
    temporal.start_release(EARLIER, PLAN, OPTIONS)
    temporal.result(EARLIER, timeout=600)
    temporal.start_release(RELEASE, PLAN, OPTIONS)


def take(out: Path) -> None:
    """Run the stack, wait for the release's third wave, and save the screenshot to `out`."""
    with (
        tempfile.TemporaryDirectory(prefix="relmgr-screenshot-") as workdir,
        dashboard(Path(workdir), seed=_seed, ui_refresh_seconds=2.0, account=ACCOUNT) as stack,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 1400, "height": 900}, color_scheme="light"
            )
            context.set_default_timeout(30_000)
            expect.set_options(timeout=400_000)
            page = context.new_page()
            page.goto(f"{stack.url}/release?release={RELEASE}")
            page.get_by_role("textbox", name="Username").fill(ACCOUNT.username)
            page.get_by_role("textbox", name="Password").fill(ACCOUNT.password)
            page.get_by_role("button", name="Sign in").click()
            header = page.get_by_text("wave 3 of 5 · ", exact=False)
            expect(header.filter(has_text="ETA")).to_be_visible()
            page.wait_for_timeout(8_000)  # some seconds into the wave: its bar has length
            expect(header.filter(has_text="ETA")).to_be_visible()
            page.mouse.move(0, 0)
            page.get_by_test_id("stMain").evaluate("main => main.scrollBy(0, 80)")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=out)
        finally:
            browser.close()
    _shrink(out)


def main(argv: list[str] | None = None) -> int:
    """Entry point: take the screenshot and print where it went and its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "release-timeline.png")
    args = parser.parse_args(argv)
    take(args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
