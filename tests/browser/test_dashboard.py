"""The dashboard in a real Chromium against a real Temporal dev server: the release list and its
sorting, the five levels of a release, both CSV downloads, live state changes, escaping of hostile
input, and a Temporal outage with recovery. Latencies are printed (run with `-s` to see them)."""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Dialog, Locator, Page, WebSocket, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from relmgr.temporal.messages import DeployOptions
from relmgr.testing.factories import make_plan
from tests.browser.conftest import FAST, Seeded, choose, expect_page_title
from tests.browser.stack import Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The glide data grid draws on a canvas; these are its geometry in CSS pixels (Streamlit 1.67):
# the header row and each body row are 35 px high, and a selectable table starts with a 35 px
# column of row checkboxes.
ROW_PX = 35
MARKER_PX = 35
RELEASE_HEADER_X = MARKER_PX + 100  # inside the "Release" column (width "medium", 200 px)

RELEASES_CSV_HEADER = [
    "id",
    "state",
    "percent_complete",
    "apps_total",
    "apps_pending",
    "apps_in_progress",
    "apps_retrying",
    "apps_awaiting_approval",
    "apps_paused",
    "apps_succeeded",
    "apps_failed",
    "apps_cancelled",
    "current_wave",
    "waves_total",
    "started_at_utc",
    "last_changed_at_utc",
    "finished_at_utc",
    "duration_seconds",
    "last_error",
]
HIERARCHY_CSV_HEADER = [
    "kind",
    "id",
    "parent_id",
    "wave",
    "cluster",
    "bundle",
    "app",
    "state",
    "started_at_utc",
    "last_changed_at_utc",
    "finished_at_utc",
    "duration_seconds",
    "attempt",
    "last_error",
    "apps_total",
    "apps_pending",
    "apps_in_progress",
    "apps_retrying",
    "apps_awaiting_approval",
    "apps_paused",
    "apps_succeeded",
    "apps_failed",
    "apps_cancelled",
]
# A CSV time: UTC, whole seconds, in the form spreadsheets read as a date.
CSV_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


# ---------------------------------------------------------------------------------------------
# Reading the page.


def table_column(page: Page, column: int, table: Locator | None = None) -> Locator:
    """The cells of one column (1-based, as the grid's accessible table numbers them)."""
    grid = table if table is not None else page.get_by_test_id("stDataFrame").first
    return grid.locator(f'[role="gridcell"][aria-colindex="{column}"]')


def release_links(ids: list[str]) -> list[str]:
    """What the accessible table holds in the Release column for these releases, in order."""
    return [f"release?release={release_id}" for release_id in ids]


def tree_node(page: Page, entity_id: str) -> Locator:
    """The expander of one node of the release tree (keyed `tree-<id with '.' -> '_'>`)."""
    return page.locator(f".st-key-tree-{entity_id.replace('.', '_')}")


def node_label(page: Page, entity_id: str) -> Locator:
    """The clickable label of a tree node."""
    return tree_node(page, entity_id).locator("summary").first


def release_header(page: Page, state: str, waves: str, apps: str) -> Locator:
    """The release header line `STATE  waves N/M · apps N/M` (`state` is a regex)."""
    pattern = rf"^\s*{state}\s+waves {re.escape(waves)} · apps {re.escape(apps)}\s*$"
    return page.get_by_test_id("stMarkdownContainer").filter(has_text=re.compile(pattern))


def updated_caption(page: Page) -> Locator:
    """The `Updated N s ago · ...` caption of fresh data."""
    return page.get_by_text(re.compile(r"^Updated \d+ s ago · "))


_WATCH_RUNS = """() => {
    if (window.relmgrRuns !== undefined) return;
    const app = document.querySelector('[data-testid="stApp"]');
    window.relmgrRuns = 0;
    window.relmgrLastRun = performance.now();
    new MutationObserver(() => {
        window.relmgrLastRun = performance.now();
        if (app.getAttribute("data-test-script-state") === "running") window.relmgrRuns++;
    }).observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
}"""


