"""Helpers of the `relmgr` command's tests: free ports, the command line, a child's environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def relmgr_command(*args: str) -> list[str]:
    """`python -m relmgr ARGS` with this interpreter."""
    return [sys.executable, "-m", "relmgr", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a `relmgr` child: no RELMGR_* from outside, relmgr importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELMGR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env
