"""The wheel carries the dashboard: built from the sources, installed in a fresh virtualenv outside
the checkout, `relmgr dashboard` serves it with its own Streamlit settings, and a user signs in
through Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from relmgr.testing.processes import stop_process
from tests.browser.conftest import LOAD_TIMEOUT_MS, expect_page_title, sign_in, wait_for_cookie
from tests.deploy.conftest import Backend, ServerSpec, start_servers

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
# What a source distribution of relmgr holds; the wheel is built from a copy of only these, so
# that nothing left in the checkout (build/, caches) can slip into it.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "streamlit_app.py", ".streamlit/config.toml")
SOURCE_DIRS = ("relmgr", "pages")
DASHBOARD = "relmgr/_dashboard"


@dataclass(frozen=True)
class Installed:
    """The built wheel and the virtualenv it is installed in."""

    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        """The virtualenv's interpreter."""
        return self.venv / "bin" / "python"


def _run(command: list[str | Path], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """relmgr built as a wheel (pip wheel, no build isolation: offline and quick) and installed
    with --no-deps in a new virtualenv whose dependencies come from the project's own, through a
    .pth file; the checkout is on no path of it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in SOURCES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source], work)
    built = time.monotonic()
    (wheel,) = dist.glob("relmgr-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], work)
    site_packages = Path(
        subprocess.check_output(
            [
                venv / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            text=True,
        ).strip()
    )
    (site_packages / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps", "-q", wheel], work)
    print(
        f"\n[wheel] built in {built - started:.1f} s, installed in {time.monotonic() - built:.1f} s"
    )
    return Installed(wheel, venv)


def test_the_wheel_carries_the_dashboard(installed: Installed) -> None:
    """Entry point, every page and the Streamlit config are in the wheel, under relmgr/."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    pages = {f"{DASHBOARD}/pages/{page.name}" for page in (ROOT / "pages").glob("*.py")}
    expected = {f"{DASHBOARD}/streamlit_app.py", f"{DASHBOARD}/.streamlit/config.toml", *pages}
    assert len(pages) >= 3
    assert expected <= names, sorted(expected - names)
    assert not any("secrets.toml" in name for name in names)


def test_the_installed_relmgr_is_the_virtualenvs_copy(installed: Installed, tmp_path: Path) -> None:
    """Run from elsewhere, `relmgr`, its dashboard and the dashboard `relmgr dev` would start
    all resolve inside the virtualenv."""
    script = (
        "import relmgr, relmgr.cli.dashboard as d\n"
        "from pathlib import Path\n"
        "from relmgr.cli.dev.children import ui_command\n"
        "from relmgr.cli.dev.config import DevConfig\n"
        "print(relmgr.__file__)\n"
        "print(d.require_dashboard().entry_point)\n"
        "print(ui_command(DevConfig(data_dir=Path('x')), d.require_dashboard())[4])\n"
    )
    found = subprocess.check_output(
        [installed.python, "-c", script], cwd=tmp_path, text=True, env={"PATH": "/usr/bin:/bin"}
    ).split()
    venv = str(installed.venv.resolve())
    assert found[0].startswith(venv), found
    for entry_point in found[1:]:
        assert entry_point.startswith(venv)
        assert entry_point.endswith(f"{DASHBOARD}/streamlit_app.py")


@pytest.fixture
def served(installed: Installed, backend: Backend, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`relmgr dashboard` of the virtualenv, started in an empty directory; (URL, PID)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        [server] = start_servers(
            [
                ServerSpec(
                    command=[installed.venv / "bin" / "relmgr", "dashboard"],
                    env=backend.dashboard_env(),
                    cwd=tmp_path,
                    log_file=tmp_path / "dashboard.log",
                )
            ],
            started,
        )
        url, process = server.url, server.process
        yield url, process.pid
    finally:
        for process in started:
            stop_process(process)


def test_relmgr_dashboard_from_the_wheel_serves_and_signs_in(
    served: tuple[str, int], installed: Installed, backend: Backend, chromium: Browser
) -> None:
    """The installed dashboard runs the wheel's copy with the shipped Streamlit settings (no GC
    after each run, no usage statistics), and a user signs in and sees the release list."""
    url, pid = served
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    venv = str(installed.venv.resolve())
    # relmgr became Streamlit (exec), through relmgr.ui.server so its outbound lookups are off
    assert argv[1:4] == ["-m", "relmgr.ui.server", "run"], argv
    assert argv[4].startswith(venv)
    assert argv[4].endswith(f"{DASHBOARD}/streamlit_app.py")
    flags = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert flags["--runner.postScriptGC"] == "false"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.fileWatcherType"] == "none"
    assert flags["--client.showErrorDetails"] == "none"

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(url, timeout=LOAD_TIMEOUT_MS)
        sign_in(page, backend)  # type: ignore[arg-type]  # needs only .account
        expect(page.get_by_text("Signed in as")).to_be_visible()
        wait_for_cookie(page)
        # The list is a canvas grid; the release's own page shows its ID as text.
        page.goto(f"{url}/release?release={backend.release_id}", timeout=LOAD_TIMEOUT_MS)
        expect_page_title(page, f"Release {backend.release_id}")
        expect(page.get_by_text(re.compile(r"^\s*SUCCEEDED\s+waves 1/1")).first).to_be_visible()
    finally:
        context.close()
