"""The cold-load herd on a real dev server: many users open many large releases at once.

    python -m bench.herd [--releases 10] [--users 20] [--seconds 60] [--concurrency 2 64]
                         [--hogs 0 8] [--json PATH] [--workdir DIR] [--small] [--no-etag]

docs/PERFORMANCE.md, "Cold-load herds": on a starved dev server, 20 users opening 10 large
releases at once left 9 of them unloaded for over a minute. This command repeats that on a fresh dev
server: `--releases` releases of 5 waves x 20 clusters x 1 bundle x 10 apps (1,206 contract-stub
workflows each, `bench.population`), then, for each `--hogs` count (busy-loop processes that
starve the machine's CPUs, as the other test suites did) and each `--concurrency` value (the API's
`RELMGR_COLD_LOAD_CONCURRENCY`; 64 is as good as unbounded), a FRESH API process (cold cache) and,
once the dev server is idle again (no round pays for the lists the last one abandoned),
`--users` users who each request every release's hierarchy at once. A user retries a 503 after
0.1 s and, once answered, polls again every 1 s with If-None-Match (as a dashboard does), until
every user has had every release or `--seconds` have passed.

Per round it reports when each release first answered 200 (any user) and when every user had
every release, the 503s among the requests, the reader's Temporal calls and refresh cycles (from
the API's `/_bench/stats`), how long the dev server waited for a CPU, and the load average. Every
process it starts (dev server, API, hogs) is stopped on the way out, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.harness import Progress, machine, stop_on_sigterm
from bench.population import Population, Shape
from bench.procs import CpuMeter, cpu_seconds
from bench.rawhttp import RawClient, RawHttpError, RawResponse
from bench.servers import ApiServer, Credentials
from bench.stats import load_average, percentile
from relmgr.reader.source import PAGE_SIZE
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.devserver_process import DevServerProcess
from relmgr.testing.processes import stop_process

LARGE = Shape(waves=5, clusters=20, apps=10)
SMALL = Shape(waves=2, clusters=5, apps=5)  # `--small`: a 73-workflow release, to try the command
MAX_CONCURRENCY = 64  # the setting's upper bound (`Settings.cold_load_concurrency`)
# A request waits for its cold load at most the API's 1.8 s budget; this only catches a hang.
REQUEST_TIMEOUT_SECONDS = 30.0
# A 503 this quick did not wait out the API's 1.8 s budget: a remembered failure answered it.
FAST_SECONDS = 1.0
# Before a herd, the dev server must be idle (below this many cores over one second), so that
# no round pays for the last one's abandoned lists; but a round waits no longer than the limit.
IDLE_CORES = 0.15
IDLE_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class HerdConfig:
    """What one `python -m bench.herd` runs."""

    releases: int = 10
    users: int = 20
    seconds: float = 60.0
    concurrency: tuple[int, ...] = (2, 64)
    hogs: tuple[int, ...] = (0,)
    shape: Shape = LARGE
    retry_seconds: float = 0.1
    poll_seconds: float = 1.0
    etag: bool = True
    # Between rounds: the last API's process is gone and the machine calms down.
    pause_seconds: float = 5.0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _concurrency(text: str) -> int:
    value = _positive(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"RELMGR_COLD_LOAD_CONCURRENCY is at most {MAX_CONCURRENCY}"
        )
    return value


def _hogs(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot start {value} processes")
    return value


def parse_args(argv: list[str] | None = None) -> tuple[HerdConfig, Path | None, Path | None]:
    """The run's configuration, the JSON path (None: print only) and the work directory to keep
    (None: a temporary one)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.herd", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--releases", type=_positive, default=10, help="large releases (10)")
    parser.add_argument("--users", type=_positive, default=20, help="users, each opening all (20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest herd per round (60)")
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        nargs="+",
        default=[2, 64],
        help="RELMGR_COLD_LOAD_CONCURRENCY per round, in order; repeat values to interleave",
    )
    parser.add_argument(
        "--hogs",
        type=_hogs,
        nargs="+",
        default=[0],
        help="busy-loop processes during the rounds; several counts: every value under each",
    )
    parser.add_argument("--no-etag", action="store_true", help="re-poll without If-None-Match")
    parser.add_argument("--small", action="store_true", help="73-workflow releases (a dry run)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep the API logs here")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    config = HerdConfig(
        releases=args.releases,
        users=args.users,
        seconds=args.seconds,
        concurrency=tuple(args.concurrency),
        hogs=tuple(args.hogs),
        shape=SMALL if args.small else LARGE,
        etag=not args.no_etag,
    )
    return config, args.json, args.workdir


