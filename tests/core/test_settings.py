"""Settings and secrets: placeholders and short secrets refused outside dev mode."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from relmgr.errors import ConfigError
from relmgr.settings import (
    MAX_TOKEN_MINUTES,
    Settings,
    check_bind,
    check_secret,
    estimated_bits,
    get_settings,
)

STRONG = "k3J9x-Qw7PzL2mN8vB4cR6tY1uI0oA5sD3fG7hJ9kL2zX"


@pytest.mark.parametrize("value", ["", "changeme", "dev-secret-change-me-dev-secret-change-me"])
def test_placeholder_secrets_are_refused_outside_dev_mode(value: str) -> None:
    """A missing or placeholder secret raises ConfigError naming the variable, not the value."""
    with pytest.raises(
        ConfigError, match="RELMGR_JWT_SECRET is missing or a placeholder"
    ) as caught:
        check_secret("jwt_secret", SecretStr(value), dev_mode=False)
    if value:
        assert value not in caught.value.message


def test_short_secrets_are_refused_with_their_length() -> None:
    """A 10-byte secret is refused, saying 32 bytes are needed."""
    with pytest.raises(ConfigError, match="too short: 10 bytes, at least 32"):
        check_secret("cookie_key", SecretStr("a1b2c3d4e5"), dev_mode=False)


def test_strong_secrets_pass_and_dev_mode_accepts_a_placeholder() -> None:
    """A 45-byte random secret passes; dev mode accepts any non-empty one, but not an empty one."""
    assert check_secret("jwt_secret", SecretStr(STRONG), dev_mode=False) == STRONG
    assert check_secret("jwt_secret", SecretStr("changeme"), dev_mode=True) == "changeme"
    with pytest.raises(ConfigError):
        check_secret("jwt_secret", SecretStr(""), dev_mode=True)


def test_settings_come_from_relmgr_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELMGR_* variables set the fields; the secret's repr hides its value."""
    monkeypatch.setenv("RELMGR_TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("RELMGR_REFRESH_SECONDS", "2.5")
    monkeypatch.setenv("RELMGR_JWT_SECRET", STRONG)
    settings = Settings()
    assert settings.temporal_address == "temporal.internal:7233"
    assert settings.refresh_seconds == 2.5
    assert STRONG not in repr(settings)


def test_invalid_settings_raise_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value is a ConfigError naming RELMGR_<FIELD>, never a pydantic traceback."""
    monkeypatch.setenv("RELMGR_REFRESH_SECONDS", "-1")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="RELMGR_REFRESH_SECONDS"):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "value",
    ["a" * 40, "ab" * 20, "abcdefgh" * 5, "abcdefghi" * 5],
    ids=["one-char", "two-chars", "eight-chars", "nine-chars"],
)
def test_long_but_predictable_secrets_are_refused_outside_dev_mode(value: str) -> None:
    """Length is not enough: repeated characters are refused, naming the variable, not the value."""
    with pytest.raises(ConfigError, match="RELMGR_JWT_SECRET is too predictable") as caught:
        check_secret("jwt_secret", SecretStr(value), dev_mode=False)
    assert value not in caught.value.message


def test_generated_secrets_pass_the_strength_check() -> None:
    """What the docs tell people to run (token_urlsafe, token_hex) always passes."""
    for _ in range(200):
        for value in (secrets.token_urlsafe(32), secrets.token_urlsafe(48), secrets.token_hex(32)):
            assert check_secret("cookie_key", SecretStr(value), dev_mode=False) == value


def test_estimated_bits_counts_character_frequencies() -> None:
    """No bits for one repeated character; 1 bit a character for two, evenly mixed."""
    assert estimated_bits("a" * 40) == 0
    assert estimated_bits("ab" * 20) == pytest.approx(40.0)


def test_token_lifetime_is_at_most_eight_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default is an hour; RELMGR_TOKEN_MINUTES takes at most 8 h, 8 h + 1 min is refused."""
    assert Settings().token_minutes == 60
    assert MAX_TOKEN_MINUTES == 480
    assert Settings(token_minutes=480).token_minutes == 480
    monkeypatch.setenv("RELMGR_TOKEN_MINUTES", "481")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="RELMGR_TOKEN_MINUTES: Input should be less than"):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])  # noqa: S104
def test_dev_mode_refuses_a_non_loopback_bind(host: str) -> None:
    """Dev mode accepts weak secrets, so it listens on loopback only; outside it any host goes."""
    with pytest.raises(ConfigError, match="listens on loopback only"):
        check_bind(Settings(dev_mode=True), host)
    check_bind(Settings(dev_mode=False), host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_dev_mode_binds_loopback(host: str) -> None:
    """Loopback addresses are fine in dev mode."""
    check_bind(Settings(dev_mode=True), host)
