"""The API as `relmgr api` serves it, plus bench-only routes: the reader's counters and a profiler.

    python -m bench.api_app --host 127.0.0.1 --port 8123      (settings from RELMGR_* variables)

The app is `relmgr.api.create_app(settings)` unchanged: its lifespan connects the production
reader (`create_reader`) and starts the shared refresher, exactly as in production. The harness
adds, on this process only:

- `GET /_bench/stats`: the reader's Temporal calls and refresh cycles (which must follow the
  refresher, not the users), the time the app took per request (from the ASGI call to the last
  body byte handed to the server), and the event loop's lag (how late a 10 ms sleep wakes up:
  anything that blocks the loop, or a CPU the process had to wait for); `POST /_bench/reset`
  starts a new window for the last two;
- `POST /_bench/profile/{start,stop}`: cProfile of the event-loop thread, where every request
  and the refresher run.

uvicorn runs with `serve()`'s options.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import resource
import sys
import time
from collections import deque
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.stats import percentile
from relmgr.api import create_app
from relmgr.settings import get_settings

_profiler: cProfile.Profile | None = None
_WINDOW = 200_000  # samples kept per measure; a 60 s window at 100 users holds ~4,000
LAG_PROBE_SECONDS = 0.01


class Timings:
    """Per-request app time and event-loop lag since the last reset."""

    def __init__(self) -> None:
        self.requests: deque[float] = deque(maxlen=_WINDOW)
        self.lags: deque[float] = deque(maxlen=_WINDOW)
        self._probe: asyncio.Task[None] | None = None

    def ensure_probe(self) -> None:
        """Start the lag probe on the running loop (once)."""
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._measure_lag())

    async def _measure_lag(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.lags.append(time.perf_counter() - began - LAG_PROBE_SECONDS)

    def reset(self) -> None:
        """Start a new window."""
        self.requests.clear()
        self.lags.clear()

    def summary(self) -> dict[str, Any]:
        """Percentiles in ms."""

        def ms(values: deque[float], share: float) -> float:
            return round(percentile(list(values), share) * 1000, 2)

        return {
            "app_time_ms": {
                "count": len(self.requests),
                "p50": ms(self.requests, 0.5),
                "p95": ms(self.requests, 0.95),
                "p99": ms(self.requests, 0.99),
                "max": round(max(self.requests, default=0.0) * 1000, 2),
            },
            "loop_lag_ms": {
                "count": len(self.lags),
                "p50": ms(self.lags, 0.5),
                "p99": ms(self.lags, 0.99),
                "max": round(max(self.lags, default=0.0) * 1000, 2),
            },
        }


TIMINGS = Timings()


class TimingMiddleware:
    """Outermost ASGI middleware: the app's time per HTTP request, to the last body byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_bench/"):
            await self.app(scope, receive, send)
            return
        TIMINGS.ensure_probe()
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                TIMINGS.requests.append(time.perf_counter() - began)

        await self.app(scope, receive, timed_send)


def _reader_stats(request: Request) -> dict[str, Any]:
    reader = request.app.state.api.reader
    if reader is None:
        return {"connected": False}
    stats = reader.stats()
    cache = getattr(reader, "cache", None)
    return {
        "connected": True,
        "temporal_calls": stats.temporal_calls,
        "list_calls": stats.list_calls,
        "count_calls": stats.count_calls,
        "describe_calls": stats.describe_calls,
        "query_calls": stats.query_calls,
        "watched_releases": stats.watched_releases,
        "refresh_cycles": getattr(cache, "cycles", None),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        **TIMINGS.summary(),
    }


def build_app() -> FastAPI:
    """The production app with the bench routes added (not part of its OpenAPI)."""
    app = create_app(get_settings())

    async def stats(request: Request) -> dict[str, Any]:
        return _reader_stats(request)

    async def reset() -> dict[str, bool]:
        TIMINGS.ensure_probe()
        TIMINGS.reset()
        return {"reset": True}

    async def profile_start() -> dict[str, bool]:
        global _profiler
        _profiler = cProfile.Profile()
        _profiler.enable()
        return {"profiling": True}

    async def profile_stop(path: str = "", top: int = 40) -> dict[str, str]:
        global _profiler
        profiler, _profiler = _profiler, None
        if profiler is None:
            return {"report": ""}
        profiler.disable()
        if path:
            profiler.dump_stats(path)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
        own = io.StringIO()
        pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(top)
        return {"cumulative": text.getvalue(), "tottime": own.getvalue()}

    app.add_api_route("/_bench/stats", stats, methods=["GET"], include_in_schema=False)
    app.add_api_route("/_bench/reset", reset, methods=["POST"], include_in_schema=False)
    app.add_api_route(
        "/_bench/profile/start", profile_start, methods=["POST"], include_in_schema=False
    )
    app.add_api_route(
        "/_bench/profile/stop", profile_stop, methods=["POST"], include_in_schema=False
    )
    app.add_middleware(TimingMiddleware)
    return app


def main(argv: list[str]) -> None:
    """Serve the bench app the way `relmgr.api.server.serve` serves the real one."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
