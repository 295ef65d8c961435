"""Where the dashboard is (an installed wheel or a checkout) and the `streamlit run` that serves it.

A wheel carries the dashboard in `relmgr/_dashboard/` (copied there by setup.py's build hook); a
checkout has it at the repository top. Its Streamlit settings (`.streamlit/config.toml`) are
passed to `streamlit run` as command-line flags, so they apply whatever directory the process
starts in: Streamlit itself only reads `.streamlit/config.toml` from the working directory, and
without it a process keeps ~25 refreshing sessions instead of 100 (`runner.postScriptGC`) and the
browser calls out (`browser.gatherUsageStats`).
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from relmgr.errors import ConfigError

ENTRY_POINT = "streamlit_app.py"
CONFIG_FILE = Path(".streamlit") / "config.toml"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # relmgr/: this file is relmgr/cli/dashboard.py
# Installed first: in a wheel, the package's parent is site-packages, which has no dashboard.
_CANDIDATES = (_PACKAGE_DIR / "_dashboard", _PACKAGE_DIR.parent)


@dataclass(frozen=True)
class DashboardFiles:
    """The dashboard's entry point and its Streamlit config file."""

    root: Path

    @property
    def entry_point(self) -> Path:
        """`streamlit_app.py`; its `pages/` are beside it."""
        return self.root / ENTRY_POINT

    @property
    def config_file(self) -> Path:
        """The Streamlit settings the dashboard is meant to run with."""
        return self.root / CONFIG_FILE


def find_dashboard() -> DashboardFiles | None:
    """The dashboard of this installation, or None if it has none (a bare package)."""
    for root in _CANDIDATES:
        if (root / ENTRY_POINT).is_file() and (root / "pages").is_dir():
            return DashboardFiles(root)
    return None


def _flatten(table: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    options: list[tuple[str, object]] = []
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            options += _flatten(value, f"{name}.")
        else:
            options.append((name, value))
    return options


def _flag_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def streamlit_flags(config_file: Path) -> list[str]:
    """`--section.option value` for every option in a Streamlit config file."""
    try:
        table = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the dashboard's {config_file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the dashboard's {config_file} is not valid TOML: {exc}") from None
    flags: list[str] = []
    for name, value in _flatten(table):
        flags += [f"--{name}", _flag_value(value)]
    return flags


def streamlit_command(
    dashboard: DashboardFiles, *, host: str, port: int, python: str = sys.executable
) -> list[str]:
    """The argv that serves `dashboard` on host:port with its own Streamlit settings."""
    return [
        python,
        "-m",
        "relmgr.ui.server",  # Streamlit's CLI, with relmgr's workarounds in place first
        "run",
        str(dashboard.entry_point),
        *streamlit_flags(dashboard.config_file),
        "--server.address",
        host,
        "--server.port",
        str(port),
    ]


def require_dashboard() -> DashboardFiles:
    """The dashboard, or a ConfigError saying that this installation has none."""
    found = find_dashboard()
    if found is None:
        raise ConfigError(
            f"this relmgr installation has no dashboard ({ENTRY_POINT} is neither in "
            f"{_CANDIDATES[0]} nor in {_CANDIDATES[1]}); install relmgr from its wheel or run "
            "from a checkout"
        )
    return found
