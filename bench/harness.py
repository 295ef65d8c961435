"""The benchmark run of issue 6: one process tree, one fresh dev server, every figure side by side.

The harness starts, as its own children, a Temporal dev server on a free port, the API
(`bench.api_app`: the production app), the load generators (`bench.load`), and for the browser
figures the Streamlit dashboard and Debian's Chromium; it stops them all at the end. It starts the
workflows (`bench.population`), then measures in this order, so that each figure sees a machine
doing only what that figure is about:

1. cold full hierarchy: relmgr vs the raw `list_workflows` vs the fan-out (no worker running yet);
2. the API under 100 polling dashboard users, without and with `If-None-Match`, then 10 users;
   cProfile of the API under the same load, as a separate window (profiling slows it);
3. saturation of the hierarchy endpoint (open-loop rate steps);
4. freshness through the API;
5. the browser (`bench.browser`): render, refresh, freshness, and 100 sessions' memory;
6. Temporal server CPU with 10 large releases watched, against the same server unwatched;
7. memory (collected along the way).

Throughout 2-3 a live rollout changes `churn_per_second` apps a second. Every figure carries the
machine's load average, since the machine may be shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench import browser
from bench.bench_read import measure_cold, measure_fanout
from bench.freshness import api_freshness
from bench.population import Churn, Population, Shape
from bench.procs import CpuMeter, mib, open_fds, rss_bytes
from bench.servers import ROOT, ApiServer, Credentials
from bench.stats import load_average, ratio
from bench.targets import evaluate
from relmgr.cli.devserver import find_temporal_binary
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.contract_stub import ContractStubWorkflow
from relmgr.testing.devserver_process import DevServerProcess


@dataclass(frozen=True)
class Config:
    """How big and how long: `full()` is issue 6's benchmark, `quick()` proves the harness works."""

    quick: bool
    shape: Shape
    small_releases: int
    cold_runs: int
    fanout_runs: int
    users: int
    compare_users: int
    user_seconds: float
    period_seconds: float
    churn_per_second: float
    rates: tuple[float, ...]
    etag_rates: tuple[float, ...]
    step_seconds: float
    p95_limit_ms: float
    freshness_samples: int
    profile_seconds: float
    browser: bool
    browser_freshness_samples: int
    sessions: int
    many: int
    many_users_per_release: int
    many_seconds: float

    @classmethod
    def full(cls) -> Config:
        """The sizes and durations issue 6 asks for."""
        return cls(
            quick=False,
            shape=Shape(waves=5, clusters=20, apps=10),
            small_releases=500,
            cold_runs=7,
            fanout_runs=1,
            users=100,
            compare_users=10,
            user_seconds=60.0,
            period_seconds=3.0,
            churn_per_second=1.0,
            rates=(20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400, 500, 650, 800),
            etag_rates=(50, 100, 200, 300, 400, 500, 650, 800, 1000, 1300),
            step_seconds=10.0,
            p95_limit_ms=100.0,
            freshness_samples=40,
            profile_seconds=20.0,
            browser=True,
            browser_freshness_samples=15,
            sessions=100,
            many=10,
            many_users_per_release=2,
            many_seconds=30.0,
        )

    def without_browser(self) -> Config:
        """The same run without the Chromium figures."""
        return replace(self, browser=False)

    @classmethod
    def quick_mode(cls) -> Config:
        """A small release, few users, short windows: the whole run in well under 2 minutes."""
        return cls(
            quick=True,
            shape=Shape(waves=2, clusters=5, apps=5),
            small_releases=20,
            cold_runs=3,
            fanout_runs=1,
            users=20,
            compare_users=5,
            user_seconds=4.0,
            period_seconds=2.0,
            churn_per_second=1.0,
            rates=(10, 40),
            etag_rates=(40,),
            step_seconds=2.0,
            p95_limit_ms=100.0,
            freshness_samples=5,
            profile_seconds=0.0,
            browser=True,
            browser_freshness_samples=2,
            sessions=3,
            many=2,
            many_users_per_release=1,
            many_seconds=3.0,
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so that every server the run started is stopped on the way out."""
    signal.signal(signal.SIGTERM, _interrupt)


PRIORITY_BOOST = -10


def _set_priority(pid: int, niceness: int) -> None:
    """Set the nice value of every thread of a process (Linux: setpriority is per thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
        except (ProcessLookupError, PermissionError):
            continue  # a thread that ended; or not root: the figure then says it made no change


class Progress:
    """Timestamped progress lines on stderr (the figures go to the report files)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    version = subprocess.run(  # noqa: S603 - the project's own temporal CLI, fixed arguments
        [str(find_temporal_binary()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, as a developer's
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "temporal_cli": version,
        "git_commit": commit,
    }


async def run_load(progress: Progress, workdir: Path, name: str, *args: str) -> dict[str, Any]:
    """`python -m bench.load ...` in its own process; its JSON figures."""
    out = workdir / f"load-{name}.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", *args, "--out", str(out), cwd=ROOT
    )
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"load generator {name!r} exited with {code}")
    result: dict[str, Any] = json.loads(out.read_text())
    progress(f"{name}: {_one_line(result)}")
    return result


def _one_line(result: dict[str, Any]) -> str:
    if "steps" in result:
        return (
            f"highest sustained {result['highest_sustained_rps']} req/s, "
            f"stopped by {result['stopped_by']}"
        )
    latency = result["latency"]
    return (
        f"{result['requests']} requests, {result['errors']} errors, p50 {latency['p50_ms']} ms, "
        f"p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms, "
        f"{result['temporal_calls']} Temporal calls in {result['refresh_cycles']} cycles"
    )


def _user_releases(population: Population, users: int) -> list[str]:
    """Half the users watch the large release, the others one small release each."""
    releases: list[str] = []
    for number in range(users):
        if number % 2 == 0 or not population.small_release_ids:
            releases.append(population.big_release_id)
        else:
            releases.append(
                population.small_release_ids[(number // 2) % len(population.small_release_ids)]
            )
    return releases


@dataclass
class Run:
    """One benchmark run: its config, its processes, and the figures as they come in."""

    config: Config
    workdir: Path
    progress: Progress = field(default_factory=Progress)
    results: dict[str, Any] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)

    async def users_phase(
        self,
        api: ApiServer,
        server: DevServerProcess,
        population: Population,
        name: str,
        users: int,
        *,
        etag: bool,
    ) -> dict[str, Any]:
        """One closed-loop window of `users` polling dashboard users."""
        args = [
            "users",
            "--url",
            api.url,
            "--token",
            api.token,
            "--users",
            str(users),
            "--seconds",
            str(self.config.user_seconds),
            "--period",
            str(self.config.period_seconds),
            "--releases",
            ",".join(_user_releases(population, users)),
            "--api-pid",
            str(api.pid),
            "--temporal-pid",
            str(server.pid),
        ]
        if etag:
            args.append("--etag")
        return await run_load(self.progress, self.workdir, name, *args)

    async def measure(self) -> dict[str, Any]:
        """Everything, in order; the results dictionary."""
        config, progress = self.config, self.progress
        self.results["meta"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench" + (" --quick" if config.quick else ""),
            "quick": config.quick,
            "machine": machine(),
            "config": {k: v for k, v in asdict(config).items()},
            "settings": {
                "refresh_seconds": self.settings.refresh_seconds,
                "delta_window_seconds": self.settings.delta_window_seconds,
                "ui_refresh_seconds": self.settings.ui_refresh_seconds,
            },
            "load_average_at_start": load_average(),
        }
        server = DevServerProcess()
        await server.start()
        progress(f"dev server {server.address} (pid {server.pid})")
        try:
            client = await connect(
                self.settings.model_copy(update={"temporal_address": server.address})
            )
            await self._measure_on(server, client)
        finally:
            server.stop()
        self.results["meta"]["load_average_at_end"] = load_average()
        self.results["targets"] = evaluate(self.results)
        return self.results

    async def _measure_on(self, server: DevServerProcess, client: Client) -> None:
        config, progress, results = self.config, self.progress, self.results
        population = Population.plan(config.shape)
        await population.start_big(client)
        progress(f"started {len(population.all_ids)} workflows of {population.big_release_id}")
        await population.start_small(client, config.small_releases)
        progress(f"started {config.small_releases} small releases")
        results["setup"] = {
            "large_release": population.big_release_id,
            "large_release_entities": len(population.all_ids),
            "shape": asdict(config.shape),
            "small_releases": config.small_releases,
            "workflows": population.workflow_count,
            "start_seconds": dict(population.seconds),
            "load_average": load_average(),
        }
        await asyncio.sleep(1 if config.quick else 3)  # visibility settles after the starts

        # 1. Cold reads first, with no worker, so nothing else competes for the cores.
        cold = await measure_cold(
            client, self.settings, population.big_release_id, config.cold_runs
        )
        cold["load_average"] = load_average()
        results["cold"] = cold
        progress(f"cold: {json.dumps(cold)}")

        async with Worker(
            client,
            task_queue=population.live_queue,
            workflows=[ContractStubWorkflow],
            max_concurrent_workflow_tasks=200,
        ):
            await asyncio.sleep(
                1.5 if config.quick else 8
            )  # the worker takes every stub's first task
            fanout = await measure_fanout(client, population.big_release_id, config.fanout_runs)
            fanout["fanout_over_cold_ratio"] = ratio(
                fanout["fanout_ms"]["median"], cold["cold_hierarchy_ms"]["median"], 1
            )
            fanout["load_average"] = load_average()
            results["fanout"] = fanout
            progress(f"fan-out: {json.dumps(fanout)}")
            await self._api_figures(server, client, population)
            if config.browser:
                results["browser"] = await self._browser(server, client, population)
            else:
                results["browser"] = {"skipped": "turned off"}
            await self._server_cpu(server, client, population)

    async def _browser(
        self, server: DevServerProcess, client: Client, population: Population
    ) -> dict[str, Any]:
        """The browser figures; a failure there is recorded, and the run goes on without them."""
        config, progress = self.config, self.progress
        try:
            return await browser.measure(
                config=browser.BrowserConfig(
                    sessions=config.sessions,
                    freshness_samples=config.browser_freshness_samples,
                    quick=config.quick,
                ),
                workdir=self.workdir,
                temporal=client,
                temporal_address=server.address,
                population=population,
                credentials=Credentials.create(self.workdir / "browser"),
                progress=progress,
            )
        except Exception as exc:  # the dashboard is another team's moving target: report, go on
            progress(f"browser figures failed: {exc!r}")
            return {"skipped": f"failed: {type(exc).__name__}: {str(exc)[:300]}"}

    async def _api_figures(
        self, server: DevServerProcess, client: Client, population: Population
    ) -> None:
        config, progress, results = self.config, self.progress, self.results
        credentials = Credentials.create(self.workdir / "api")
        api = ApiServer(self.workdir, server.address, credentials)
        await api.start()
        idle = {"rss_mib": mib(rss_bytes(api.pid)), "fds": open_fds(api.pid)}
        progress(f"API {api.url} (pid {api.pid}), idle RSS {idle['rss_mib']} MiB")
        churn = Churn(client, population.app_ids, config.churn_per_second)
        churn.start()
        try:
            load: dict[str, Any] = {"api_idle": idle}
            load["full_100"] = await self.users_phase(
                api, server, population, "users-no-etag", config.users, etag=False
            )
            load["etag_100"] = await self.users_phase(
                api, server, population, "users-etag", config.users, etag=True
            )
            load["etag_10"] = await self.users_phase(
                api, server, population, "users-etag-few", config.compare_users, etag=True
            )
            if not config.quick:
                # The same 100-user load with the API's threads ahead of the rest of the shared
                # machine in the CPU queue: what the API does when it has the CPU it needs.
                _set_priority(api.pid, PRIORITY_BOOST)
                try:
                    load["full_100_priority"] = await self.users_phase(
                        api, server, population, "users-no-etag-priority", config.users, etag=False
                    )
                finally:
                    _set_priority(api.pid, 0)
            load["churn_changes_sent"] = churn.sent
            results["api_load"] = load
            if config.profile_seconds > 0:
                results["profile"] = await self._profile(api, server, population)

            saturation: dict[str, Any] = {}
            for name, rates, etag in (
                ("full_body", config.rates, False),
                ("not_modified", config.etag_rates, True),
            ):
                args = [
                    "steps",
                    "--url",
                    api.url,
                    "--token",
                    api.token,
                    "--release",
                    population.big_release_id,
                    "--rates",
                    ",".join(f"{r:g}" for r in rates),
                    "--step-seconds",
                    str(config.step_seconds),
                    "--p95-limit-ms",
                    str(config.p95_limit_ms),
                    "--api-pid",
                    str(api.pid),
                ]
                if etag:
                    args.append("--etag")
                saturation[name] = await run_load(progress, self.workdir, f"steps-{name}", *args)
            results["saturation"] = saturation
            await churn.pause()

            async with httpx.AsyncClient(
                base_url=api.url,
                headers={"Authorization": f"Bearer {api.token}"},
                timeout=10,
                trust_env=False,
            ) as http:
                fresh = await api_freshness(
                    temporal=client,
                    http=http,
                    release_id=population.big_release_id,
                    app_ids=population.app_ids,
                    samples=config.freshness_samples,
                    refresh_seconds=self.settings.refresh_seconds,
                )
            results["freshness_api"] = fresh
            progress(f"API freshness: {json.dumps(fresh)}")
            results["memory"] = {
                "api_idle_rss_mib": idle["rss_mib"],
                "api_rss_mib_100_users_peak": load["full_100"]["api_process"].get("rss_mib_peak"),
                "api_rss_mib_100_users_etag_peak": load["etag_100"]["api_process"].get(
                    "rss_mib_peak"
                ),
                "api_rss_mib_after_all_api_figures": mib(rss_bytes(api.pid)),
                "api_fds_after_all_api_figures": open_fds(api.pid),
                "load_average": load_average(),
            }
        finally:
            await churn.pause()
            api.stop()

    async def _profile(
        self, api: ApiServer, server: DevServerProcess, population: Population
    ) -> dict[str, Any]:
        """cProfile of the API's event loop under the 100-user load without If-None-Match."""
        path = self.workdir / "api.prof"
        await api.profile("start")
        seconds = self.config.profile_seconds
        args = [
            "users",
            "--url",
            api.url,
            "--token",
            api.token,
            "--users",
            str(self.config.users),
            "--seconds",
            str(seconds),
            "--period",
            str(self.config.period_seconds),
            "--releases",
            ",".join(_user_releases(population, self.config.users)),
            "--api-pid",
            str(api.pid),
            "--temporal-pid",
            str(server.pid),
        ]
        load = await run_load(self.progress, self.workdir, "users-profiled", *args)
        report = await api.profile("stop", path=str(path), top="35")
        return {
            "seconds": seconds,
            "requests": load["requests"],
            "api_cores": load["cores"].get("api"),
            "latency_profiled": load["latency"],
            "stats_file": str(path),
            "top_cumulative": report.get("cumulative", ""),
            "top_own_time": report.get("tottime", ""),
        }

    async def _server_cpu(
        self, server: DevServerProcess, client: Client, population: Population
    ) -> None:
        """Temporal server CPU: a fresh API watching nothing vs watching `many` large releases."""
        config, progress = self.config, self.progress
        more = config.many - 1
        await population.start_extra_large(client, more)
        progress(f"started {more} more large releases")
        releases = population.large_release_ids
        api = ApiServer(self.workdir, server.address, Credentials.create(self.workdir / "cpu"))
        await api.start()
        churn = Churn(client, population.app_ids, 5.0)
        churn.start()
        try:
            cold_loads = await _prewarm(api, releases)
            progress(f"cold loads one after another: {cold_loads}")
            await asyncio.sleep(1 if config.quick else 3)
            meter = CpuMeter(server.pid)
            load_before = load_average()
            meter.start()
            await asyncio.sleep(config.many_seconds)
            idle_cores = meter.cores()
            users = config.many * config.many_users_per_release
            watched = await run_load(
                progress,
                self.workdir,
                "users-many-releases",
                "users",
                "--url",
                api.url,
                "--token",
                api.token,
                "--users",
                str(users),
                "--seconds",
                str(config.many_seconds),
                "--period",
                str(config.period_seconds),
                "--releases",
                ",".join(releases),
                "--etag",
                "--api-pid",
                str(api.pid),
                "--temporal-pid",
                str(server.pid),
            )
        finally:
            await churn.pause()
            api.stop()
        watched_cores = watched["cores"].get("temporal", 0.0)
        self.results["server_cpu"] = {
            "releases_watched": config.many,
            "entities_watched": config.many * config.shape.entities,
            "users": users,
            "seconds": config.many_seconds,
            "churn_per_second": 5.0,
            "server_cores_unwatched": round(idle_cores, 3),
            "server_cores_watched": watched_cores,
            "server_cores_added_by_relmgr": round(watched_cores - idle_cores, 3),
            "api_cores_watched": watched["cores"].get("api"),
            "temporal_calls": watched["temporal_calls"],
            "refresh_cycles": watched["refresh_cycles"],
            "temporal_calls_per_cycle": watched["temporal_calls_per_cycle"],
            "errors": watched["errors"],
            "start_seconds": population.seconds.get("extra_large_releases"),
            "cold_load_seconds": cold_loads,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
        progress(f"server CPU: {json.dumps(self.results['server_cpu'])}")


async def _prewarm(api: ApiServer, releases: list[str]) -> list[float]:
    """Open each release once, one after another (503s retried for up to a minute each): the
    CPU figure is about watching, and a reader loads cold releases one by one as people open
    them; ten 1,206-row lists at once on a starved dev server is another story
    (docs/PERFORMANCE.md, "Cold-load herds")."""
    took: list[float] = []
    async with httpx.AsyncClient(
        base_url=api.url,
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=30,
        trust_env=False,
    ) as http:
        for release_id in releases:
            began = time.monotonic()
            while True:
                response = await http.get(f"/api/releases/{release_id}/hierarchy")
                if response.status_code == 200:
                    break
                if time.monotonic() - began > 60:
                    response.raise_for_status()
                await asyncio.sleep(1.0)
            took.append(round(time.monotonic() - began, 2))
    return took


async def run(config: Config, *, workdir: Path | None = None) -> dict[str, Any]:
    """One benchmark run in a fresh work directory (kept if given, else removed)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
        return await Run(config, workdir).measure()
    with tempfile.TemporaryDirectory(prefix="relmgr-bench-") as temporary:
        return await Run(config, Path(temporary)).measure()
