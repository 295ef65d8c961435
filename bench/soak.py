"""The load soak of issue 7: many dashboard users for minutes; errors, memory growth, descriptors.

    python -m bench.soak [--minutes 10] [--users 100] [--sessions 10] [--log docs/soak.jsonl]

On a fresh dev server (the 1,206-entity release, 50 small releases, one app changing a second),
`--users` simulated dashboard users poll the API (`bench.load`: the release list and one release
hierarchy every 3 s; half with If-None-Match, half without) for `--minutes`, while `--sessions`
Streamlit sessions (`bench.sessions`, signed in once through Chromium's login form) refresh the
dashboard every 3 s. Every 10 s the API's and Streamlit's resident memory and open descriptors
are sampled. The verdict needs:

- 0 errors (any answer but 200/304, any failed request or session rerun);
- API memory growth under 10 % from the end of minute 1 (the warm-up: caches fill, the first
  trees are rendered) to the end; for runs of two minutes or less, from the middle instead;
- no descriptor leak: the API's open descriptors when idle after the load (clients gone) are
  no more than when idle before it, plus a small allowance for the connection to Temporal; the
  descriptors with every client connected are reported too (10 s in, and at the end).

The figures are printed and appended as one JSON line to `--log`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.worker import Worker

from bench import browser
from bench.harness import Progress, machine, stop_on_sigterm
from bench.population import Churn, Population, Shape
from bench.procs import mib, open_fds, rss_bytes
from bench.servers import ROOT, ApiServer, Credentials, DashboardServer
from bench.sessions import ProtocolSession
from bench.stats import load_average, percentile
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.contract_stub import ContractStubWorkflow
from relmgr.testing.devserver_process import DevServerProcess

SAMPLE_SECONDS = 10.0
GROWTH_LIMIT_PERCENT = 10.0
# Descriptors an idle API may legitimately hold more after a load than before it (a gRPC channel
# to Temporal re-made, a log file rotated); a leak grows with requests, far past this.
FD_ALLOWANCE = 3


def _baseline_seconds(seconds: float) -> float:
    """When the memory baseline is taken: after minute 1, or halfway through a short run."""
    return 60.0 if seconds > 120 else seconds / 2


async def _sample(
    api: ApiServer, pids: dict[str, int], samples: list[dict[str, Any]], began: float
) -> None:
    while True:
        row: dict[str, Any] = {"t": round(time.monotonic() - began, 1)}
        for name, pid in pids.items():
            row[f"{name}_rss"] = rss_bytes(pid)
            row[f"{name}_fds"] = open_fds(pid)
        samples.append(row)
        # The bench app keeps every request's time since its last reset; emptied here, so that
        # the soak measures relmgr's memory, not the instrument's (~32 bytes a request).
        with contextlib.suppress(Exception):
            await api.reset_timings()
        await asyncio.sleep(SAMPLE_SECONDS)


def _at(samples: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The first sample at or after `seconds` (the last one if none is)."""
    for row in samples:
        if row["t"] >= seconds:
            return row
    return samples[-1]


async def _signed_in_cookie(dashboard: DashboardServer, credentials: Credentials) -> str | None:
    """The dashboard's cookies after one sign-in through the login form in Chromium."""
    if browser.unavailable() is not None:
        return None
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(browser.CHROMIUM), args=browser.CHROMIUM_ARGS
        )
        try:
            context = await chromium.new_context()
            page = await context.new_page()
            await browser.sign_in(page, dashboard, credentials)
            state = await context.storage_state()
        finally:
            await chromium.close()
    return "; ".join(f"{c['name']}={c['value']}" for c in state["cookies"])


async def soak(
    *, minutes: float, users: int, sessions: int, shape: Shape, small_releases: int
) -> dict[str, Any]:
    """Run the soak; its figures and verdict."""
    progress = Progress()
    seconds = minutes * 60
    server = DevServerProcess()
    await server.start()
    progress(f"dev server {server.address}")
    with tempfile.TemporaryDirectory(prefix="relmgr-soak-") as temporary:
        workdir = Path(temporary)
        try:
            client = await connect(Settings(temporal_address=server.address))
            population = Population.plan(shape)
            await population.start_big(client)
            await population.start_small(client, small_releases)
            progress(f"started {population.workflow_count} workflows")
            async with Worker(
                client,
                task_queue=population.live_queue,
                workflows=[ContractStubWorkflow],
                max_concurrent_workflow_tasks=200,
            ):
                return await _soak_on(
                    progress, workdir, server, client, population, seconds, users, sessions
                )
        finally:
            server.stop()


