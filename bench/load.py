"""Virtual dashboard users and request-rate steps against the API, run in a process of their own.

    python -m bench.load users --url URL --token T --users 100 --seconds 60 --releases a,b [--etag]
    python -m bench.load steps --url URL --token T --release a --rates 20,40,80 --step-seconds 10

`users` (closed loop): each user polls like an open dashboard tab, every `period` seconds the
release list and one release's hierarchy, with or without `If-None-Match`. Every user first makes
one untimed round (connects, and lets the API load what it watches), then all are timed together
for `seconds`, starting at random phases of the period. The reader's Temporal calls, and the CPU of
the API and Temporal processes, are read at both ends of the timed window.

`steps` (open loop): requests to one hierarchy leave on a fixed schedule, `rate` a second, whether
or not earlier ones have answered; latency counts from the scheduled time, so a server that falls
behind shows it (no coordinated omission). The rate steps up until p95 passes the limit, a request
fails, or the API no longer keeps up with the schedule, twice in a row. The steps use a minimal
keep-alive client (`bench.rawhttp`): httpx would cost the machine more CPU than the API does.

The load runs in its own process so that the client's own CPU does not share a GIL with the
harness; both write one JSON document to `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.procs import CpuMeter, mib, open_fds, rss_bytes
from bench.rawhttp import RawClient, RawHttpError
from bench.stats import latency_summary, load_average, percentile, ratio

REQUEST_TIMEOUT = 10.0


@dataclass
class Outcomes:
    """Every request of a window: latency, status, bytes, by kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    by_status: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    bytes_received: int = 0

    def record(self, kind: str, seconds: float, status: int | None, size: int) -> None:
        """One request's outcome (status None: no answer)."""
        self.latencies.setdefault(kind, []).append(seconds)
        self.by_status.setdefault(f"{kind}.{status}", []).append(seconds)
        self.statuses[str(status)] += 1
        self.bytes_received += size

    @property
    def requests(self) -> int:
        """How many requests ended (answered or not)."""
        return sum(self.statuses.values())

    @property
    def error_count(self) -> int:
        """Anything but 200 and 304, including no answer at all."""
        return sum(n for status, n in self.statuses.items() if status not in {"200", "304"})

    def summary(self, seconds: float) -> dict[str, Any]:
        """The figures of a window."""
        everything = [v for values in self.latencies.values() for v in values]
        return {
            "requests": self.requests,
            "throughput_rps": round(self.requests / seconds, 2) if seconds else None,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": self.error_count,
            "error_samples": self.errors[:5],
            "mib_received": mib(self.bytes_received),
            "latency": latency_summary(everything),
            "latency_by_kind": {k: latency_summary(v) for k, v in sorted(self.latencies.items())},
            "latency_by_status": {k: latency_summary(v) for k, v in sorted(self.by_status.items())},
        }


async def _get(
    client: httpx.AsyncClient | RawClient,
    path: str,
    outcomes: Outcomes,
    kind: str,
    *,
    etags: dict[str, str] | None,
    began: float | None = None,
) -> None:
    headers = {"If-None-Match": etags[path]} if etags is not None and path in etags else {}
    began = time.perf_counter() if began is None else began
    try:
        response = await client.get(path, headers=headers)
    except (httpx.HTTPError, RawHttpError) as exc:
        outcomes.record(kind, time.perf_counter() - began, None, 0)
        outcomes.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
        return
    seconds = time.perf_counter() - began
    outcomes.record(kind, seconds, response.status_code, len(response.content))
    if response.status_code not in (200, 304):
        text = response.content[:200].decode(errors="replace")
        outcomes.errors.append(f"{kind}: {response.status_code} {text}")
    if etags is not None and "etag" in response.headers:
        etags[path] = response.headers["etag"]


