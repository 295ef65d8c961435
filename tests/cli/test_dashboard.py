"""relmgr.cli.dashboard: where the dashboard is, and the command that applies its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from relmgr.cli import dashboard
from relmgr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_serves_its_own_dashboard() -> None:
    """In a checkout (no relmgr/_dashboard/), the entry point at the repository top is used."""
    found = dashboard.require_dashboard()
    assert found.entry_point == ROOT / "streamlit_app.py"
    assert found.config_file == ROOT / ".streamlit" / "config.toml"


def test_the_command_carries_every_option_of_the_config_file() -> None:
    """Each option of .streamlit/config.toml becomes a flag, so the settings do not depend on
    the directory Streamlit starts in; host and port come last."""
    argv = dashboard.streamlit_command(
        dashboard.require_dashboard(),
        host="0.0.0.0",  # noqa: S104 - only an argument here; nothing binds
        port=9000,
        python="/py",
    )
    # Streamlit through relmgr.ui.server: its outbound lookups are replaced before it serves.
    assert argv[:5] == ["/py", "-m", "relmgr.ui.server", "run", str(ROOT / "streamlit_app.py")]
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags["--runner.postScriptGC"] == "false"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--theme.dark.primaryColor"] == "#60a5fa"
    assert argv[-4:] == ["--server.address", "0.0.0.0", "--server.port", "9000"]  # noqa: S104


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    """A config file that is not TOML gives a ConfigError naming the file."""
    broken = tmp_path / "config.toml"
    broken.write_text("[server\nheadless = true\n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        dashboard.streamlit_flags(broken)


def test_an_installation_without_a_dashboard_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With neither an installed nor a checkout dashboard, the error says where it looked."""
    monkeypatch.setattr(dashboard, "_CANDIDATES", (tmp_path / "a", tmp_path / "b"))
    assert dashboard.find_dashboard() is None
    with pytest.raises(ConfigError, match="has no dashboard"):
        dashboard.require_dashboard()
