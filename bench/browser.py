"""The dashboard in a real browser: render time, one refresh cycle, freshness, and many sessions.

Streamlit runs as `python -m streamlit run streamlit_app.py` on a free port, configured by
`RELMGR_*` variables (`bench.servers.DashboardServer`); Debian's Chromium is driven by Playwright
(`executable_path=/usr/bin/chromium`; Playwright's own browsers are never installed). The user
signs in through the login form, then:

- render: until the 1,206-entity release page is drawn: the app's script state is back to
  `notRunning`, the header's "(N of M)" progress text is there and the release and every wave
  are drawn as expanders (the tree is lazy: closed branches draw nothing). Opened from a link
  (a full page load: Streamlit's frontend boots, connects, runs the script), the first time with
  the Streamlit process's reader cold; and from inside the app (the release page's picker).
- refresh cycle: a MutationObserver on the script state times each auto-refresh, from the fragment
  rerun starting to the page being drawn again, and the time between refreshes.
- freshness: from a state-change signal to the page's "(N of M)" text showing the new count.
- sessions: `sessions` more dashboard sessions (`bench.sessions`: Streamlit's websocket protocol,
  half on the large release, half on the release list), each refreshing as the browser would;
  the Streamlit process's memory and CPU with them open, and the real page's refresh cycle then.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client

from bench.population import Churn, Population
from bench.procs import CpuMeter, children, mib, open_fds, rss_bytes, tree_rss_bytes
from bench.servers import ROOT, Credentials, DashboardServer
from bench.sessions import ProtocolSession
from bench.stats import load_average, percentile
from relmgr.errors import RelmgrError
from relmgr.models import EntityKind, EntityState, ReleaseHierarchy
from relmgr.reader.temporal_reader import TemporalReader
from relmgr.settings import Settings
from relmgr.testing.chromium import CHROMIUM, CHROMIUM_ARGS
from relmgr.testing.contract_stub import ContractStubWorkflow, StubChange

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
_PROGRESS = re.compile(r"\((\d+) of (\d+)\)")
_ATTEMPT_BASE = 5000

# The release page is drawn: script finished, the progress text and the release + waves expanders.
_RENDERED_JS = """
([waves]) => {
  const app = document.querySelector('[data-test-script-state]');
  return app !== null
    && app.getAttribute('data-test-script-state') === 'notRunning'
    && /\\(\\d+ of \\d+\\)/.test(document.body.innerText)
    && document.querySelectorAll('[data-testid="stExpander"]').length >= waves + 1;
}
"""
_IDLE_JS = """
() => document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state')
  === 'notRunning'
"""
_OBSERVE_JS = """
() => {
  window.__relmgrRuns = [];
  const app = document.querySelector('[data-test-script-state]');
  new MutationObserver(() => window.__relmgrRuns.push(
    [performance.now(), app.getAttribute('data-test-script-state')]
  )).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}
"""
_SHOWS_COUNT_JS = "([text]) => document.body.innerText.includes(text)"


@dataclass(frozen=True)
class BrowserConfig:
    """How much to measure."""

    sessions: int
    freshness_samples: int
    quick: bool

    @property
    def views(self) -> int:
        """Warm views of the release page after the first."""
        return 2 if self.quick else 5

    @property
    def cycles_seconds(self) -> float:
        """How long to watch auto-refreshes."""
        return 4.0 if self.quick else 16.0

    @property
    def sessions_seconds(self) -> float:
        """How long to keep the sessions open and refreshing."""
        return 4.0 if self.quick else 30.0


def unavailable() -> str | None:
    """Why the browser figures cannot be taken here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed"
    if not (ROOT / "streamlit_app.py").exists():
        return "streamlit_app.py is missing"
    try:
        import playwright.async_api  # noqa: F401 - only checking that it is importable
    except ImportError:
        return "playwright (Python) is not installed"
    return None


def _cycles(marks: list[list[Any]]) -> tuple[list[float], list[float]]:
    """(run durations, gaps between run starts) in seconds from the observer's marks."""
    durations: list[float] = []
    starts: list[float] = []
    running_since: float | None = None
    for at, state in marks:
        if state == "running" and running_since is None:
            running_since = at
            starts.append(at)
        elif state == "notRunning" and running_since is not None:
            durations.append((at - running_since) / 1000)
            running_since = None
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(starts)]
    return durations, gaps


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "median_s": round(statistics.median(values), 3) if values else None,
        "p95_s": round(percentile(values, 0.95), 3) if values else None,
        "max_s": round(max(values), 3) if values else None,
    }


