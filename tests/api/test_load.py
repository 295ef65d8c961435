"""100 simulated scripts polling the API every 3 s against a real uvicorn process: no errors.

Prints latency figures (p50/p95/p99) instead of asserting on time. The default run is short (two
polls per user); set RELMGR_API_LOAD_SECONDS for a longer one, e.g.:

    RELMGR_API_LOAD_SECONDS=60 .venv/bin/pytest tests/api/test_load.py -s
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from pathlib import Path

import httpx

from tests.api.served import serve_in_subprocess

USERS = 100
POLL_SECONDS = 3.0
DURATION = float(os.environ.get("RELMGR_API_LOAD_SECONDS", "6"))
PASSWORD = "load-password-1"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _user(
    client: httpx.AsyncClient,
    number: int,
    deadline: float,
    latencies: dict[str, list[float]],
    statuses: dict[int, int],
) -> None:
    # Half the users send If-None-Match like a well-behaved poller; half always fetch full bodies.
    conditional = number % 2 == 0
    etags: dict[str, str] = {}
    release = ("rel-demo", "rel-payments", "rel-old")[number % 3]
    urls = ["/api/releases", f"/api/releases/{release}/hierarchy"]
    await asyncio.sleep(random.uniform(0, POLL_SECONDS))
    while time.monotonic() < deadline:
        started_round = time.monotonic()
        for url in urls:
            headers = {"If-None-Match": etags[url]} if conditional and url in etags else {}
            began = time.perf_counter()
            response = await client.get(url, headers=headers)
            latencies["etag" if conditional else "full"].append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if "etag" in response.headers:
                etags[url] = response.headers["etag"]
        await asyncio.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started_round)))


async def test_hundred_pollers_get_no_errors(tmp_path: Path) -> None:
    """100 users x (list + hierarchy) every 3 s: every answer is 200 or 304; figures printed."""
    with serve_in_subprocess(tmp_path, PASSWORD) as served:
        limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
        async with httpx.AsyncClient(
            base_url=served.url, limits=limits, timeout=10, trust_env=False
        ) as client:
            login = await client.post(
                "/api/auth/login", data={"username": "admin", "password": PASSWORD}
            )
            client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            latencies: dict[str, list[float]] = {"etag": [], "full": []}
            statuses: dict[int, int] = {}
            deadline = time.monotonic() + DURATION
            cpu_before = served.cpu_seconds()
            await asyncio.gather(
                *(_user(client, n, deadline, latencies, statuses) for n in range(USERS))
            )
            cpu = served.cpu_seconds() - cpu_before
    everything = latencies["etag"] + latencies["full"]
    print(f"\n{len(everything)} requests in {DURATION:g} s from {USERS} users; statuses {statuses}")
    # Server CPU is what the machine's load cannot distort: the latencies below include waiting
    # for a core whenever other processes compete for the two.
    print(
        f"  server CPU {cpu:.2f} s = {cpu / len(everything) * 1000:.2f} ms per request, "
        f"{cpu / DURATION * 100:.1f} % of one core"
    )
    for name, values in (("all", everything), *latencies.items()):
        print(
            f"  {name:5s} p50 {statistics.median(values) * 1000:6.1f} ms"
            f"  p95 {_percentile(values, 0.95) * 1000:6.1f} ms"
            f"  p99 {_percentile(values, 0.99) * 1000:6.1f} ms"
            f"  max {max(values) * 1000:6.1f} ms"
        )
    assert set(statuses) <= {200, 304}
    assert statuses.get(304, 0) > 0
    assert len(everything) >= USERS * 2
