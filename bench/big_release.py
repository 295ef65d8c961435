"""A big release through the API: cold and warm tree, bytes on the wire, 100 pollers, memory.

    python -m bench.big_release [--waves 10] [--clusters 100] [--apps 10] [--seconds 20]
                                [--json PATH] [--markdown PATH] [--memory-only]
                                [--no-browser] [--quick-browser]

Issue 16 item 5. On a fresh dev server it starts one release of waves x clusters x 1 bundle x
apps contract stubs (10 x 100 x 10 = 12,011 workflows; nobody polls their queue, they are visible
from their start, which is all the API reads), then a fresh API process and measures:

- cold: the first `GET /api/releases/{id}/hierarchy` until it answers 200 (a 503 is retried at
  once; the 503s are counted), and the same for `?depth=1` on a second fresh key;
- warm: 20 sequential GETs each of the plain and the gzip body (seconds per request, client side,
  bytes on the wire not decoded);
- bytes on the wire: plain, gzip, `?depth=1` and `?depth=2` (gzip);
- 100 users polling it for `--seconds` each with and without gzip, through Debian's `hey`
  (loopback), and with `If-None-Match` (what a dashboard does): p50/p95/p99, requests/s;
- the API process's RSS before and after, and the machine's load average throughout;
- the dashboard's release page in Chromium (the API stopped first, so the two do not share the
  CPU): a fresh Streamlit process, signed in through the form, then `bench.browser`'s render
  measurement: from navigation until the script is idle, the header's "(N of M)" text is drawn
  and the release and every wave are drawn as expanders; the first view with the Streamlit
  process's reader cold, then the median of 5 views from a link (full page loads) and of 5 from
  the release page's picker; Streamlit's RSS after them;
- in-process (tracemalloc): the bytes one snapshot of the release holds in the reader's cache
  (rows and built tree), per entity.

It stops every process it started. `--markdown PATH` puts the figures, as a Markdown section, into
PATH (replacing the section of an earlier run): `make bench-full` does so for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.browser import release_page_render
from bench.harness import Progress, machine, stop_on_sigterm
from bench.population import Population, Shape
from bench.procs import mib, rss_bytes
from bench.servers import ApiServer, Credentials, DashboardServer
from bench.stats import load_average, percentile
from relmgr.reader.refresher import CachePolicy, SnapshotCache
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.fakes import FakeClock, FakeVisibility

HEY = "/usr/bin/hey"
USERS = 100
WARM_REQUESTS = 20
_PERCENTILE = re.compile(r"^\s*(\d+)%+ in ([\d.]+) secs", re.MULTILINE)
_RATE = re.compile(r"Requests/sec:\s*([\d.]+)")
_STATUS = re.compile(r"\[(\d{3})\]\s+(\d+) responses")


def snapshot_bytes(shape: Shape) -> dict[str, float]:
    """Bytes one release snapshot holds in the reader's cache (rows + tree), by tracemalloc."""
    source = FakeVisibility()
    release_id = "rel-memory"
    source.add_release(release_id, shape.plan())
    cache = SnapshotCache(source, CachePolicy(), FakeClock())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tree = asyncio.run(cache.hierarchy(release_id))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    json_bytes = len(tree.model_dump_json())
    return {
        "entities": shape.entities,
        "snapshot_bytes": held,
        "bytes_per_entity": round(held / shape.entities),
        "json_bytes": json_bytes,
    }


def _hey(url: str, token: str, seconds: int, *headers: str) -> dict[str, Any]:
    """`hey` with USERS concurrent users for `seconds`; its percentiles, rate and statuses."""
    argv = [HEY, "-z", f"{seconds}s", "-c", str(USERS), "-H", f"Authorization: Bearer {token}"]
    for header in headers:
        argv += ["-H", header]
    began_load = load_average()
    done = subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 120
    )
    out = done.stdout
    percentiles = {int(p): round(float(s) * 1000, 1) for p, s in _PERCENTILE.findall(out)}
    rate = _RATE.search(out)
    return {
        "headers": list(headers),
        "p50_ms": percentiles.get(50),
        "p95_ms": percentiles.get(95),
        "p99_ms": percentiles.get(99),
        "requests_per_s": round(float(rate.group(1)), 1) if rate else None,
        "statuses": {code: int(n) for code, n in _STATUS.findall(out)},
        "load_average": [began_load, load_average()],
    }