class Sampler:
    """The API process's resident memory and descriptors, sampled every second."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.rss: list[int] = []
        self.fds: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling."""
        if self.pid is not None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self.pid is not None
        while True:
            self.rss.append(rss_bytes(self.pid))
            self.fds.append(open_fds(self.pid))
            await asyncio.sleep(1.0)

    async def stop(self) -> dict[str, Any]:
        """Stop sampling; the figures."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if not self.rss:
            return {}
        return {
            "rss_mib_start": mib(self.rss[0]),
            "rss_mib_end": mib(self.rss[-1]),
            "rss_mib_peak": mib(max(self.rss)),
            "fds_start": self.fds[0],
            "fds_end": self.fds[-1],
            "fds_peak": max(self.fds),
        }


def _client(url: str, token: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


async def _stats(url: str, *, reset: bool = False) -> dict[str, Any]:
    """The API's counters and timings (`reset`: then start a new timing window)."""
    async with httpx.AsyncClient(base_url=url, timeout=10, trust_env=False) as client:
        if reset:
            (await client.post("/_bench/reset")).raise_for_status()
        response = await client.get("/_bench/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _cost(cores: float | None, seconds: float, requests: int) -> float | None:
    """The API's CPU per request in ms, refresher included: what the machine's load cannot
    distort, and what sets the API's capacity (1,000 / it = requests a second per core)."""
    if cores is None or not requests:
        return None
    return round(cores * seconds / requests * 1000, 3)


def _meter(pid: int | None) -> CpuMeter | None:
    if pid is None:
        return None
    meter = CpuMeter(pid)
    meter.start()
    return meter


async def run_users(
    *,
    url: str,
    token: str,
    users: int,
    seconds: float,
    period: float,
    releases: list[str],
    etag: bool,
    api_pid: int | None = None,
    temporal_pid: int | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """`users` dashboard tabs polling for `seconds`; user n watches releases[n % len(releases)]."""
    clients = [_client(url, token, 2) for _ in range(users)]
    etag_stores: list[dict[str, str] | None] = [{} if etag else None for _ in range(users)]
    paths = [
        ("/api/releases", f"/api/releases/{releases[n % len(releases)]}/hierarchy")
        for n in range(users)
    ]
    warmup = Outcomes()

    async def warm(n: int) -> None:
        list_path, tree_path = paths[n]
        await _get(clients[n], list_path, warmup, "list", etags=etag_stores[n])
        await _get(clients[n], tree_path, warmup, "hierarchy", etags=etag_stores[n])

    began = time.perf_counter()
    await asyncio.gather(*(warm(n) for n in range(users)))
    warmup_seconds = time.perf_counter() - began

    outcomes = Outcomes()
    rng = random.Random(seed)
    offsets = [rng.uniform(0, period) for _ in range(users)]
    stats_before = await _stats(url, reset=True)
    load_before = load_average()
    meters = {
        "api": _meter(api_pid),
        "temporal": _meter(temporal_pid),
        "load_client": _meter(os.getpid()),
    }
    sampler = Sampler(api_pid)
    sampler.start()
    start = time.monotonic()
    end = start + seconds

    async def user(n: int) -> None:
        list_path, tree_path = paths[n]
        next_at = start + offsets[n]
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await _get(clients[n], list_path, outcomes, "list", etags=etag_stores[n])
            await _get(clients[n], tree_path, outcomes, "hierarchy", etags=etag_stores[n])
            next_at += period

    await asyncio.gather(*(user(n) for n in range(users)))
    elapsed = time.monotonic() - start
    cores = {name: round(m.cores(), 3) for name, m in meters.items() if m is not None}
    waiting = {name: round(m.waiting(), 3) for name, m in meters.items() if m is not None}
    memory = await sampler.stop()
    stats_after = await _stats(url)
    await asyncio.gather(*(c.aclose() for c in clients))
    calls = stats_after["temporal_calls"] - stats_before["temporal_calls"]
    cycles = stats_after["refresh_cycles"] - stats_before["refresh_cycles"]
    return {
        "users": users,
        "seconds": round(elapsed, 2),
        "period_s": period,
        "if_none_match": etag,
        "releases_watched": len(set(releases[n % len(releases)] for n in range(users))),
        "warmup": {"seconds": round(warmup_seconds, 2), **warmup.summary(warmup_seconds)},
        **outcomes.summary(elapsed),
        "temporal_calls": calls,
        "list_calls": stats_after["list_calls"] - stats_before["list_calls"],
        "describe_calls": stats_after["describe_calls"] - stats_before["describe_calls"],
        "refresh_cycles": cycles,
        "temporal_calls_per_cycle": ratio(calls, cycles),
        "temporal_calls_per_second": round(calls / elapsed, 3),
        "cores": cores,
        "api_cpu_ms_per_request": _cost(cores.get("api"), elapsed, outcomes.requests),
        "cpu_wait_seconds_per_second": waiting,
        "api_app_time_ms": stats_after.get("app_time_ms"),
        "api_loop_lag_ms": stats_after.get("loop_lag_ms"),
        "api_process": memory,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run_step(
    client: RawClient,
    url: str,
    path: str,
    rate: float,
    seconds: float,
    etags: dict[str, str] | None,
    api_pid: int | None,
) -> dict[str, Any]:
    """Requests at `rate` a second for `seconds`, on a fixed schedule; their figures."""
    outcomes = Outcomes()
    count = max(1, round(rate * seconds))
    await _stats(url, reset=True)
    api = _meter(api_pid)
    me = _meter(os.getpid())
    load_before = load_average()
    start = time.perf_counter() + 0.05
    finished_at: list[float] = []

    async def one(number: int) -> None:
        scheduled = start + number / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        await _get(client, path, outcomes, "hierarchy", etags=etags, began=scheduled)
        finished_at.append(time.perf_counter())

    await asyncio.gather(*(one(n) for n in range(count)))
    span = max(seconds, max(finished_at) - start)
    everything = outcomes.latencies.get("hierarchy", [])
    meters = {"api": api, "load_client": me}
    cores = {name: round(m.cores(), 3) for name, m in meters.items() if m is not None}
    waiting = {name: round(m.waiting(), 3) for name, m in meters.items() if m is not None}
    stats = await _stats(url)
    return {
        "offered_rps": rate,
        "achieved_rps": round(count / span, 2),
        "p95_ms": round(percentile(everything, 0.95) * 1000, 2),
        **outcomes.summary(span),
        "api_app_time_ms": stats.get("app_time_ms"),
        "api_loop_lag_ms": stats.get("loop_lag_ms"),
        "cores": cores,
        "api_cpu_ms_per_request": _cost(cores.get("api"), span, outcomes.requests),
        "cpu_wait_seconds_per_second": waiting,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run_steps(
    *,
    url: str,
    token: str,
    release: str,
    rates: list[float],
    step_seconds: float,
    etag: bool,
    p95_limit_ms: float,
    api_pid: int | None = None,
) -> dict[str, Any]:
    """Step the rate up until p95 > limit, an error, or the schedule is not kept (< 95 %).

    A step that fails is run once more before the series stops: on a machine shared with other
    work a burst elsewhere can spoil one step; a real limit fails twice. Both attempts are kept.
    """
    path = f"/api/releases/{release}/hierarchy"
    etags: dict[str, str] | None = {} if etag else None
    steps: list[dict[str, Any]] = []
    highest: float | None = None
    stopped_by = "the last step"
    target = urlsplit(url)
    client = RawClient(
        target.hostname or "127.0.0.1",
        target.port or 80,
        headers={"Authorization": f"Bearer {token}"},
        connections=256,
        timeout=REQUEST_TIMEOUT,
    )
    try:
        await _get(client, path, Outcomes(), "warmup", etags=etags)
        for rate in rates:
            problem = None
            for attempt in (1, 2):
                step = await run_step(client, url, path, rate, step_seconds, etags, api_pid)
                step["attempt"] = attempt
                steps.append(step)
                problem = _step_problem(step, rate, p95_limit_ms)
                await asyncio.sleep(1.0)  # let queues drain between steps
                if problem is None:
                    break
            if problem is not None:
                stopped_by = problem + " (twice)"
                break
            highest = rate
    finally:
        await client.aclose()
    return {
        "path": "/api/releases/{id}/hierarchy",
        "if_none_match": etag,
        "p95_limit_ms": p95_limit_ms,
        "step_seconds": step_seconds,
        "highest_sustained_rps": highest,
        "stopped_by": stopped_by,
        "steps": steps,
    }


def _step_problem(step: dict[str, Any], rate: float, p95_limit_ms: float) -> str | None:
    """Why a step does not count as sustained, or None."""
    if step["errors"]:
        return f"errors at {rate:g}/s"
    if step["p95_ms"] > p95_limit_ms:
        return f"p95 {step['p95_ms']:.0f} ms at {rate:g}/s"
    if step["achieved_rps"] < 0.95 * rate:
        return f"schedule not kept at {rate:g}/s ({step['achieved_rps']:.0f}/s)"
    return None


def main(argv: list[str]) -> None:
    """Run one load and write its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("users", "steps"):
        one = sub.add_parser(name)
        one.add_argument("--url", required=True)
        one.add_argument("--token", required=True)
        one.add_argument("--out", type=Path, required=True)
        one.add_argument("--etag", action="store_true")
        one.add_argument("--api-pid", type=int)
    users = sub.choices["users"]
    users.add_argument("--users", type=int, default=100)
    users.add_argument("--seconds", type=float, default=60.0)
    users.add_argument("--period", type=float, default=3.0)
    users.add_argument("--releases", required=True, help="comma-separated release IDs")
    users.add_argument("--temporal-pid", type=int)
    steps = sub.choices["steps"]
    steps.add_argument("--release", required=True)
    steps.add_argument("--rates", required=True, help="comma-separated requests per second")
    steps.add_argument("--step-seconds", type=float, default=10.0)
    steps.add_argument("--p95-limit-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    if args.mode == "users":
        result = asyncio.run(
            run_users(
                url=args.url,
                token=args.token,
                users=args.users,
                seconds=args.seconds,
                period=args.period,
                releases=args.releases.split(","),
                etag=args.etag,
                api_pid=args.api_pid,
                temporal_pid=args.temporal_pid,
            )
        )
    else:
        result = asyncio.run(
            run_steps(
                url=args.url,
                token=args.token,
                release=args.release,
                rates=[float(r) for r in args.rates.split(",")],
                step_seconds=args.step_seconds,
                etag=args.etag,
                p95_limit_ms=args.p95_limit_ms,
                api_pid=args.api_pid,
            )
        )
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