def wait_for_refreshes(page: Page, runs: int = 2) -> None:
    """Until the app has run `runs` more times (auto-refreshes rerun the data fragment), seen
    as switches of the app's script state to `running`."""
    page.evaluate(_WATCH_RUNS)
    start = page.evaluate("window.relmgrRuns")
    page.wait_for_function(f"window.relmgrRuns >= {start + runs}")
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def wait_until_quiet(page: Page, quiet_ms: int = 1_500) -> None:
    """Until the app has not run for `quiet_ms` (longer than a refresh interval)."""
    page.evaluate(_WATCH_RUNS)
    page.wait_for_function(
        f"""() => document.querySelector('[data-testid="stApp"]')
                .getAttribute("data-test-script-state") === "notRunning"
            && performance.now() - window.relmgrLastRun > {quiet_ms}"""
    )


def runs_so_far(page: Page) -> int:
    """How many runs (full or fragment) the page has seen since it was first watched."""
    page.evaluate(_WATCH_RUNS)
    return int(page.evaluate("window.relmgrRuns"))


# Three refresh intervals of the 1 s setting: a window in which a polling page runs 2-3 times.
WINDOW_MS = 3_000


def watch_messages_sent(page: Page) -> list[int]:
    """A counter (one element) of the messages the page sends its server over the websocket, as
    every rerun request, fragment refresh included, does; call it before the page is opened."""
    sent = [0]

    def on_socket(socket: WebSocket) -> None:
        def count(_payload: object) -> None:
            sent[0] += 1

        socket.on("framesent", count)

    page.on("websocket", on_socket)
    return sent


def activity_over(page: Page, sent: list[int], window_ms: int) -> tuple[int, int]:
    """Runs of the app and messages sent to its server in the next `window_ms`."""
    runs, messages = runs_so_far(page), sent[0]
    page.wait_for_timeout(window_ms)
    return runs_so_far(page) - runs, sent[0] - messages


def expect_activity(page: Page, sent: list[int], within_ms: int, at_least: int = 2) -> None:
    """At least `at_least` runs of the app and as many messages to its server, within
    `within_ms` from now (returns as soon as both are seen)."""
    runs, messages = runs_so_far(page), sent[0]
    deadline = time.monotonic() + within_ms / 1000
    while True:
        seen = (runs_so_far(page) - runs, sent[0] - messages)
        if min(seen) >= at_least:
            return
        assert time.monotonic() < deadline, f"{seen} (runs, messages) in {within_ms} ms"
        page.wait_for_timeout(100)  # lets Playwright deliver the websocket events counted