async def _wire(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[int, int]:
    """Status and bytes on the wire (not decoded) of one GET."""
    async with client.stream("GET", url, headers=headers) as response:
        size = sum([len(chunk) async for chunk in response.aiter_raw()])
        return response.status_code, size


async def _cold(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """Seconds until the first 200 (503s retried at once) and the 503s on the way."""
    began = time.perf_counter()
    unavailable = 0
    while True:
        status, _ = await _wire(client, url, headers)
        if status == 200:
            return {"seconds": round(time.perf_counter() - began, 3), "503s": unavailable}
        if status != 503 or time.perf_counter() - began > 300:
            raise RuntimeError(f"cold read of {url}: HTTP {status}")
        unavailable += 1


async def _warm(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    times = []
    size = 0
    for _ in range(WARM_REQUESTS):
        began = time.perf_counter()
        _, size = await _wire(client, url, headers)
        times.append(time.perf_counter() - began)
    return {
        "p50_ms": round(percentile(times, 0.5) * 1000, 1),
        "p95_ms": round(percentile(times, 0.95) * 1000, 1),
        "bytes": size,
    }


async def dashboard_render(
    workdir: Path,
    temporal_address: str,
    credentials: Credentials,
    release_id: str,
    *,
    waves: int,
    quick: bool,
) -> dict[str, Any]:
    """The release page's render times in Chromium on a fresh dashboard, and its memory."""
    dashboard = DashboardServer(workdir, temporal_address, credentials)
    await dashboard.start()
    try:
        figures = await release_page_render(
            dashboard, credentials, release_id, waves=waves, quick=quick
        )
        figures["streamlit_rss_mib"] = round(mib(rss_bytes(dashboard.pid)), 1)
    finally:
        dashboard.stop()
    return figures


async def measure(
    shape: Shape, seconds: int, progress: Progress, *, browser: bool = True, quick: bool = False
) -> dict[str, Any]:
    """Start everything, measure, stop everything."""
    server = DevServerProcess()
    api: ApiServer | None = None
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "shape": {"waves": shape.waves, "clusters": shape.clusters, "apps": shape.apps},
        "entities": shape.entities,
        "load_average_at_start": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="relmgr-big-") as temporary:
        workdir = Path(temporary)
        try:
            await server.start()
            client = await connect(Settings(temporal_address=server.address))
            population = Population.plan(shape)
            figures["start_seconds"] = round(await population.start_big(client), 1)
            progress(f"started {shape.entities} workflows in {figures['start_seconds']} s")
            await asyncio.sleep(3)  # visibility settles after the starts
            credentials = Credentials.create(workdir)
            api = ApiServer(workdir, server.address, credentials)
            await api.start()
            figures["api_rss_idle_mib"] = round(mib(rss_bytes(api.pid)), 1)
            url = f"{api.url}/api/releases/{population.big_release_id}/hierarchy"
            auth = {"Authorization": f"Bearer {api.token}"}
            plain = {**auth, "Accept-Encoding": "identity"}
            packed = {**auth, "Accept-Encoding": "gzip"}
            async with httpx.AsyncClient(timeout=120) as http:
                figures["cold"] = await _cold(http, url, plain)
                progress(f"cold: {figures['cold']}")
                figures["api_rss_after_cold_mib"] = round(mib(rss_bytes(api.pid)), 1)
                figures["warm_plain"] = await _warm(http, url, plain)
                figures["warm_gzip"] = await _warm(http, url, packed)
                progress(f"warm: {figures['warm_plain']} / {figures['warm_gzip']}")
                figures["bytes"] = {
                    "plain": figures["warm_plain"]["bytes"],
                    "gzip": figures["warm_gzip"]["bytes"],
                    "depth1_gzip": (await _wire(http, url + "?depth=1", packed))[1],
                    "depth1_plain": (await _wire(http, url + "?depth=1", plain))[1],
                    "depth2_gzip": (await _wire(http, url + "?depth=2", packed))[1],
                    "csv_plain": (await _wire(http, url + "?format=csv", plain))[1],
                    "csv_gzip": (await _wire(http, url + "?format=csv", packed))[1],
                }
                progress(f"bytes: {figures['bytes']}")
                async with http.stream("GET", url, headers=packed) as response:
                    etag = response.headers["etag"]
            if shutil.which(HEY):
                figures["poll_gzip"] = _hey(url, api.token, seconds, "Accept-Encoding: gzip")
                progress(f"100 users, gzip: {figures['poll_gzip']}")
                figures["poll_etag"] = _hey(
                    url, api.token, seconds, "Accept-Encoding: gzip", f"If-None-Match: {etag}"
                )
                progress(f"100 users, If-None-Match: {figures['poll_etag']}")
                figures["poll_plain"] = _hey(url, api.token, seconds, "Accept-Encoding: identity")
                progress(f"100 users, plain: {figures['poll_plain']}")
            figures["api_rss_after_load_mib"] = round(mib(rss_bytes(api.pid)), 1)
            api.stop()
            api = None
            if browser:
                figures["dashboard"] = await dashboard_render(
                    workdir,
                    server.address,
                    credentials,
                    population.big_release_id,
                    waves=shape.waves,
                    quick=quick,
                )
                progress(f"dashboard in Chromium: {figures['dashboard']}")
        finally:
            if api is not None:
                api.stop()
            server.stop()
    figures["load_average_at_end"] = load_average()
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a Markdown section for docs/PERFORMANCE.md."""
    b = figures["bytes"]
    lines = [
        f"## Big release through the API ({figures['entities']:,} entities)",
        "",
        f"`python -m bench.big_release` on {figures['date']} (shape {figures['shape']}; load "
        f"average {figures['load_average_at_start']} at start, {figures['load_average_at_end']} "
        f"at end; {figures['machine'].get('nproc', '?')} CPUs).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| cold hierarchy (fresh API, first 200) | {figures['cold']['seconds']} s, "
        f"{figures['cold']['503s']} x 503 before it |",
        f"| warm hierarchy, plain, p50 / p95 (1 client) | {figures['warm_plain']['p50_ms']} / "
        f"{figures['warm_plain']['p95_ms']} ms |",
        f"| warm hierarchy, gzip, p50 / p95 (1 client) | {figures['warm_gzip']['p50_ms']} / "
        f"{figures['warm_gzip']['p95_ms']} ms |",
        f"| bytes: JSON plain / gzip | {b['plain']:,} / {b['gzip']:,} "
        f"({b['plain'] / max(1, b['gzip']):.1f}x) |",
        f"| bytes: `?depth=1` plain / gzip; `?depth=2` gzip | {b['depth1_plain']:,} / "
        f"{b['depth1_gzip']:,}; {b['depth2_gzip']:,} |",
        f"| bytes: CSV plain / gzip | {b['csv_plain']:,} / {b['csv_gzip']:,} |",
    ]
    for key, label in (
        ("poll_gzip", "100 users polling, gzip"),
        ("poll_etag", "100 users polling, gzip + If-None-Match (304s)"),
        ("poll_plain", "100 users polling, plain"),
    ):
        poll = figures.get(key)
        if poll:
            lines.append(
                f"| {label}: p50 / p95 / p99, req/s, statuses | {poll['p50_ms']} / "
                f"{poll['p95_ms']} / {poll['p99_ms']} ms, {poll['requests_per_s']}/s, "
                f"{poll['statuses']} (load {poll['load_average'][1]}) |"
            )
    lines += [
        f"| API RSS: idle / after cold load / after the polls | {figures['api_rss_idle_mib']} / "
        f"{figures['api_rss_after_cold_mib']} / {figures['api_rss_after_load_mib']} MiB |",
    ]
    page = figures.get("dashboard")
    if page and "skipped" in page:
        lines.append(f"| dashboard release page in Chromium | skipped: {page['skipped']} |")
    elif page:
        lines += [
            f"| dashboard release page in Chromium: first view (Streamlit's reader cold) / "
            f"median of {page['views']} views from a link / median of {page['in_app_views']} "
            f"from the release picker | {page['first_s']} / {page['median_s']} / "
            f"{page['in_app_median_s']} s (max {page['max_s']} / {page['in_app_max_s']} s; load "
            f"{page['load_average_before']} before, {page['load_average']} after) |",
            f"| Streamlit RSS after those views | {page['streamlit_rss_mib']} MiB |",
        ]
    memory = figures.get("snapshot")
    if memory:
        lines.append(
            f"| one snapshot in the reader (tracemalloc, rows + tree) | "
            f"{mib(memory['snapshot_bytes']):.1f} MiB, {memory['bytes_per_entity']:,} B/entity |"
        )
    return "\n".join(lines) + "\n"


SECTION = "## Big release through the API"


def put_section(document: Path, text: str) -> None:
    """Replace this benchmark's section of `document` (or append it if it has none)."""
    old = document.read_text() if document.exists() else ""
    start = old.find(SECTION)
    if start < 0:
        document.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + len(SECTION))
    rest = "" if end < 0 else old[end:]
    document.write_text(old[:start] + text + rest)


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write what was asked."""
    parser = argparse.ArgumentParser(prog="python -m bench.big_release")
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=20, help="each polling run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path, help="put the section into this file")
    parser.add_argument("--memory-only", action="store_true", help="only the tracemalloc figure")
    parser.add_argument("--no-browser", action="store_true", help="no dashboard in Chromium")
    parser.add_argument(
        "--quick-browser", action="store_true", help="2 views of the release page, not 5"
    )
    args = parser.parse_args(argv)
    stop_on_sigterm()
    shape = Shape(waves=args.waves, clusters=args.clusters, apps=args.apps)
    memory = snapshot_bytes(shape)
    print(json.dumps(memory))
    if args.memory_only:
        return 0
    figures = asyncio.run(
        measure(
            shape,
            args.seconds,
            Progress(),
            browser=not args.no_browser,
            quick=args.quick_browser,
        )
    )
    figures["snapshot"] = memory
    text = markdown(figures)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.markdown is not None:
        put_section(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