async def measure(
    *,
    config: BrowserConfig,
    workdir: Path,
    temporal: Client,
    temporal_address: str,
    population: Population,
    credentials: Credentials,
    progress: Any,
) -> dict[str, Any]:
    """Every browser figure, or {"skipped": why}."""
    reason = unavailable()
    if reason is not None:
        progress(f"browser figures skipped: {reason}")
        return {"skipped": reason}
    from playwright.async_api import async_playwright

    dashboard = DashboardServer(workdir, temporal_address, credentials)
    await dashboard.start()
    results: dict[str, Any] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
            )
            try:
                await asyncio.sleep(1.0)
                results["streamlit_idle_rss_mib"] = mib(rss_bytes(dashboard.pid))
                context = await browser.new_context(viewport=VIEWPORT)
                page = await context.new_page()
                results["sign_in_s"] = await sign_in(page, dashboard, credentials)
                progress(f"browser: signed in in {results['sign_in_s']} s")
                results["render"] = await _render(
                    page, dashboard.url, population.big_release_id, config, population.shape.waves
                )
                progress(f"browser render: {results['render']}")
                await page.goto(f"{dashboard.url}/release?release={population.big_release_id}")
                await page.wait_for_function(
                    _RENDERED_JS, arg=[population.shape.waves], polling=20, timeout=60_000
                )
                await page.evaluate(_OBSERVE_JS)
                meter = CpuMeter(dashboard.pid)
                meter.start()
                await asyncio.sleep(config.cycles_seconds)
                streamlit_cpu = meter.cores() * config.cycles_seconds
                durations, gaps = _cycles(await page.evaluate("window.__relmgrRuns"))
                results["refresh"] = {
                    **_summary(durations),
                    "cycles": len(durations),
                    # Streamlit's CPU per refresh of the release page (with its idle upkeep):
                    # what sets how many sessions one core can keep refreshing.
                    "streamlit_cpu_ms_per_refresh": round(
                        streamlit_cpu / max(1, len(durations)) * 1000, 1
                    ),
                    "median_gap_s": round(statistics.median(gaps), 3) if gaps else None,
                    "load_average": load_average(),
                }
                progress(f"browser refresh cycle: {results['refresh']}")
                results["freshness"] = await _freshness(
                    page, temporal, population, config.freshness_samples
                )
                progress(f"browser freshness: {results['freshness']}")
                cookies = await context.storage_state()
                cookie_header = "; ".join(f"{c['name']}={c['value']}" for c in cookies["cookies"])
                results["sessions"] = await _sessions(
                    page, dashboard, cookie_header, temporal, population, config, progress
                )
                results["sessions"]["chromium_rss_mib"] = _chromium_rss()
                if not config.quick:
                    results["sessions_with_post_script_gc"] = await _guarded(
                        dashboard,
                        workdir,
                        temporal_address,
                        credentials,
                        cookie_header,
                        temporal,
                        population,
                        config,
                        progress,
                    )
                results["note"] = (
                    "Render and refresh are measured in one Chromium tab; the sessions are "
                    "Streamlit websocket sessions (bench.sessions) beside it."
                )
            finally:
                await browser.close()
    finally:
        dashboard.stop()
    return results


async def release_page_render(
    dashboard: DashboardServer,
    credentials: Credentials,
    release_id: str,
    *,
    waves: int,
    quick: bool,
) -> dict[str, Any]:
    """Only the release page's render times (`_render`) in one Chromium tab, signed in through
    the form; {"skipped": why} where Chromium or Playwright is missing."""
    reason = unavailable()
    if reason is not None:
        return {"skipped": reason}
    from playwright.async_api import async_playwright

    config = BrowserConfig(sessions=0, freshness_samples=0, quick=quick)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
            signed_in = await sign_in(page, dashboard, credentials)
            render = await _render(page, dashboard.url, release_id, config, waves)
        finally:
            await browser.close()
    return {"sign_in_s": signed_in, **render}


