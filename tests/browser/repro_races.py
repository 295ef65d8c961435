"""Measure three races between the dashboard's auto-refresh and the user, in a real Chromium.

    .venv/bin/python -m tests.browser.repro_races [--refresh 1 3] [--runs 15]
        [--races downloads selection logout]

The first two were bugs until 2026-11-26 (session 2) and this script is how they were found and
how their fixes were checked; run it again after touching refresh, downloads, page switches or
the logout.

1. Download race: "Download CSV" used to be drawn inside the auto-refreshing fragment, and every
   refresh registered a new deferred download and dropped the previous one; a click carrying the
   previous one got nothing ("Deferred file ... not found" in the server log, 2 in ~40 clicks).
   The buttons now sit in the page body. Counted: clicks whose download never started in 5 s.
2. Page-switch race: selecting a row of the release list called `st.switch_page` from inside the
   fragment; a refresh of the list landing during the switch made Streamlit's frontend throw
   "Bad delta path index" and show a blank page (3-4 in 15 selections at a 1 s refresh). The
   switch was then made in a full run; since issue 12 a selected row sends the browser to the
   release's URL, leaving the page and its timers behind (`relmgr/ui/links.py`). Counted:
   selections after which the page reported a JavaScript error, and selections that did not
   open the release within 8 s.
3. Logout race (2026-12-07, session 5): Log out starts a full run while the list's fragment may be
   refreshing; once, in a test suite run on 3 workers of a 2-core machine, a late fragment delta
   hit the sign-in form's page and Streamlit's frontend threw "Bad delta path index" (a blank
   page; the session had ended server-side). Counted: logouts (each in a fresh browser signed in
   through the form) after which the page reported a JavaScript error, and logouts that did not
   show the sign-in form within 8 s. Measured: 0 of 14 at a 1 s refresh, idle and with one
   CPU-bound process beside it.

Each figure is measured against the same stack the browser tests use (its own Temporal dev
server, worker and `streamlit run`, all stopped at the end).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import Seeded, seed_releases, sign_in, wait_for_cookie
from tests.browser.stack import Dashboard, dashboard, launch_chromium

STEP_TIMEOUT_MS = 20_000
RACES = ("downloads", "selection", "logout")


def _list_page(page: Page, stack: Dashboard, seeded: Seeded) -> None:
    page.goto(f"{stack.url}/?q={seeded.token}&sort=Release+ID&order=Ascending")
    cells = page.get_by_test_id("stDataFrame").first.locator('[role="gridcell"][aria-colindex="1"]')
    expect(cells).to_have_count(3, timeout=STEP_TIMEOUT_MS)


def lost_downloads(page: Page, stack: Dashboard, seeded: Seeded, runs: int, refresh: float) -> int:
    """How many of `runs` clicks on the list's "Download CSV" produced no download."""
    _list_page(page, stack, seeded)
    lost = 0
    for run in range(runs):
        time.sleep(refresh * (run % 7) / 7)  # vary the phase against the refresh timer
        try:
            with page.expect_download(timeout=5_000) as download:
                page.locator(".st-key-releases-csv").get_by_role("button").click()
            download.value.path()
        except PlaywrightError:
            lost += 1
    return lost


def blank_pages(
    page: Page, stack: Dashboard, seeded: Seeded, runs: int, refresh: float
) -> tuple[int, int]:
    """Of `runs` row selections on the list: how many ended in a frontend error, and how many
    did not show the release page within 8 s."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    crashed = not_opened = 0
    for run in range(runs):
        errors.clear()
        _list_page(page, stack, seeded)
        time.sleep(refresh * (run % 7) / 7)
        page.get_by_test_id("stDataFrame").first.click(position={"x": 17, "y": 52})
        try:
            expect(page.get_by_text("100.0% of apps deployed (8 of 8)")).to_be_visible(
                timeout=8_000
            )
            expect(page.get_by_text("Hierarchy", exact=True)).to_be_visible(timeout=8_000)
            page.wait_for_timeout(refresh * 1_000 + 500)  # let late refreshes arrive
        except AssertionError:
            not_opened += 1
        crashed += bool(errors)
    return crashed, not_opened


def logout_failures(
    browser: Browser, stack: Dashboard, seeded: Seeded, runs: int, refresh: float
) -> tuple[int, int]:
    """Of `runs` logouts from the auto-refreshing list (each in a fresh browser, signed in
    through the form): how many ended in a frontend error, and how many did not show the
    sign-in form within 8 s."""
    crashed = no_form = 0
    for run in range(runs):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))  # noqa: B023
            page.goto(stack.url)
            sign_in(page, stack)
            wait_for_cookie(page)
            _list_page(page, stack, seeded)
            time.sleep(refresh * (run % 7) / 7)  # vary the phase against the refresh timer
            page.locator(".st-key-sign-out").get_by_role("button", name="Log out").click()
            try:
                expect(page.get_by_role("button", name="Sign in").first).to_be_visible(
                    timeout=8_000
                )
            except AssertionError:
                no_form += 1
            crashed += bool(errors)
        finally:
            context.close()
    return crashed, no_form


def _report(refresh: float, figure: str) -> None:
    print(f"refresh {refresh:g} s: {figure}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one line per refresh interval and race."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--races",
        nargs="+",
        choices=RACES,
        default=list(RACES),
        help="which races to measure (default: all)",
    )
    args = parser.parse_args(argv)
    token = f"race{int(time.time()) % 100_000}"
    seeded = Seeded(token, f"rel-{token}-done", f"rel-{token}-slow", f"rel-{token}-failed")
    for refresh in args.refresh:
        with (
            tempfile.TemporaryDirectory(prefix="relmgr-races-") as workdir,
            dashboard(
                Path(workdir),
                seed=lambda temporal: seed_releases(temporal, seeded),
                ui_refresh_seconds=refresh,
            ) as stack,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(stack.url)
                sign_in(page, stack)
                wait_for_cookie(page)
                runs = args.runs
                if "downloads" in args.races:
                    lost = lost_downloads(page, stack, seeded, runs, refresh)
                    _report(refresh, f"{lost}/{runs} download clicks lost")
                if "selection" in args.races:
                    blank, missed = blank_pages(page, stack, seeded, runs, refresh)
                    _report(
                        refresh,
                        f"of {runs} row selections {blank} blanked the page, {missed} did not "
                        "show the release within 8 s",
                    )
                if "logout" in args.races:
                    crashed, no_form = logout_failures(browser, stack, seeded, runs, refresh)
                    _report(
                        refresh,
                        f"of {runs} logouts {crashed} crashed the page, {no_form} did not show "
                        "the sign-in form within 8 s",
                    )
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
