"""Fixtures of the browser tests: one real stack for the package (Temporal dev server, worker,
seeded releases, `streamlit run`), one Chromium, and a browser context of its own for each page
(taken from a pool, emptied of cookies and storage: see `contexts`).

Every page a test opens leaves a log of what its frontend reported in `test-artifacts/browser/`,
and a screenshot there when the test failed.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from relmgr.temporal.messages import DeployOptions
from relmgr.testing.factories import make_plan
from tests.browser.stack import (
    CHROMIUM,
    COOKIE_NAME,
    ROOT,
    Dashboard,
    TemporalStack,
    dashboard,
    launch_chromium,
)

ARTIFACTS = ROOT / "test-artifacts" / "browser"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
# Generous bounds for things that normally take a second or two; a slow CI box must not flake.
LOAD_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Seeded:
    """The releases started for the browser tests; all their names share `token`, which no other
    release in those tests has, so searching for it lists exactly these three."""

    token: str
    done: str  # 2 waves x 2 clusters x 1 bundle x 2 apps, all SUCCEEDED
    slow: str  # the same shape, apps taking an hour: IN_PROGRESS for the whole run
    failed: str  # 1 x 1 x 1 x 2, app a1 fails: FAILED with a1 FAILED and a2 SUCCEEDED

    @property
    def ids(self) -> tuple[str, str, str]:
        """The three release IDs."""
        return (self.done, self.slow, self.failed)


FAST = DeployOptions(min_seconds=0.05, max_seconds=0.1, parallelism=4)


def seed_releases(temporal: TemporalStack, seeded: Seeded) -> None:
    """Start the three releases and wait until the two that finish have finished."""
    temporal.start_release(seeded.done, make_plan(2, 2, 2), FAST)
    temporal.start_release(
        seeded.slow, make_plan(2, 2, 2), DeployOptions(min_seconds=3600, max_seconds=3600)
    )
    temporal.start_release(
        seeded.failed,
        make_plan(1, 1, 2),
        DeployOptions(min_seconds=0.05, max_seconds=0.1, fail_apps=("a1",), max_attempts=1),
    )
    temporal.result(seeded.done, timeout=90)
    # A failed release's workflow fails; its outcome is in visibility, which is what is read.
    temporal.finished_at(seeded.failed).result(timeout=90)


@pytest.fixture(scope="package")
def seeded() -> Seeded:
    """The names of the seeded releases."""
    token = f"bt{secrets.token_hex(3)}"
    return Seeded(
        token=token,
        done=f"rel-{token}-done",
        slow=f"rel-{token}-slow",
        failed=f"rel-{token}-failed",
    )


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, seeded: Seeded) -> Iterator[Dashboard]:
    """The whole dashboard stack with the seeded releases, for the browser tests."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}")
    workdir = tmp_path_factory.mktemp("browser-stack")
    with dashboard(workdir, seed=lambda temporal: seed_releases(temporal, seeded)) as running:
        yield running


