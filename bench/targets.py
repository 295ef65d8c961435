"""Issue 6's targets, checked against a run's figures: met, missed, or not measured (None)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Figures = dict[str, Any]


def _get(results: Figures, *path: str) -> Any:
    current: Any = results
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current


def _target(
    key: str,
    wanted: str,
    measured: Any,
    check: Callable[[Any], bool],
    shown: Callable[[Any], str],
    load: Any = None,
) -> dict[str, Any]:
    met = None if measured is None else bool(check(measured))
    return {
        "id": key,
        "target": wanted,
        "measured": None if measured is None else shown(measured),
        "met": met,
        "load_average": load,
    }


def evaluate(results: Figures) -> list[dict[str, Any]]:
    """One entry per target, in the order issue 6 lists them."""
    found: list[dict[str, Any]] = []
    for phase, label in (("full_100", "without"), ("etag_100", "with")):
        p95 = _get(results, "api_load", phase, "latency", "p95_ms")
        errors = _get(results, "api_load", phase, "errors")
        users = _get(results, "api_load", phase, "users")
        found.append(
            _target(
                f"api_p95_{phase}",
                f"API p95 < 100 ms and 0 errors, {users or 100} users {label} If-None-Match",
                None if p95 is None else (p95, errors),
                lambda v: v[0] < 100 and v[1] == 0,
                lambda v: f"p95 {v[0]:.1f} ms, {v[1]} errors",
                _get(results, "api_load", phase, "load_average_after"),
            )
        )
    found.append(
        _target(
            "cold_vs_raw",
            "cold full hierarchy within 1.2x of the raw list",
            _get(results, "cold", "cold_over_raw_ratio"),
            lambda v: v <= 1.2,
            lambda v: f"{v:.2f}x",
            _get(results, "cold", "load_average"),
        )
    )
    found.append(
        _target(
            "fanout_vs_cold",
            "cold full hierarchy >= 10x faster than the fan-out",
            _get(results, "fanout", "fanout_over_cold_ratio"),
            lambda v: v >= 10,
            lambda v: f"{v:.1f}x faster",
            _get(results, "fanout", "load_average"),
        )
    )
    found.append(
        _target(
            "freshness_api",
            "freshness p95 < 3.5 s through the API",
            _get(results, "freshness_api", "p95_s"),
            lambda v: v < 3.5,
            lambda v: f"p95 {v:.2f} s",
            _get(results, "freshness_api", "load_average_after"),
        )
    )
    found.append(
        _target(
            "freshness_browser",
            "freshness p95 < 5 s in the browser",
            _get(results, "browser", "freshness", "p95_s"),
            lambda v: v < 5,
            lambda v: f"p95 {v:.2f} s",
            _get(results, "browser", "freshness", "load_average_after"),
        )
    )
    found.append(
        _target(
            "browser_render",
            f"{_get(results, 'setup', 'large_release_entities') or 1206:,}-entity release page "
            "rendered in the browser in < 2 s",
            _get(results, "browser", "render", "median_s"),
            lambda v: v < 2,
            lambda v: f"median {v:.2f} s",
            _get(results, "browser", "render", "load_average"),
        )
    )
    many = _get(results, "api_load", "etag_100", "temporal_calls_per_cycle")
    few = _get(results, "api_load", "etag_10", "temporal_calls_per_cycle")
    many_users = _get(results, "api_load", "etag_100", "users")
    few_users = _get(results, "api_load", "etag_10", "users")
    found.append(
        _target(
            "calls_independent_of_users",
            f"Temporal calls per refresh cycle the same for {many_users or 100} users as for "
            f"{few_users or 10}",
            None if many is None or few is None else (many, few),
            lambda v: v[0] <= v[1] + 0.1,
            lambda v: f"{v[0]} calls/cycle with {many_users} users, {v[1]} with {few_users}",
            _get(results, "api_load", "etag_10", "load_average_after"),
        )
    )
    found.append(
        _target(
            "server_cpu",
            "< 0.5 core of Temporal server CPU while "
            f"{_get(results, 'server_cpu', 'releases_watched') or 10} large releases are watched",
            _get(results, "server_cpu", "server_cores_watched"),
            lambda v: v < 0.5,
            lambda v: (
                f"{v:.3f} core in all "
                f"({_get(results, 'server_cpu', 'server_cores_added_by_relmgr')} added by relmgr)"
            ),
            _get(results, "server_cpu", "load_average_after"),
        )
    )
    return found
