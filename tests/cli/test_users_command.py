"""`relmgr users add`: a bcrypt hash in the users file, the password from stdin, never stored."""

from __future__ import annotations

import io
import stat
import subprocess
from pathlib import Path

import pytest

from relmgr.auth.users import load_users, revoke_sessions, session_epoch, verify_password
from relmgr.cli import main as cli
from relmgr.errors import ConfigError
from tests.cli.support import REPO_ROOT, relmgr_command, subprocess_env

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """bcrypt's cheapest cost: these tests are about the command, not about the hash's cost."""
    monkeypatch.setattr("relmgr.auth.users.BCRYPT_ROUNDS", 4)


def _add(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str, username: str = "alice") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(["users", "add", username, "--email", "alice@example.com", *args])


def test_password_from_stdin_is_stored_as_bcrypt_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file holds a bcrypt hash that verifies, the role given, and never the plaintext."""
    users_file = tmp_path / "users.yaml"
    status = _add(
        monkeypatch,
        PASSWORD + "\n",
        "--name",
        "Alice",
        "--role",
        "admin",
        "--password-stdin",
        "--users-file",
        str(users_file),
    )

    assert status == 0
    text = users_file.read_text()
    assert PASSWORD not in text
    assert "password: $2b$04$" in text
    users = load_users(users_file)
    user = verify_password(users, "alice", PASSWORD)
    assert user is not None
    assert (user.email, user.name, user.roles) == ("alice@example.com", "Alice", ("admin",))
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    assert f"alice (admin) saved in {users_file}" in capsys.readouterr().err


def test_users_file_comes_from_relmgr_users_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --users-file the user goes to RELMGR_USERS_FILE, as a viewer by default."""
    users_file = tmp_path / "from-env.yaml"
    monkeypatch.setenv("RELMGR_USERS_FILE", str(users_file))

    assert _add(monkeypatch, PASSWORD, "--name", "Alice", "--password-stdin") == 0

    user = verify_password(load_users(users_file), "alice", PASSWORD)
    assert user is not None
    assert user.roles == ("viewer",)


def test_adding_again_replaces_the_password_and_keeps_other_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second `users add` of the same name changes its hash; other users stay."""
    users_file = str(tmp_path / "users.yaml")
    common = ["--name", "N", "--password-stdin", "--users-file", users_file]
    assert _add(monkeypatch, PASSWORD, *common) == 0
    assert _add(monkeypatch, PASSWORD, *common, username="bob") == 0
    assert _add(monkeypatch, "another-password", *common) == 0

    users = load_users(Path(users_file))
    assert sorted(users.users) == ["alice", "bob"]
    assert verify_password(users, "alice", PASSWORD) is None
    assert verify_password(users, "alice", "another-password") is not None
    assert verify_password(users, "bob", PASSWORD) is not None


def test_short_password_is_refused_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password under 8 characters gets exit 1 and a one-line reason; no file appears."""
    users_file = tmp_path / "users.yaml"
    status = _add(
        monkeypatch, "short\n", "--name", "A", "--password-stdin", "--users-file", str(users_file)
    )

    err = capsys.readouterr().err
    assert status == 1
    assert err == "relmgr users add: password must be at least 8 characters\n"
    assert not users_file.exists()


def test_without_password_stdin_and_no_terminal_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Piped input without --password-stdin is refused rather than silently read."""
    users_file = tmp_path / "users.yaml"
    status = _add(monkeypatch, PASSWORD, "--name", "A", "--users-file", str(users_file))

    assert status == 2
    assert "give the password on stdin with --password-stdin" in capsys.readouterr().err
    assert not users_file.exists()


def test_bad_role_is_an_argparse_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role must be viewer, operator or admin; the message names them."""
    status = _add(monkeypatch, PASSWORD, "--name", "A", "--role", "root", "--password-stdin")

    assert status == 2
    assert "'root' is not a role; use one of viewer, operator, admin" in capsys.readouterr().err


def test_real_stdin_of_the_console_command(tmp_path: Path) -> None:
    """`python -m relmgr users add ... --password-stdin` reads a piped password."""
    users_file = tmp_path / "users.yaml"
    done = subprocess.run(
        relmgr_command(
            "users",
            "add",
            "carol",
            "--email",
            "c@example.com",
            "--name",
            "Carol",
            "--password-stdin",
        ),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=subprocess_env(RELMGR_USERS_FILE=str(users_file)),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert verify_password(load_users(users_file), "carol", PASSWORD) is not None
    assert PASSWORD not in users_file.read_text()


# --- users remove / revoke, and atomic writes ----------------------------------------------------


def _alice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    users_file = tmp_path / "users.yaml"
    args = ["--name", "Alice", "--password-stdin", "--users-file", str(users_file)]
    assert _add(monkeypatch, PASSWORD + "\n", *args) == 0
    return users_file


def test_revoke_changes_the_users_session_epoch_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`users revoke alice` counts her session generation up (a new epoch), keeping her password;
    a second revoke gives yet another epoch."""
    users_file = _alice(tmp_path, monkeypatch)
    before = load_users(users_file).users["alice"]
    assert cli.main(["users", "revoke", "alice", "--users-file", str(users_file)]) == 0
    after = load_users(users_file).users["alice"]
    assert after.session_generation == before.session_generation + 1
    assert after.password == before.password
    assert session_epoch(after) != session_epoch(before)
    assert "every session and token of alice ends" in capsys.readouterr().err
    assert cli.main(["users", "revoke", "alice", "--users-file", str(users_file)]) == 0
    again = load_users(users_file).users["alice"]
    assert session_epoch(again) not in {session_epoch(before), session_epoch(after)}
    # Setting a new password later keeps the count (a revoke is never undone).
    args = ["--name", "Alice", "--password-stdin", "--users-file", str(users_file)]
    assert _add(monkeypatch, "another-password\n", *args) == 0
    assert load_users(users_file).users["alice"].session_generation == 2


def test_remove_takes_the_user_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`users remove alice` leaves a valid file without her."""
    users_file = _alice(tmp_path, monkeypatch)
    assert cli.main(["users", "remove", "alice", "--users-file", str(users_file)]) == 0
    assert load_users(users_file).users == {}
    assert f"alice removed from {users_file}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["remove", "revoke"])
def test_an_unknown_user_is_a_clear_error_and_the_file_is_untouched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """Removing or revoking a name not in the file exits 1 naming it; the file stays as it was."""
    users_file = _alice(tmp_path, monkeypatch)
    content = users_file.read_bytes()
    assert cli.main(["users", command, "bob", "--users-file", str(users_file)]) == 1
    assert "has no user 'bob'" in capsys.readouterr().err
    assert users_file.read_bytes() == content


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (disk full) leaves the previous file in place and no temporary
    file behind: nobody is resurrected or locked out by a crash."""
    users_file = _alice(tmp_path, monkeypatch)
    content = users_file.read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("relmgr.auth.users.yaml.safe_dump", disk_full)
    with pytest.raises(ConfigError, match=f"users file {users_file} cannot be written: No space"):
        revoke_sessions(users_file, "alice")
    assert users_file.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.yaml"]