@dataclass(frozen=True)
class HerdRound:
    """The figures of one round: one fresh API, one herd."""

    hogs: int
    concurrency: int
    users: int
    seconds: float
    # Seconds from the herd's start to each release's first 200 (any user), in release order.
    release_first_ok_s: tuple[float | None, ...]
    # When the last user had its first 200 for the last release; None if some never did.
    every_user_s: float | None
    statuses: dict[str, int]
    unavailable_codes: dict[str, int]
    unavailable_p50_s: float
    # 503s answered within `FAST_SECONDS`: from a remembered failed load, not after the budget.
    unavailable_fast: int
    transport_errors: int
    list_calls: int
    # The fewest list calls the round could have made: every release's pages once, one delta a
    # cycle; the rest are failed or repeated loads and retried calls.
    list_calls_needed: int
    temporal_calls: int
    refresh_cycles: int
    server_cores: float
    server_cpu_wait: float
    api_cores: float
    api_cpu_wait: float
    herd_cores: float
    load_average_start: list[float]
    load_average_end: list[float]
    # How long the round waited for the dev server to go idle, and its cores then.
    server_idle_wait_s: float = 0.0
    server_idle_cores: float = 0.0

    @property
    def loaded(self) -> int:
        """Releases that answered 200 at least once."""
        return sum(1 for seconds in self.release_first_ok_s if seconds is not None)

    def releases_answered_s(self, share: float) -> float | None:
        """When `share` (0-1, nearest rank) of the releases had first answered 200; None if they
        never did. 0: the first release; 0.5: half of them; 1: all."""
        ordered = sorted(self.release_first_ok_s, key=lambda s: math.inf if s is None else s)
        return ordered[max(1, math.ceil(share * len(ordered))) - 1] if ordered else None

    @property
    def all_releases_s(self) -> float | None:
        """When the last release first answered 200; None if one never did."""
        return self.releases_answered_s(1.0)

    @property
    def requests(self) -> int:
        """Every request sent: answered with any status, or failed on the connection."""
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def unavailable(self) -> int:
        """Requests answered 503."""
        return self.statuses.get("503", 0)

    def to_json(self) -> dict[str, Any]:
        """The fields and the derived figures."""
        return {
            **asdict(self),
            "releases": len(self.release_first_ok_s),
            "loaded": self.loaded,
            "first_release_s": self.releases_answered_s(0.0),
            "half_releases_s": self.releases_answered_s(0.5),
            "all_releases_s": self.all_releases_s,
            "requests": self.requests,
            "unavailable": self.unavailable,
        }


def release_first_ok(
    first_ok: dict[tuple[int, str], float], release_ids: list[str]
) -> tuple[float | None, ...]:
    """Per release, the earliest first 200 of any user; None for a release nobody got."""
    earliest: dict[str, float] = {}
    for (_user, release_id), seconds in first_ok.items():
        earliest[release_id] = min(seconds, earliest.get(release_id, seconds))
    return tuple(earliest.get(release_id) for release_id in release_ids)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


_COLUMNS = (
    "hogs",
    "conc",
    "loaded",
    "first 200 s: first / half / all",
    "every user s",
    "503 / requests",
    "lists / needed / cycles",
    "server wait s/s",
    "load avg",
)