@pytest.fixture(scope="package")
def chromium(stack: Dashboard) -> Iterator[Browser]:
    """One headless Chromium for the browser tests (started after the stack, so a skip skips it)."""
    # Every wait in these tests is for a server round trip or a refresh, not for an animation.
    expect.set_options(timeout=LOAD_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
            expect.set_options(timeout=None)  # back to Playwright's default


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Marks a browser test whose setup or call failed (`report_setup`, `report_call`), for
    `open_page` to take its screenshots."""
    report: pytest.TestReport = yield
    if report.failed:
        setattr(item, f"report_{report.when}", report)
    return report


def _artifact_name(node_name: str, label: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name).strip("-")
    return f"{name}-{label}.png" if label else f"{name}.png"


@pytest.fixture(scope="package")
def contexts(chromium: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts free for the next test's pages, closed when the package ends.

    A used context keeps its HTTP cache and compiled scripts: a page opened in one loads the
    dashboard with less work (measured on the 2-core machine: ~1 s of Chromium CPU and 1.4 s
    against 1.2-2 s and 2.0-2.4 s in a new context, which also costs Streamlit ~0.3 s to serve
    its frontend's scripts again), so a test's pages take used contexts, with their cookies and
    storage cleared, before new ones.
    """
    free: list[BrowserContext] = []
    yield free
    for context in free:
        context.close()


def _context(chromium: Browser, free: list[BrowserContext], cookies: Any) -> BrowserContext:
    """A context with no cookies but `cookies` (a saved state's): a used one if there is one."""
    if free:
        context = free.pop()
        context.clear_cookies()
    else:
        context = chromium.new_context(
            viewport=VIEWPORT, accept_downloads=True, color_scheme="light"
        )
        context.set_default_timeout(LOAD_TIMEOUT_MS)
    if cookies:
        context.add_cookies(cookies)
    return context


def _hand_back(context: BrowserContext, page: Page, free: list[BrowserContext]) -> None:
    """Close `page` and keep its context for the next test, its storage emptied; a context whose
    page broke is closed instead."""
    try:
        if page.is_closed() or not page.url.startswith("http"):
            raise PlaywrightError("no page of the dashboard to empty the storage from")
        page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        page.close()
    except PlaywrightError:
        context.close()
        return
    free.append(context)


@pytest.fixture
def open_page(
    chromium: Browser, contexts: list[BrowserContext], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """Open a page in a browser context of its own (its own cookies: none, or those of
    `storage_state`, a saved browser state); `label` names its screenshot. The context may have
    served an earlier test's page (see `contexts`): only its cache is left of that.

    When the test ends, each page leaves a log of what its frontend reported, and a screenshot
    if the test failed; a JavaScript error on any page (Streamlit's frontend then shows a blank
    page) fails the test, even if everything it asserted had been seen before.
    """
    opened: list[tuple[str, BrowserContext, Page, list[str], list[str]]] = []

    def new(label: str = "", storage_state: Any = None) -> Page:
        cookies = storage_state["cookies"] if storage_state else None
        context = _context(chromium, contexts, cookies)
        page = context.new_page()
        events: list[str] = []
        errors: list[str] = []
        opened_at = time.monotonic()

        def log(event: str) -> None:
            events.append(f"{time.monotonic() - opened_at:7.2f} s  {event}")

        def on_error(error: Exception) -> None:
            errors.append(str(error))
            log(f"pageerror: {error}")

        page.on("pageerror", on_error)
        page.on("crash", lambda _: on_error(RuntimeError("the page crashed")))
        page.on(
            "console",
            lambda message: (
                log(f"console.{message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.on("framenavigated", lambda frame: log(f"navigated: {frame.url}"))
        page.on("requestfailed", lambda failed: log(f"request failed: {failed.url}"))
        opened.append((label, context, page, events, errors))
        return page

    yield new
    failed = any(getattr(request.node, f"report_{when}", None) for when in ("setup", "call"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for label, context, page, events, errors in opened:
        name = _artifact_name(request.node.name, label)
        try:
            (ARTIFACTS / name).with_suffix(".log").write_text("".join(f"{e}\n" for e in events))
            if (failed or errors) and not page.is_closed():
                page.screenshot(path=ARTIFACTS / name)
        finally:
            _hand_back(context, page, contexts)
        problems += [f"{name}: {error}" for error in errors]
    if problems:
        pytest.fail("the dashboard's frontend failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A fresh page, not signed in."""
    return open_page()


def sign_in(
    page: Page, stack: Dashboard, password: str | None = None, username: str | None = None
) -> None:
    """Fill in and submit the sign-in form on the current page, once the page has settled: as
    the stack's account, or `username` (with `password`)."""
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # streamlit-authenticator's cookie component reruns the script once its iframe has loaded; a
    # click that lands during that rerun is dropped. Wait for the iframe and for the run to end.
    page.wait_for_function(
        "[...document.querySelectorAll('iframe')].some(f => f.src.includes('CookieManager'))",
        timeout=LOAD_TIMEOUT_MS,
    )
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=LOAD_TIMEOUT_MS)
    page.get_by_role("textbox", name="Username").fill(username or stack.account.username)
    page.get_by_role("textbox", name="Password").fill(password or stack.account.password)
    page.get_by_role("button", name="Sign in").click()


def sign_in_until_signed_in(
    page: Page, stack: Dashboard, password: str | None = None, username: str | None = None
) -> None:
    """Sign in through the form until "Signed in as" shows: a click that lands during a rerun
    (the cookie component's, say) can be dropped on a loaded machine (the form then stays, as it
    was), and the tests that use this are about what follows the sign-in, not about that click.
    At most three tries; the tests of the form itself click once."""
    signed_in = page.get_by_text("Signed in as")
    for attempt in range(1, 4):
        sign_in(page, stack, password, username)
        try:
            expect(signed_in).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            if attempt == 3 or page.get_by_role("button", name="Sign in").count() == 0:
                # The form went: the sign-in took, only slowly; a last, longer wait.
                expect(signed_in).to_be_visible()
                return
            print(f"sign-in click {attempt} did not take; signing in again")


def choose(page: Page, select_label: str, option: str) -> None:
    """Pick `option` in the select box labelled `select_label`."""
    page.get_by_test_id("stSelectbox").filter(has_text=select_label).click()
    page.get_by_role("option", name=option, exact=True).click()


def log_out(page: Page) -> None:
    """Pause the page's auto-refresh, then click Log out until the sign-in form shows.

    The pause: a logout that lands while an auto-refresh run of the page's fragment is under way
    can leave a blank page on a loaded machine (Streamlit's frontend fails with "Bad delta path
    index"; a known limit, measured by `python -m tests.browser.repro_races --races logout`), and
    the tests that use this are about what the logout does, not about that race. The retries: a
    click that lands during a rerun can be dropped. At most three clicks."""
    choose(page, "Auto-refresh", "Paused")
    expect(page.get_by_text(re.compile(r"^Auto-refresh paused · "))).to_be_visible()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    button = page.locator(".st-key-sign-out").get_by_role("button", name="Log out")
    for attempt in range(1, 4):
        button.click()
        try:
            expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            if attempt == 3:
                raise
            print(f"logout click {attempt} did not take; clicking again")


def expect_page_title(page: Page, title: str) -> None:
    """The page's title (its one level-1 heading) reads `title`. While a run replaces the page,
    the outgoing title can linger for a moment beside the new one; this waits for one."""
    heading = page.get_by_role("heading", level=1, name=title, exact=True)
    expect(heading).to_have_count(1)
    expect(heading).to_be_visible()


def wait_for_cookie(page: Page) -> None:
    """Until the session cookie is in the browser (a component sets it just after sign-in)."""
    page.wait_for_function(
        f"document.cookie.split('; ').some(c => c.startsWith('{COOKIE_NAME}='))",
        timeout=LOAD_TIMEOUT_MS,
    )


@pytest.fixture(scope="package")
def signed_in_state(chromium: Browser, contexts: list[BrowserContext], stack: Dashboard) -> Any:
    """The browser state (the session cookie) of one real sign-in through the form."""
    context = _context(chromium, contexts, None)
    page = context.new_page()
    try:
        page.goto(stack.url, timeout=LOAD_TIMEOUT_MS)
        sign_in_until_signed_in(page, stack)
        wait_for_cookie(page)
        return context.storage_state()
    finally:
        _hand_back(context, page, contexts)


@pytest.fixture
def signed_in_page(open_page: Callable[..., Page], signed_in_state: Any) -> Page:
    """A fresh page whose browser carries the session cookie of a real sign-in."""
    return open_page(storage_state=signed_in_state)
