"""Settings and secrets: placeholders and short secrets refused outside dev mode."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from relmgr.errors import ConfigError
from relmgr.settings import Settings, check_secret, get_settings

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