def format_table(rounds: list[HerdRound]) -> str:
    """One row per round, then each round's per-release times to a first 200."""
    rows = [_COLUMNS]
    for r in rounds:
        rows.append(
            (
                str(r.hogs),
                str(r.concurrency),
                f"{r.loaded}/{len(r.release_first_ok_s)}",
                " / ".join(_seconds(r.releases_answered_s(share)) for share in (0.0, 0.5, 1.0)),
                _seconds(r.every_user_s),
                f"{r.unavailable} / {r.requests}",
                f"{r.list_calls} / {r.list_calls_needed} / {r.refresh_cycles}",
                f"{r.server_cpu_wait:.2f}",
                f"{r.load_average_start[0]:.1f} -> {r.load_average_end[0]:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    for r in rounds:
        times = " ".join(_seconds(s) for s in r.release_first_ok_s)
        lines.append(
            f"hogs {r.hogs}, concurrency {r.concurrency}: first 200 per release (s): {times}"
        )
    return "\n".join(lines)


class HierarchyClient(Protocol):
    """One user's HTTP client (`RawClient`; a fake in tests)."""

    async def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        """One GET; RawHttpError if the connection fails."""
        ...

    async def aclose(self) -> None:
        """Close its connections."""
        ...


@dataclass
class Herd:
    """`users` users, each requesting every release at once, until all have all or time is up.

    Each user has its own client from `new_client` (in the benchmark a `RawClient` with one
    keep-alive connection per release, so that a user's requests all go out at once; httpx would
    cost the machine more CPU than the API spends answering).
    """

    new_client: Callable[[], HierarchyClient]
    release_ids: list[str]
    config: HerdConfig
    first_ok: dict[tuple[int, str], float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    unavailable_codes: Counter[str] = field(default_factory=Counter)
    unavailable_waits: list[float] = field(default_factory=list)
    transport_errors: int = 0
    began: float = 0.0
    _everyone: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: bool = False

    async def run(self) -> float:
        """Run the herd; the seconds it ran."""
        clients = [self.new_client() for _ in range(self.config.users)]
        self.began = time.monotonic()
        tasks = [
            asyncio.create_task(self._open(client, user, release_id))
            for user, client in enumerate(clients)
            for release_id in self.release_ids
        ]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._everyone.wait(), self.config.seconds)
            return time.monotonic() - self.began
        finally:
            # Python 3.11's wait_for (in RawClient.get) can swallow a cancellation that lands as
            # its answer arrives; the flag ends such a user at its next turn.
            self._stopped = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(client.aclose() for client in clients))

    async def _open(self, client: HierarchyClient, user: int, release_id: str) -> None:
        """One user's view of one release: retry until answered, then keep it open."""
        path = f"/api/releases/{release_id}/hierarchy"
        etag: str | None = None
        while not self._stopped:
            headers = {"If-None-Match": etag} if etag and self.config.etag else {}
            sent = time.monotonic()
            try:
                response = await client.get(path, headers)
            except RawHttpError:
                self.transport_errors += 1
                await asyncio.sleep(self.config.retry_seconds)
                continue
            self.statuses[str(response.status_code)] += 1
            if response.status_code in (200, 304):
                key = (user, release_id)
                if key not in self.first_ok:
                    self.first_ok[key] = round(time.monotonic() - self.began, 3)
                    if len(self.first_ok) == self.config.users * len(self.release_ids):
                        self._everyone.set()
                etag = response.headers.get("etag", etag)
                await asyncio.sleep(self.config.poll_seconds)
                continue
            if response.status_code == 503:
                self.unavailable_waits.append(time.monotonic() - sent)
                self.unavailable_codes[_error_code(response.content)] += 1
            await asyncio.sleep(self.config.retry_seconds)

    @property
    def every_user_s(self) -> float | None:
        """When the last (user, release) pair had its first 200, if every pair did."""
        if len(self.first_ok) < self.config.users * len(self.release_ids):
            return None
        return max(self.first_ok.values())


def _error_code(body: bytes) -> str:
    """The `error.code` of the API's one error shape ("?" if the body is not that shape)."""
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "?"
    return str(code)


class Hogs:
    """Busy-loop processes (`python -c 'while True: pass'`) that starve the machine's CPUs."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        """Start `count` more."""
        for _ in range(count):
            self._processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", "while True: pass"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> None:
        """Stop every one started (idempotent)."""
        processes, self._processes = self._processes, []
        for process in processes:
            stop_process(process)


@dataclass
class Started:
    """Everything a run started, so that `main` can stop it whatever happens inside the loop."""

    server: DevServerProcess = field(default_factory=DevServerProcess)
    hogs: Hogs = field(default_factory=Hogs)
    api: ApiServer | None = None

    def stop(self) -> None:
        """Stop the API, the hogs and the dev server (each idempotent)."""
        if self.api is not None:
            self.api.stop()
        self.hogs.stop()
        self.server.stop()


async def _server_idle(pid: int) -> tuple[float, float]:
    """Wait until the dev server uses under `IDLE_CORES` for a second (at most the limit); the
    seconds waited and its last reading."""
    began = time.monotonic()
    meter = CpuMeter(pid)
    while True:
        meter.start()
        await asyncio.sleep(1.0)
        cores = meter.cores()
        waited = time.monotonic() - began
        if cores < IDLE_CORES or waited >= IDLE_LIMIT_SECONDS:
            return round(waited, 1), round(cores, 3)


async def _round(
    started: Started,
    workdir: Path,
    release_ids: list[str],
    config: HerdConfig,
    *,
    hogs: int,
    concurrency: int,
) -> HerdRound:
    """One fresh API with this cold-load bound, one herd against it (its files in `workdir`)."""
    workdir.mkdir(parents=True)  # noqa: ASYNC240 - once, before the round starts
    api = ApiServer(
        workdir,
        started.server.address,
        Credentials.create(workdir),
        extra_env={"RELMGR_COLD_LOAD_CONCURRENCY": str(concurrency)},
    )
    started.api = api
    try:
        await api.start()
        idle = await _server_idle(started.server.pid)
        before = await api.stats()
        server_meter, api_meter = CpuMeter(started.server.pid), CpuMeter(api.pid)
        server_meter.start()
        api_meter.start()
        own_cpu = cpu_seconds(os.getpid())
        load_start = load_average()
        herd = Herd(
            lambda: RawClient(
                "127.0.0.1",
                api.port,
                {"Authorization": f"Bearer {api.token}"},
                connections=len(release_ids),
                timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            release_ids,
            config,
        )
        seconds = await herd.run()
        herd_cores = (cpu_seconds(os.getpid()) - own_cpu) / seconds
        server_cores, server_wait = server_meter.cores(), server_meter.waiting()
        api_cores, api_wait = api_meter.cores(), api_meter.waiting()
        load_end = load_average()
        after = await api.stats()
    finally:
        api.stop()
        started.api = None
    cycles = after["refresh_cycles"] - before["refresh_cycles"]
    return HerdRound(
        hogs=hogs,
        concurrency=concurrency,
        users=config.users,
        seconds=round(seconds, 2),
        release_first_ok_s=release_first_ok(herd.first_ok, release_ids),
        every_user_s=herd.every_user_s,
        statuses=dict(sorted(herd.statuses.items())),
        unavailable_codes=dict(sorted(herd.unavailable_codes.items())),
        unavailable_p50_s=round(percentile(herd.unavailable_waits, 0.5), 3),
        unavailable_fast=sum(1 for wait in herd.unavailable_waits if wait < FAST_SECONDS),
        transport_errors=herd.transport_errors,
        list_calls=after["list_calls"] - before["list_calls"],
        list_calls_needed=len(release_ids) * math.ceil(config.shape.entities / PAGE_SIZE) + cycles,
        temporal_calls=after["temporal_calls"] - before["temporal_calls"],
        refresh_cycles=cycles,
        server_cores=round(server_cores, 3),
        server_cpu_wait=round(server_wait, 3),
        api_cores=round(api_cores, 3),
        api_cpu_wait=round(api_wait, 3),
        herd_cores=round(herd_cores, 3),
        load_average_start=load_start,
        load_average_end=load_end,
        server_idle_wait_s=idle[0],
        server_idle_cores=idle[1],
    )


async def run_herd(
    config: HerdConfig, started: Started, progress: Progress, *, command: str, workdir: Path
) -> dict[str, Any]:
    """Start the dev server and the releases, then every round; the figures."""
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "config": asdict(config),
        "load_average_at_start": load_average(),
    }
    rounds: list[HerdRound] = []
    try:
        await started.server.start()
        progress(f"dev server {started.server.address} (pid {started.server.pid})")
        client = await connect(Settings(temporal_address=started.server.address))
        population = Population.plan(config.shape)
        # Nobody polls either queue: the stubs are visible from their start, which is all a cold
        # load reads, and no worker competes for the CPU.
        await population.start_big(client)
        await population.start_extra_large(client, config.releases - 1)
        release_ids = population.large_release_ids
        meta["start_seconds"] = dict(population.seconds)
        progress(f"started {population.workflow_count} workflows: {population.seconds}")
        await asyncio.sleep(3)  # visibility settles after the starts
        for hogs in config.hogs:
            started.hogs.start(hogs)
            try:
                for concurrency in config.concurrency:
                    if rounds:
                        await asyncio.sleep(config.pause_seconds)
                    progress(f"round: {hogs} hogs, RELMGR_COLD_LOAD_CONCURRENCY={concurrency}")
                    figures = await _round(
                        started,
                        workdir / f"round-{len(rounds) + 1}-hogs-{hogs}-concurrency-{concurrency}",
                        release_ids,
                        config,
                        hogs=hogs,
                        concurrency=concurrency,
                    )
                    progress(f"figures: {json.dumps(figures.to_json())}")
                    rounds.append(figures)
            finally:
                started.hogs.stop()
    finally:
        started.stop()
    meta["load_average_at_end"] = load_average()
    return {"meta": meta, "rounds": [r.to_json() for r in rounds], "table": format_table(rounds)}


def main(argv: list[str] | None = None) -> int:
    """Run every round, print the table, write the JSON if asked."""
    arguments = sys.argv[1:] if argv is None else argv
    config, json_path, kept = parse_args(arguments)
    stop_on_sigterm()
    started = Started()
    command = " ".join(["python -m bench.herd", *arguments])
    try:
        with tempfile.TemporaryDirectory(prefix="relmgr-herd-") as temporary:
            workdir = kept or Path(temporary)
            workdir.mkdir(parents=True, exist_ok=True)
            results = asyncio.run(
                run_herd(config, started, Progress(), command=command, workdir=workdir)
            )
    except KeyboardInterrupt:
        print("interrupted: every process the run started is stopped", file=sys.stderr)
        return 130
    finally:
        started.stop()  # again, outside the loop: a Ctrl-C may have left it mid-round
    print(results["table"])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
