"""`python -m bench --quick` end to end: every figure is produced, consistent and sane.

It checks that the harness works (processes start and stop, counts add up, ratios are computed
from the figures they name), never that a target is met: the quick run's release is small and
its windows last seconds, on whatever machine CI has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.harness import Config

ROOT = Path(__file__).resolve().parents[2]
QUICK = Config.quick_mode()

pytestmark = [pytest.mark.integration, pytest.mark.bench, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One quick run for every test of this module: its JSON figures and its Markdown report."""
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--out",
            str(out / "PERFORMANCE.md"),
            "--json",
            str(out / "performance.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "performance.json").read_text()), (out / "PERFORMANCE.md").read_text()


def _ordered(latency: dict[str, float]) -> bool:
    return 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]


def test_the_run_records_its_machine_command_and_load(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """The report says where, when and how the figures were taken."""
    meta = quick_run[0]["meta"]
    assert meta["quick"] is True
    assert meta["command"] == "python -m bench --quick"
    assert meta["machine"]["nproc"] >= 1
    assert meta["machine"]["cpu_model"]
    assert len(meta["load_average_at_start"]) == 3
    assert len(meta["load_average_at_end"]) == 3


def test_the_release_has_the_planned_number_of_workflows(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """The large release is started whole, and the cold reads see every workflow of it."""
    results = quick_run[0]
    entities = QUICK.shape.entities
    assert results["setup"]["large_release_entities"] == entities
    assert results["setup"]["small_releases"] == QUICK.small_releases
    assert results["cold"]["raw_list_rows"] == entities
    assert results["cold"]["hierarchy_entities_started"] == entities
    assert results["fanout"]["entities_answered"] == entities


def test_ratios_are_computed_from_the_figures_they_name(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """cold/raw and fan-out/cold are the medians' ratios, rounded."""
    cold, fanout = quick_run[0]["cold"], quick_run[0]["fanout"]
    raw, tree = cold["raw_list_ms"]["median"], cold["cold_hierarchy_ms"]["median"]
    assert raw > 0
    assert tree > 0
    # The ratio is taken before the medians are rounded for the report.
    assert cold["cold_over_raw_ratio"] == pytest.approx(tree / raw, abs=0.002)
    assert fanout["fanout_over_cold_ratio"] == round(fanout["fanout_ms"]["median"] / tree, 1)


@pytest.mark.parametrize(
    ("phase", "users", "etag"),
    [
        ("full_100", QUICK.users, False),
        ("etag_100", QUICK.users, True),
        ("etag_10", QUICK.compare_users, True),
    ],
)
def test_each_load_phase_adds_up(
    quick_run: tuple[dict[str, Any], str], phase: str, users: int, etag: bool
) -> None:
    """Requests = the statuses' sum, all answered 200/304, latencies ordered, calls per cycle."""
    figures = quick_run[0]["api_load"][phase]
    assert figures["users"] == users
    assert figures["if_none_match"] is etag
    assert figures["requests"] == sum(figures["statuses"].values()) > 0
    assert set(figures["statuses"]) <= {"200", "304"}
    assert figures["errors"] == 0
    assert _ordered(figures["latency"])
    assert figures["refresh_cycles"] > 0
    assert figures["temporal_calls_per_cycle"] == round(
        figures["temporal_calls"] / figures["refresh_cycles"], 3
    )
    assert figures["api_process"]["rss_mib_peak"] > 0
    if etag:
        assert figures["statuses"].get("304", 0) > 0


def test_saturation_steps_up_until_a_limit(quick_run: tuple[dict[str, Any], str]) -> None:
    """Each series offers rising rates and names its highest sustained rate among them."""
    for name, rates in (("full_body", QUICK.rates), ("not_modified", QUICK.etag_rates)):
        series = quick_run[0]["saturation"][name]
        offered = [step["offered_rps"] for step in series["steps"]]
        distinct = list(dict.fromkeys(offered))
        assert distinct == list(rates[: len(distinct)])
        assert all(offered.count(rate) <= 2 for rate in distinct)  # a failed step runs twice
        assert series["highest_sustained_rps"] in (None, *distinct)
        assert all(
            step["requests"] == round(step["offered_rps"] * QUICK.step_seconds)
            for step in series["steps"]
        )


def test_freshness_and_server_cpu_are_measured(quick_run: tuple[dict[str, Any], str]) -> None:
    """Freshness over the planned samples; server CPU with and without watchers."""
    fresh = quick_run[0]["freshness_api"]
    assert fresh["samples"] == QUICK.freshness_samples
    assert 0 < fresh["p50_s"] <= fresh["p95_s"] <= fresh["max_s"]
    cpu = quick_run[0]["server_cpu"]
    assert cpu["releases_watched"] == QUICK.many
    assert cpu["server_cores_watched"] > 0
    assert cpu["server_cores_unwatched"] > 0
    assert cpu["server_cores_added_by_relmgr"] == pytest.approx(
        cpu["server_cores_watched"] - cpu["server_cores_unwatched"], abs=0.002
    )
    assert cpu["errors"] == 0


def test_browser_figures_are_measured_or_the_reason_is_given(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """With Chromium: render, refresh, freshness and sessions; without: why not."""
    found = quick_run[0]["browser"]
    if "skipped" in found:
        assert found["skipped"]
        return
    assert 0 < found["render"]["median_s"] <= found["render"]["max_s"]
    assert found["render"]["first_s"] > 0
    assert found["refresh"]["cycles"] >= 1
    assert found["freshness"]["samples"] == QUICK.browser_freshness_samples
    assert found["sessions"]["opened"] == found["sessions"]["requested"] == QUICK.sessions
    assert found["sessions"]["session_errors"] == 0
    assert found["sessions"]["streamlit_rss_mib"] > 0


def test_every_target_is_judged_and_reported(quick_run: tuple[dict[str, Any], str]) -> None:
    """Nine targets, each met, missed or not measured; the report shows each section."""
    results, report = quick_run
    targets = results["targets"]
    assert len(targets) == 9
    for target in targets:
        assert target["met"] in (True, False, None)
        assert (target["measured"] is None) == (target["met"] is None)
    measured_without_browser = [
        t for t in targets if not t["id"].startswith(("browser", "freshness_b"))
    ]
    assert all(t["met"] is not None for t in measured_without_browser)
    for heading in (
        "# Performance",
        "## Targets",
        "## 1. Cold",
        "## 2. The API",
        "## 3. Saturation",
        "## 4. Freshness",
        "## 5. The browser",
        "## 6. Temporal server CPU",
        "## 7. Memory",
    ):
        assert heading in report
