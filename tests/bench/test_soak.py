"""`python -m bench.soak` in its short mode: it runs, counts, and appends one consistent record.

The 10-minute soak is a documented command (bench/README.md); here the same code runs for 45 s
with a small release, 20 API users and 2 dashboard sessions, to show that it measures what it
says. Memory growth over 45 s is reported but not judged here: the first minute is warm-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.bench, pytest.mark.timeout(240)]


def test_a_short_soak_appends_a_consistent_record_with_no_errors(tmp_path: Path) -> None:
    """Every request answers 200/304, the figures add up, and the verdict names what failed."""
    log = tmp_path / "soak.jsonl"
    log.write_text('{"earlier": "run"}\n')
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--minutes",
            "0.75",
            "--users",
            "20",
            "--sessions",
            "2",
            "--small",
            "--log",
            str(log),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    lines = log.read_text().splitlines()
    assert len(lines) == 2, completed.stderr[-3000:]
    assert json.loads(lines[0]) == {"earlier": "run"}
    record = json.loads(lines[1])
    assert record["minutes"] == 0.75
    assert record["users"] == 20
    assert record["errors"] == record["http_errors"] + record["session_errors"] == 0
    # 20 users x 2 requests every 3 s for 45 s, with one round's slack for phases.
    assert 20 * 2 * 14 <= record["requests"] <= 20 * 2 * 16
    assert record["baseline_at_s"] >= 20
    assert 0 < record["rss_mib_minute_1"] <= record["rss_mib_peak"]
    assert record["rss_mib_end"] <= record["rss_mib_peak"]
    assert record["rss_growth_percent"] == pytest.approx(
        (record["rss_mib_end"] - record["rss_mib_minute_1"]) / record["rss_mib_minute_1"] * 100,
        abs=0.2,
    )
    assert record["fds_idle_before"] > 0
    assert record["fds_start"] > record["fds_idle_before"]  # the users' connections
    if record["sessions"]:
        assert record["session_reruns"] >= 2
    if record["verdict"] == "pass":
        assert completed.returncode == 0
    else:
        assert completed.returncode == 1
        assert record["verdict"].startswith("FAIL: ")