async def sign_in(page: Any, dashboard: DashboardServer, credentials: Credentials) -> float:
    """Sign in through the form; seconds from opening the app to the signed-in sidebar."""
    began = time.perf_counter()
    await page.goto(dashboard.url)
    await page.get_by_role("textbox", name="Username").fill(credentials.username)
    await page.get_by_role("textbox", name="Password").fill(credentials.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Signed in as").wait_for(timeout=60_000)
    took = round(time.perf_counter() - began, 3)
    await page.wait_for_timeout(1000)  # the sign-in cookie is set by a component, one run later
    return took


async def _render(
    page: Any, base_url: str, release_id: str, config: BrowserConfig, waves: int
) -> dict[str, Any]:
    """The release page opened from a link (a full page load: the first one reads the release
    cold in the Streamlit process, the later ones from its cache) and from inside the app (the
    release page's picker, timed from choosing the release: no page load, the script's runs and
    their deltas)."""
    url = f"{base_url}/release?release={release_id}"
    times: list[float] = []
    load_before = load_average()
    for _ in range(1 + config.views):
        began = time.perf_counter()
        await page.goto(url)
        await page.wait_for_function(_RENDERED_JS, arg=[waves], polling=20, timeout=60_000)
        times.append(time.perf_counter() - began)
    in_app: list[float] = []
    for _ in range(config.views):
        await page.goto(f"{base_url}/release")
        await page.get_by_test_id("stSelectbox").filter(has_text="Release").click()
        await page.keyboard.type(release_id)
        option = page.get_by_role("option", name=re.compile(rf"^{re.escape(release_id)}\b"))
        await option.first.wait_for(timeout=60_000)
        await page.wait_for_function(_IDLE_JS, polling=20, timeout=60_000)
        began = time.perf_counter()
        await option.first.click()
        await page.wait_for_function(_RENDERED_JS, arg=[waves], polling=20, timeout=60_000)
        in_app.append(time.perf_counter() - began)
    warm = times[1:]
    return {
        "first_s": round(times[0], 3),
        "views": len(warm),
        "median_s": round(statistics.median(warm), 3),
        "max_s": round(max(warm), 3),
        "in_app_views": len(in_app),
        "in_app_median_s": round(statistics.median(in_app), 3),
        "in_app_max_s": round(max(in_app), 3),
        "load_average_before": load_before,
        "load_average": load_average(),
    }


async def _page_count(page: Any) -> tuple[int, int]:
    text = await page.evaluate("document.body.innerText")
    found = _PROGRESS.search(text)
    if found is None:
        raise RuntimeError("the release page shows no '(N of M)' progress text")
    return int(found.group(1)), int(found.group(2))


async def _read_tree(temporal: Client, release_id: str) -> ReleaseHierarchy:
    """The release's tree read cold (set-up, not a figure: a transient failure is retried)."""
    for attempt in range(3):
        reader = TemporalReader.from_client(temporal, Settings())
        try:
            return await reader.get_release_hierarchy(release_id)
        except RelmgrError:
            if attempt == 2:
                raise
            await asyncio.sleep(2.0)
        finally:
            await reader.aclose()
    raise AssertionError("unreachable")


async def _freshness(
    page: Any, temporal: Client, population: Population, samples: int
) -> dict[str, Any]:
    """Seconds from a signal that makes one more app SUCCEEDED to the page's count showing it."""
    tree = await _read_tree(temporal, population.big_release_id)
    candidates = [
        node.id
        for node in tree.entities()
        if node.kind is EntityKind.APP and node.state is not EntityState.SUCCEEDED
    ]
    rng = random.Random(5)
    refresh = Settings().ui_refresh_seconds
    latencies: list[float] = []
    load_before = load_average()
    await asyncio.sleep(refresh + 0.5)  # the page has caught up with the tree read above
    for number in range(min(samples, len(candidates))):
        succeeded, total = await _page_count(page)
        await asyncio.sleep(rng.uniform(0, refresh))
        began = time.perf_counter()
        await temporal.get_workflow_handle(candidates[number]).signal(
            ContractStubWorkflow.set_state,
            StubChange(state=EntityState.SUCCEEDED, attempt=_ATTEMPT_BASE + number),
        )
        await page.wait_for_function(
            _SHOWS_COUNT_JS, arg=[f"({succeeded + 1} of {total})"], polling=50, timeout=30_000
        )
        latencies.append(time.perf_counter() - began)
    return {
        "samples": len(latencies),
        "ui_refresh_seconds": refresh,
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def _sessions(
    page: Any | None,
    dashboard: DashboardServer,
    cookie_header: str,
    temporal: Client,
    population: Population,
    config: BrowserConfig,
    progress: Any,
) -> dict[str, Any]:
    """Open `config.sessions` sessions; Streamlit's memory, CPU and refresh times with them."""
    churn = Churn(temporal, population.app_ids, 1.0)
    churn.start()
    sessions = [
        ProtocolSession(
            dashboard.url, cookie_header, "release", f"release={population.big_release_id}"
        )
        if number % 2 == 0
        else ProtocolSession(dashboard.url, cookie_header, "releases")
        for number in range(config.sessions)
    ]
    rss_before = rss_bytes(dashboard.pid)
    began = time.perf_counter()
    try:
        for session in sessions:
            session.start()
            await asyncio.sleep(0.05)  # people arrive over a few seconds, not all in one instant
        opened = sum(await asyncio.gather(*(s.opened() for s in sessions)))
        open_seconds = time.perf_counter() - began
        progress(f"{opened} of {len(sessions)} sessions open in {open_seconds:.1f} s")
        for session in sessions:
            session.run_seconds.clear()
        meter = CpuMeter(dashboard.pid)
        meter.start()
        if page is not None:
            await page.evaluate(_OBSERVE_JS)
        await asyncio.sleep(config.sessions_seconds)
        cores = meter.cores()
        durations, gaps = (
            _cycles(await page.evaluate("window.__relmgrRuns")) if page is not None else ([], [])
        )
        rss = rss_bytes(dashboard.pid)
        runs = [s for session in sessions for s in session.run_seconds]
        errors = [e for session in sessions for e in session.errors]
        return {
            "opened": opened,
            "requested": len(sessions),
            "open_seconds": round(open_seconds, 1),
            "streamlit_idle_rss_mib": mib(rss_before),
            "streamlit_rss_mib": mib(rss),
            "streamlit_mib_per_session": round(mib(rss - rss_before) / max(1, opened), 2),
            "streamlit_fds": open_fds(dashboard.pid),
            "streamlit_cores": round(cores, 3),
            "streamlit_cpu_ms_per_refresh": round(
                cores * config.sessions_seconds / len(runs) * 1000, 1
            )
            if runs
            else None,
            "seconds": config.sessions_seconds,
            "session_reruns": _summary(runs),
            "sessions_refreshed": sum(1 for session in sessions if session.run_seconds),
            "session_errors": len(errors),
            "session_error_samples": errors[:3],
            "browser_refresh_under_sessions": {
                **_summary(durations),
                "median_gap_s": round(statistics.median(gaps), 3) if gaps else None,
            },
            "load_average": load_average(),
        }
    finally:
        await churn.pause()
        await asyncio.gather(*(s.stop() for s in sessions))


async def _guarded(*args: Any) -> dict[str, Any]:
    """The proposal's figure, or the error that kept it from being taken (never a crash: the
    run's other figures matter more)."""
    try:
        return await _sessions_with_gc(*args)
    except Exception as exc:
        return {"skipped": f"failed: {type(exc).__name__}: {exc}"}


async def _sessions_with_gc(
    first: DashboardServer,
    workdir: Path,
    temporal_address: str,
    credentials: Credentials,
    cookie_header: str,
    temporal: Client,
    population: Population,
    config: BrowserConfig,
    progress: Any,
) -> dict[str, Any]:
    """The same sessions on a second dashboard with Streamlit's default `runner.postScriptGC`.

    Profiling (py-spy) showed most of a refresh's CPU in the full `gc.collect(2)` that
    Streamlit forces after every script run, fragment reruns included; .streamlit/config.toml
    turns it off since this benchmark showed it. This keeps the comparison with the default."""
    first.stop()
    dashboard = DashboardServer(
        workdir,
        temporal_address,
        credentials,
        extra_env={"STREAMLIT_RUNNER_POST_SCRIPT_GC": "true"},
        cookie_key=first.cookie_key,
    )
    await dashboard.start()
    try:
        found = await _sessions(
            None, dashboard, cookie_header, temporal, population, config, progress
        )
    finally:
        dashboard.stop()
    found["setting"] = "STREAMLIT_RUNNER_POST_SCRIPT_GC=true"
    progress(f"sessions with Streamlit's forced GC: {found['session_reruns']}")
    return found


def _chromium_rss() -> float | None:
    """Resident memory of every Chromium process below this one (shared pages counted in each)."""
    total = 0
    pending = children(os.getpid())
    while pending:
        pid = pending.pop()
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"chromium" in command.split(b"\0", 1)[0]:
                total += tree_rss_bytes(pid)
                continue  # its children are in its tree
            pending.extend(children(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return mib(total) if total else None