def set_tab_visibility(page: Page, state: str) -> None:
    """Make the page believe its tab became `hidden` or `visible`, as switching tabs does."""
    page.evaluate(
        """(state) => {
            Object.defineProperty(document, "visibilityState", {
                configurable: true, get: () => state });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def download_at_phases(page: Page, button: Locator, file_name: str, clicks: int = 4) -> Path:
    """Click a download button `clicks` times, spread over one 1 s refresh; every click must
    download `file_name`. Returns the last file."""
    files: list[Path] = []
    lost: list[str] = []
    for click in range(clicks):
        page.wait_for_timeout(1_000 * click / clicks + 100)
        try:
            with page.expect_download(timeout=10_000) as download:
                button.click()
        except PlaywrightTimeoutError:  # the click itself was dropped during a rerun
            lost.append("(no download started)")
            continue
        if download.value.suggested_filename == file_name:
            files.append(Path(download.value.path()))
        else:  # Streamlit served its media URL without the file: a lost download
            lost.append(download.value.suggested_filename)
    print(f"{file_name}: {len(files)} of {clicks} clicks downloaded it, lost: {lost}")
    # Known, rare under load (a loaded 2-core machine lost 1 of 4 clicks in about 1 run in 3,
    # either as a media URL served without the file or as a click dropped during a rerun;
    # `python -m tests.browser.repro_races` measures the rate): at most one click of four.
    assert len(files) >= clicks - 1, lost
    return files[-1]


def read_csv(path: Path) -> list[list[str]]:
    """A downloaded CSV's rows, header included."""
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


# ---------------------------------------------------------------------------------------------
# The release list.


def test_the_list_shows_the_seeded_releases_and_sorts(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """The seeded releases are listed with their states and tiles; the sort controls re-sort them
    on the server (and in the URL); clicking the Release header sorts the table both ways."""
    page = signed_in_page
    page.goto(f"{stack.url}/?q={seeded.token}")
    releases = table_column(page, 1)
    states = table_column(page, 2)
    # Default: newest first; the three were started in the order done, slow, failed.
    expect(releases).to_have_text(release_links([seeded.failed, seeded.slow, seeded.done]))
    expect(states).to_have_text(["FAILED", "IN_PROGRESS", "SUCCEEDED"])
    tiles = {
        "All releases": 3,
        "Pending": 0,
        "In progress": 1,
        "Retrying": 0,
        "Awaiting approval": 0,
        "Paused": 0,
        "Succeeded": 1,
        "Failed": 1,
        "Cancelled": 0,
    }
    expect(page.locator(".st-key-state-tiles").get_by_role("button")).to_have_text(
        [re.compile(rf"^\W*{title} · {count}$") for title, count in tiles.items()]
    )
    expect(page.get_by_text("Releases 1–3 of 3 · page 1 of 1")).to_be_visible()

    choose(page, "Sort by", "Release ID")
    expect(releases).to_have_text(release_links([seeded.slow, seeded.failed, seeded.done]))
    choose(page, "Order", "Ascending")
    expect(releases).to_have_text(release_links([seeded.done, seeded.failed, seeded.slow]))
    expect(states).to_have_text(["SUCCEEDED", "FAILED", "IN_PROGRESS"])
    assert "sort=Release+ID" in page.url
    assert "order=Ascending" in page.url

    # The header sorts the rows shown, in the browser: a fresh view, newest first, then clicks.
    page.goto(f"{stack.url}/?q={seeded.token}")
    expect(releases).to_have_text(release_links([seeded.failed, seeded.slow, seeded.done]))
    grid = page.get_by_test_id("stDataFrame").first
    header = (RELEASE_HEADER_X, ROW_PX / 2)
    grid.click(position={"x": header[0], "y": header[1]})
    expect(releases).to_have_text(release_links([seeded.done, seeded.failed, seeded.slow]))
    expect(states).to_have_text(["SUCCEEDED", "FAILED", "IN_PROGRESS"])
    grid.click(position={"x": header[0], "y": header[1]})
    expect(releases).to_have_text(release_links([seeded.slow, seeded.failed, seeded.done]))
    # The sort the user chose survives the next refreshes of the data.
    wait_for_refreshes(page)
    expect(releases).to_have_text(release_links([seeded.slow, seeded.failed, seeded.done]))


# ---------------------------------------------------------------------------------------------
# One release.


def test_a_release_opens_from_the_list_and_shows_all_five_levels(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Selecting a row opens its release; the header, a wave, a cluster, its bundle and an app
    row all show with their states and N/M roll-ups once the wave and cluster are opened, and
    stay open across refreshes. The row is selected with auto-refresh running (every 1 s here),
    as a user would: the switch must not race the list's refresh (tests/browser/repro_races.py
    measures that race over many selections)."""
    page = signed_in_page
    page.goto(f"{stack.url}/?q={seeded.token}&sort=Release+ID&order=Ascending")
    expect(table_column(page, 1)).to_have_text(
        release_links([seeded.done, seeded.failed, seeded.slow])
    )
    grid = page.get_by_test_id("stDataFrame").first
    grid.click(position={"x": MARKER_PX / 2, "y": ROW_PX + ROW_PX / 2})  # row 1's checkbox

    release = seeded.done
    expect(page).to_have_url(f"{stack.url}/release?release={release}")
    expect_page_title(page, f"Release {release}")
    # Level 1: the release, in its header and as the root of the tree.
    expect(release_header(page, "SUCCEEDED", "2/2", "8/8")).to_be_visible()
    expect(page.get_by_text("100.0% of apps deployed (8 of 8)")).to_be_visible()
    expect(node_label(page, release)).to_have_text(
        re.compile(rf"Release {release} · SUCCEEDED · waves 2/2 · apps 8/8$")
    )
    # Level 2: waves, closed at first, so nothing below them is drawn yet.
    wave = f"{release}.wave-1"
    cluster = f"{wave}.cluster-c1"
    bundle = f"{cluster}.bundle-core"
    expect(node_label(page, wave)).to_have_text(
        re.compile(r"Wave 1 · SUCCEEDED · clusters 2/2 · apps 4/4$")
    )
    expect(node_label(page, f"{release}.wave-2")).to_have_text(
        re.compile(r"Wave 2 · SUCCEEDED · clusters 2/2 · apps 4/4$")
    )
    expect(tree_node(page, cluster)).to_have_count(0)

    node_label(page, wave).click()
    # Level 3: the clusters of wave 1.
    expect(node_label(page, cluster)).to_have_text(
        re.compile(r"Cluster c1 · SUCCEEDED · apps 2/2$")
    )
    expect(node_label(page, f"{wave}.cluster-c2")).to_have_text(
        re.compile(r"Cluster c2 · SUCCEEDED · apps 2/2$")
    )
    expect(tree_node(page, bundle)).to_have_count(0)

    node_label(page, cluster).click()
    # Level 4: the cluster's one bundle, open by default; level 5: its apps as table rows.
    expect(node_label(page, bundle)).to_have_text(
        re.compile(r"Bundle core · SUCCEEDED · apps 2/2$")
    )
    apps_table = tree_node(page, bundle).get_by_test_id("stDataFrame")
    expect(table_column(page, 1, apps_table)).to_have_text(
        [f"entity?id={bundle}.app-a1", f"entity?id={bundle}.app-a2"]
    )
    expect(table_column(page, 2, apps_table)).to_have_text(["", ""])  # no change marks
    expect(table_column(page, 3, apps_table)).to_have_text(["SUCCEEDED", "SUCCEEDED"])
    expect(table_column(page, 4, apps_table)).to_have_text(["1 of 3", "1 of 3"])  # attempts

    # Opened branches stay open across refreshes.
    choose(page, "Auto-refresh", "Every 1 s")
    expect(page.get_by_text(re.compile(r"refreshing every 1 s$"))).to_be_visible()
    wait_for_refreshes(page)
    expect(tree_node(page, wave).locator("details").first).to_have_attribute("open", "")
    expect(tree_node(page, cluster).locator("details").first).to_have_attribute("open", "")
    expect(table_column(page, 1, apps_table)).to_have_count(2)


# ---------------------------------------------------------------------------------------------
# CSV downloads.


def test_the_csv_downloads_hold_one_row_per_release_and_per_entity(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """The list's CSV has the header and one row per release shown (as filtered and sorted),
    with the seeded states and counts; a release's CSV has one row per entity, 1 + W + 2WC + WCA.

    Auto-refresh keeps running (every 1 s here) and each button is clicked at four phases of it:
    the buttons sit outside the refreshing fragment, so no refresh can take a download away."""
    page = signed_in_page
    page.goto(f"{stack.url}/?q={seeded.token}&sort=Release+ID&order=Ascending")
    expect(table_column(page, 1)).to_have_count(3)
    button = page.locator(".st-key-releases-csv").get_by_role("button", name="Download CSV")
    rows = read_csv(download_at_phases(page, button, "releases.csv"))
    assert rows[0] == RELEASES_CSV_HEADER
    stable = ["id", "state", "apps_total", "apps_succeeded", "apps_failed", "waves_total"]
    picked = [[dict(zip(rows[0], row, strict=True))[c] for c in stable] for row in rows[1:]]
    assert picked == [
        [seeded.done, "SUCCEEDED", "8", "8", "0", "2"],
        [seeded.failed, "FAILED", "2", "1", "1", "1"],
        [seeded.slow, "IN_PROGRESS", "8", "0", "0", "2"],
    ]
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert by_id[seeded.done]["percent_complete"] == "100.0"
    assert by_id[seeded.failed]["percent_complete"] == "50.0"
    assert by_id[seeded.slow]["finished_at_utc"] == ""
    assert all(CSV_TIME.match(by_id[r]["finished_at_utc"]) for r in (seeded.done, seeded.failed))

    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect(release_header(page, "SUCCEEDED", "2/2", "8/8")).to_be_visible()
    button = page.locator(".st-key-hierarchy-csv").get_by_role(
        "button", name="Download hierarchy CSV"
    )
    rows = read_csv(download_at_phases(page, button, f"{seeded.done}.csv"))
    assert rows[0] == HIERARCHY_CSV_HEADER
    waves, clusters, apps = 2, 2, 2
    assert len(rows) - 1 == 1 + waves + 2 * waves * clusters + waves * clusters * apps == 19
    expected: set[tuple[str, str, str]] = {("release", seeded.done, "")}
    for w in range(1, waves + 1):
        wave = f"{seeded.done}.wave-{w}"
        expected.add(("wave", wave, seeded.done))
        for c in range(1, clusters + 1):
            cluster = f"{wave}.cluster-c{c}"
            bundle = f"{cluster}.bundle-core"
            expected |= {("cluster", cluster, wave), ("bundle", bundle, cluster)}
            expected |= {("app", f"{bundle}.app-a{a}", bundle) for a in range(1, apps + 1)}
    entities = [(row[0], row[1], row[2]) for row in rows[1:]]
    assert sorted(entities) == sorted(expected)
    assert {row[HIERARCHY_CSV_HEADER.index("state")] for row in rows[1:]} == {"SUCCEEDED"}


# ---------------------------------------------------------------------------------------------
# Live updates.


def test_pausing_or_hiding_the_tab_stops_polling_and_both_resume(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """At a 1 s interval the list reruns every second; paused, or with the tab hidden, neither a
    run nor a message to the server happens in 3 s; resumed, or shown again, the same counters
    see 2 or more runs and messages (within 6 s: so the zeros are the pause's doing, not blind
    counters)."""
    page = signed_in_page
    sent = watch_messages_sent(page)
    page.goto(f"{stack.url}/?q={seeded.token}")
    expect(table_column(page, 1)).to_have_count(3)
    wait_for_refreshes(page)

    choose(page, "Auto-refresh", "Paused")
    expect(
        page.get_by_text(re.compile(r"^Auto-refresh paused · data from \d\d:\d\d:\d\d UTC$"))
    ).to_be_visible()
    expect(page.get_by_role("button", name="Refresh now")).to_be_visible()
    wait_until_quiet(page)  # a refresh asked for just before the pause still runs once
    assert activity_over(page, sent, WINDOW_MS) == (0, 0)
    choose(page, "Auto-refresh", "Every 1 s")
    expect_activity(page, sent, within_ms=2 * WINDOW_MS)

    set_tab_visibility(page, "hidden")
    wait_until_quiet(page)
    assert activity_over(page, sent, WINDOW_MS) == (0, 0)
    set_tab_visibility(page, "visible")
    # Twice the window for the positive checks: a loaded machine may delay a run, never add one.
    expect_activity(page, sent, within_ms=2 * WINDOW_MS)
    expect(updated_caption(page)).to_be_visible()


def test_the_refresh_choice_carries_over_to_the_next_page(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """Paused on the list, then a release opened by its URL (a new page load, so a new Streamlit
    session): the release page starts paused too, as the user left it."""
    page = signed_in_page
    paused = re.compile(r"^Auto-refresh paused · data from \d\d:\d\d:\d\d UTC$")
    page.goto(f"{stack.url}/?q={seeded.token}")
    expect(table_column(page, 1)).to_have_count(3)
    choose(page, "Auto-refresh", "Paused")
    expect(page.get_by_text(paused)).to_be_visible()
    page.wait_for_function("document.cookie.split('; ').includes('relmgr_refresh=0')")
    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect_page_title(page, f"Release {seeded.done}")
    expect(page.get_by_text(paused)).to_be_visible()
    expect(page.get_by_role("combobox", name="Auto-refresh")).to_have_value("Paused")


def test_a_state_change_appears_without_reloading(signed_in_page: Page, stack: Dashboard) -> None:
    """A release seen PENDING or IN_PROGRESS turns SUCCEEDED on the same page, with no reload,
    and its node is marked changed; the latency from the workflow's completion to the badge on
    screen is printed."""
    release = f"rel-live{secrets.token_hex(3)}"
    # The start delay and the app's seconds leave the page time to load before the change.
    stack.temporal.start_release(
        release,
        make_plan(1, 1, 1),
        DeployOptions(min_seconds=4.0, max_seconds=4.0),
        start_delay=timedelta(seconds=2),
    )
    completed = stack.temporal.finished_at(release)
    page = signed_in_page
    page.goto(f"{stack.url}/release?release={release}")
    expect(release_header(page, "(PENDING|IN_PROGRESS)", "0/1", "0/1")).to_be_visible()
    assert not completed.done(), "the release finished before the page showed it running"
    page.evaluate("window.relmgrNoReload = 'same document'")

    expect(release_header(page, "SUCCEEDED", "1/1", "1/1")).to_be_visible(timeout=60_000)
    seen = time.monotonic()
    finished = completed.result(timeout=5)
    assert page.evaluate("window.relmgrNoReload") == "same document"
    expect(node_label(page, release)).to_have_text(
        re.compile(rf"Release {release} · SUCCEEDED · waves 1/1 · apps 1/1 · changed$")
    )
    print(
        f"\n[browser] state change on screen {seen - finished:.2f} s after the workflow "
        "completed (auto-refresh 1 s, reader refresh 1 s)"
    )


# ---------------------------------------------------------------------------------------------
# Hostile input.


def test_html_and_odd_unicode_are_shown_as_text(signed_in_page: Page, stack: Dashboard) -> None:
    """HTML, Markdown and bidi/zero-width characters in an ID come back as literal text in the
    error message, and a search is normalised to the ID alphabet: no element is created from
    them and no script runs."""
    page = signed_in_page
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    main = page.get_by_test_id("stMain")

    page.goto(f"{stack.url}/release?release={quote('<b>x</b>')}")
    expect_page_title(page, "Release")
    expect(
        page.get_by_text("malformed ID '<b>x</b>': expected release: rel-<name>", exact=False)
    ).to_be_visible()
    expect(main.locator("b")).to_have_count(0)

    hostile_id = "<img src=x onerror=alert(1)>"
    page.goto(f"{stack.url}/entity?id={quote(hostile_id)}")
    expect(page.get_by_text(f"malformed ID '{hostile_id}'", exact=False)).to_be_visible()
    expect(main.locator("img")).to_have_count(0)

    search = "<i>x</i> **bold** :red[red] \u202eexe.txt\u200b ü 🚀"
    page.goto(stack.url)
    box = page.get_by_role("textbox", name="Search by ID")
    box.fill(search)
    box.press("Enter")
    # The search is normalised to the ID alphabet, and the page says what it searched for.
    expect(page.get_by_text("Searched for “ixi-bold-redred-exe.txt”", exact=False)).to_be_visible()
    for tag in ("i", "img"):
        expect(main.locator(tag)).to_have_count(0)
    # The tiles' counts are bold; nothing else may be.
    expect(main.locator("strong, em").filter(has_text="bold")).to_have_count(0)
    expect(main.locator("span[style*='color']").filter(has_text="red")).to_have_count(0)
    assert dialogs == []


# ---------------------------------------------------------------------------------------------
# Temporal going away and coming back (last: it takes the server down).


def test_a_temporal_outage_shows_the_banner_keeps_stale_data_and_recovers(
    signed_in_page: Page, stack: Dashboard, seeded: Seeded
) -> None:
    """With the dev server killed, the release page shows the unavailability banner, keeps the
    last tree marked stale, and offers a retry; once the server is back on its port the banner
    goes away by itself and the worker carries on. The times are printed."""
    page = signed_in_page
    page.goto(f"{stack.url}/release?release={seeded.done}")
    expect(release_header(page, "SUCCEEDED", "2/2", "8/8")).to_be_visible()
    expect(updated_caption(page)).to_be_visible()
    # `.first`: during a rerun the outgoing copy of the banner can still be on the page.
    banner = page.get_by_text(
        re.compile(r"^Temporal is unavailable — showing data from \d+ s ago")
    ).first

    temporal = stack.temporal
    temporal.kill_server()
    killed = time.monotonic()
    try:
        expect(banner).to_be_visible(timeout=60_000)
        banner_after = time.monotonic() - killed
        expect(page.get_by_text(re.compile(r"^stale Temporal is unavailable"))).to_be_visible()
        expect(page.locator(".st-key-release-retry").get_by_role("button")).to_be_visible()
        expect(release_header(page, "SUCCEEDED", "2/2", "8/8")).to_be_visible()
        expect(node_label(page, seeded.done)).to_be_visible()
        expect(updated_caption(page)).to_have_count(0)
        expect(page.get_by_test_id("stException")).to_have_count(0)
    finally:
        temporal.restart_server()
    back = time.monotonic()
    expect(banner).to_have_count(0, timeout=60_000)
    recovered_after = time.monotonic() - back
    expect(updated_caption(page)).to_be_visible()
    expect(release_header(page, "SUCCEEDED", "2/2", "8/8")).to_be_visible()
    print(
        f"\n[browser] outage banner {banner_after:.2f} s after the server was killed; "
        f"banner gone {recovered_after:.2f} s after the restarted server answered"
    )

    # The worker outlived the outage: a release started now runs to completion.
    after = f"rel-after{secrets.token_hex(3)}"
    temporal.start_release(after, make_plan(1, 1, 1), FAST)
    assert temporal.result(after, timeout=60).state.value == "SUCCEEDED"
