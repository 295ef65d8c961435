"""The users file: bcrypt only, clear start-up errors, verification that leaks nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from relmgr.auth import users as auth
from relmgr.errors import ConfigError


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with one admin whose password is 'correct horse'."""
    path = tmp_path_factory.mktemp("users") / "users.yaml"
    auth.add_user(
        path,
        username="admin",
        email="admin@example.com",
        name="Admin",
        password="correct horse",
        roles=("admin",),
    )
    return path


def test_added_user_is_stored_as_a_bcrypt_hash_in_an_owner_only_file(users_file: Path) -> None:
    """The file holds a $2b$ hash, never the password, and only its owner can read it."""
    text = users_file.read_text()
    assert "correct horse" not in text
    assert "$2b$12$" in text
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600


def test_verify_accepts_the_right_password_only(users_file: Path) -> None:
    """The right password returns the user; a wrong one or an unknown user returns None."""
    users = auth.load_users(users_file)
    user = auth.verify_password(users, "admin", "correct horse")
    assert user is not None
    assert (user.username, user.email, user.roles) == ("admin", "admin@example.com", ("admin",))
    assert auth.verify_password(users, "admin", "wrong horse") is None
    assert auth.verify_password(users, "nobody", "correct horse") is None


def test_credentials_for_the_authenticator_are_a_copy_with_hashes(users_file: Path) -> None:
    """streamlit-authenticator gets a dict (never the path) with the hash as password."""
    users = auth.load_users(users_file)
    creds = users.authenticator_credentials()
    assert creds["usernames"]["admin"]["password"] == users.users["admin"].password
    creds["usernames"]["admin"]["password"] = "scribbled"
    assert users.users["admin"].password.startswith("$2b$")


def test_a_plaintext_password_in_the_file_is_refused(tmp_path: Path) -> None:
    """A user whose password is not a bcrypt hash is a start-up error naming the user."""
    path = tmp_path / "users.yaml"
    path.write_text(
        "credentials:\n  usernames:\n    bob:\n      email: b@x.io\n      name: Bob\n"
        "      password: hunter22\n"
    )
    with pytest.raises(ConfigError, match=r"user 'bob': password .*not a bcrypt hash"):
        auth.load_users(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("credentials: [\n  broken", r"is not valid YAML at line \d+, column \d+"),
        ("- just\n- a list\n", "expected a mapping with 'credentials: usernames:'"),
        ("credentials:\n  usernames: [a, b]\n", "'credentials.usernames' must be a mapping"),
        ("credentials:\n  usernames:\n    Bad Name: {}\n", "username 'Bad Name' must be"),
        ("credentials:\n  usernames:\n    bob: 3\n", "user 'bob' must be a mapping"),
        ("credentials:\n  usernames:\n    bob:\n      name: Bob\n", "user 'bob': email"),
    ],
)
def test_a_broken_users_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    """Every malformed users file raises ConfigError saying what is wrong."""
    path = tmp_path / "users.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        auth.load_users(path)


def test_a_missing_users_file_says_how_to_create_one(tmp_path: Path) -> None:
    """No file: the error names `relmgr users add`."""
    with pytest.raises(ConfigError, match="relmgr users add"):
        auth.load_users(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "Bad Name"}, "username 'Bad Name'"),
        ({"password": "short"}, "at least 8 characters"),
        ({"password": "x" * 73}, "at most 72 bytes"),
        ({"email": "not-an-email"}, "is not an email address"),
    ],
)
def test_add_user_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    """Bad usernames, passwords and emails are refused before the file is touched."""
    path = tmp_path / "users.yaml"
    fields = {"username": "ok", "email": "a@b.io", "name": "A", "password": "long enough"}
    fields.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        auth.add_user(path, **fields)  # type: ignore[arg-type]
    assert not path.exists()
