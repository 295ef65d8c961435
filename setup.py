"""Build hook: the dashboard (streamlit_app.py, pages/, .streamlit/config.toml) goes into the wheel.

The entry point and the pages stay at the repository top, where `streamlit run streamlit_app.py`
finds them in a checkout; a wheel carries a copy of them in `relmgr/_dashboard/`, which
`relmgr.cli.dashboard` finds first when relmgr is installed. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What the dashboard is made of, relative to the repository top (and to relmgr/_dashboard/).
DASHBOARD_FILES = ("streamlit_app.py", ".streamlit/config.toml")
DASHBOARD_DIRS = ("pages",)


class BuildWithDashboard(build_py):
    """`build_py`, plus a copy of the dashboard into the built package's `_dashboard/`."""

    def run(self) -> None:
        super().run()
        # An editable install runs from the checkout, where the dashboard already is.
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "relmgr" / "_dashboard"
        if target.exists():  # a reused build/ must not ship a page deleted since
            shutil.rmtree(target)
        for name in DASHBOARD_FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
        for name in DASHBOARD_DIRS:
            shutil.copytree(
                ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )


setup(cmdclass={"build_py": BuildWithDashboard})
