"""`python -m bench.big_release` end to end on a small release: every figure is produced, the
dashboard's render in Chromium included, and sane (never judged against a target)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.browser import unavailable

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.bench, pytest.mark.timeout(420)]


@pytest.mark.skipif(unavailable() is not None, reason=f"no browser figures: {unavailable()}")
def test_a_small_big_release_run_measures_the_api_and_the_dashboard(tmp_path: Path) -> None:
    """A 2 x 3 x 2 release (27 workflows): the cold and warm tree, and the release page in
    Chromium (a first view, two from a link, two from the release picker), all positive and ordered;
    the Markdown section names the render figures."""
    figures_path, document = tmp_path / "big.json", tmp_path / "PERFORMANCE.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.big_release",
            *("--waves", "2", "--clusters", "3", "--apps", "2", "--seconds", "1"),
            "--quick-browser",
            *("--json", str(figures_path), "--markdown", str(document)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["entities"] == 1 + 2 + 2 * 6 + 12
    assert figures["cold"]["seconds"] > 0
    page = figures["dashboard"]
    assert (page["views"], page["in_app_views"]) == (2, 2)
    assert 0 < page["median_s"] <= page["max_s"] < 60
    assert 0 < page["in_app_median_s"] <= page["in_app_max_s"] < 60
    assert 0 < page["first_s"] < 60
    assert page["sign_in_s"] > 0
    assert page["streamlit_rss_mib"] > 0
    section = document.read_text()
    assert section.startswith("\n\n## Big release through the API (27 entities)")
    assert f"| {page['first_s']} / {page['median_s']} / {page['in_app_median_s']} s" in section
    assert f"| Streamlit RSS after those views | {page['streamlit_rss_mib']} MiB |" in section