async def _soak_on(
    progress: Progress,
    workdir: Path,
    server: DevServerProcess,
    client: Any,
    population: Population,
    seconds: float,
    users: int,
    sessions: int,
) -> dict[str, Any]:
    credentials = Credentials.create(workdir)
    api = ApiServer(workdir, server.address, credentials)
    dashboard = DashboardServer(workdir, server.address, credentials)
    await api.start()
    churn = Churn(client, population.app_ids, 1.0)
    churn.start()
    open_sessions: list[ProtocolSession] = []
    sampler: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(2)
        api_idle_before = {"rss": rss_bytes(api.pid), "fds": open_fds(api.pid)}
        pids = {"api": api.pid}
        if sessions > 0:
            await dashboard.start()
            cookie = await _signed_in_cookie(dashboard, credentials)
            if cookie is None:
                progress("no Chromium: the soak runs without Streamlit sessions")
                sessions = 0
            else:
                pids["streamlit"] = dashboard.pid
                for number in range(sessions):
                    session = (
                        ProtocolSession(
                            dashboard.url,
                            cookie,
                            "release",
                            f"release={population.big_release_id}",
                        )
                        if number % 2 == 0
                        else ProtocolSession(dashboard.url, cookie, "releases")
                    )
                    session.start()
                    open_sessions.append(session)
                    await asyncio.sleep(0.05)
        releases = [
            population.big_release_id
            if n % 2 == 0
            else population.small_release_ids[n // 2 % len(population.small_release_ids)]
            for n in range(users)
        ]
        halves = {"etag": releases[0::2] + releases[1::2], "full": releases[1::2] + releases[0::2]}
        counts = {"etag": users - users // 2, "full": users // 2}
        samples: list[dict[str, Any]] = []
        began = time.monotonic()
        sampler = asyncio.get_running_loop().create_task(_sample(api, pids, samples, began))
        loads = []
        for name, count in counts.items():
            if count == 0:
                continue
            out = workdir / f"soak-{name}.json"
            command = [
                "-m",
                "bench.load",
                "users",
                "--url",
                api.url,
                "--token",
                api.token,
                "--users",
                str(count),
                "--seconds",
                str(seconds),
                "--releases",
                ",".join(halves[name]),
                "--api-pid",
                str(api.pid),
                "--out",
                str(out),
            ]
            if name == "etag":
                command.append("--etag")
            process = await asyncio.create_subprocess_exec(sys.executable, *command, cwd=ROOT)
            loads.append((name, process, out))
        progress(f"{users} API users and {sessions} dashboard sessions for {seconds / 60:g} min")
        for _name, process, _out in loads:
            if await process.wait() != 0:
                raise RuntimeError("a load generator failed; see its output above")
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        results = {name: json.loads(out.read_text()) for name, _process, out in loads}
        await asyncio.sleep(3)  # clients are gone; their sockets close
        api_idle_after = {"rss": rss_bytes(api.pid), "fds": open_fds(api.pid)}
        session_runs = [s for session in open_sessions for s in session.run_seconds]
        session_errors = [e for session in open_sessions for e in session.errors]
    finally:
        if sampler is not None:
            sampler.cancel()
        await asyncio.gather(*(s.stop() for s in open_sessions))
        await churn.pause()
        api.stop()
        dashboard.stop()

    baseline = _at(samples, _baseline_seconds(seconds))
    # Descriptors "at the start": once every user has connected (the first sample after 10 s).
    connected = _at(samples, min(SAMPLE_SECONDS, seconds / 4))
    end = samples[-1]
    growth = (end["api_rss"] - baseline["api_rss"]) / baseline["api_rss"] * 100
    requests = sum(r["requests"] for r in results.values())
    http_errors = sum(r["errors"] for r in results.values())
    latencies = {name: r["latency"] for name, r in results.items()}
    errors = http_errors + len(session_errors)
    fds_leak = api_idle_after["fds"] - api_idle_before["fds"]
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m bench.soak --minutes {seconds / 60:g} --users {users} "
        f"--sessions {sessions}",
        "minutes": round(seconds / 60, 2),
        "users": users,
        "sessions": sessions,
        "workflows": population.workflow_count,
        "requests": requests,
        "errors": errors,
        "http_errors": http_errors,
        "session_errors": len(session_errors),
        "error_samples": [e for r in results.values() for e in r["error_samples"]][:5]
        + session_errors[:5],
        "latency": latencies,
        "session_reruns": len(session_runs),
        "session_rerun_p95_s": round(percentile(session_runs, 0.95), 3),
        "baseline_at_s": baseline["t"],
        "rss_mib_minute_1": mib(baseline["api_rss"]),
        "rss_mib_end": mib(end["api_rss"]),
        "rss_mib_peak": mib(max(row["api_rss"] for row in samples)),
        "rss_growth_percent": round(growth, 2),
        "fds_start": connected["api_fds"],
        "fds_end": end["api_fds"],
        "fds_idle_before": api_idle_before["fds"],
        "fds_idle_after": api_idle_after["fds"],
        "streamlit_rss_mib_start": mib(samples[0]["streamlit_rss"]) if sessions else None,
        "streamlit_rss_mib_end": mib(end["streamlit_rss"]) if sessions else None,
        "streamlit_fds_start": connected.get("streamlit_fds"),
        "streamlit_fds_end": end.get("streamlit_fds"),
        "samples": [
            {k: (mib(v) if k.endswith("_rss") else v) for k, v in row.items()} for row in samples
        ],
        "load_average": load_average(),
        "machine": {
            k: v for k, v in machine().items() if k in ("nproc", "cpu_model", "git_commit")
        },
    }
    problems = []
    if errors:
        problems.append(f"{errors} errors")
    if growth >= GROWTH_LIMIT_PERCENT:
        problems.append(f"API memory grew {growth:.1f} %")
    if fds_leak > FD_ALLOWANCE:
        problems.append(f"API holds {fds_leak} more descriptors idle after the load than before")
    figures["verdict"] = "pass" if not problems else "FAIL: " + "; ".join(problems)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the figures, append them to the log; exit 1 if it failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=10, help="Streamlit sessions; 0: none")
    parser.add_argument("--log", type=Path, default=ROOT / "docs" / "soak.jsonl")
    parser.add_argument("--small", action="store_true", help="a 73-workflow release (for tests)")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    shape = Shape(waves=2, clusters=5, apps=5) if args.small else Shape(5, 20, 10)
    figures = asyncio.run(
        soak(
            minutes=args.minutes,
            users=args.users,
            sessions=args.sessions,
            shape=shape,
            small_releases=10 if args.small else 50,
        )
    )
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a", encoding="utf-8") as log:
        log.write(json.dumps(figures) + "\n")
    shown = {k: v for k, v in figures.items() if k != "samples"}
    print(json.dumps(shown, indent=2))
    print(f"soak: {figures['verdict']} (appended to {args.log})")
    return 0 if figures["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
