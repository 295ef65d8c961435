"""Settings: one class read from `RELMGR_*` environment variables, through `get_settings()`."""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from relmgr.errors import ConfigError

# Values that ship in examples and docs; refused as real secrets outside dev mode.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "placeholder",
        "dev-secret-change-me-dev-secret-change-me",
        "please-change-this-cookie-key-to-32-random-bytes",
    }
)
MIN_SECRET_BYTES = 32
# Beyond length: "a" * 40 is long and worthless. A secret needs this many different characters
# and this many bits by its own character frequencies (a 32-byte token_urlsafe has ~190).
MIN_SECRET_DISTINCT = 10
MIN_SECRET_BITS = 128.0
MAX_TOKEN_MINUTES = 8 * 60


class Settings(BaseSettings):
    """Everything relmgr can be configured with; each field is `RELMGR_<NAME>` in the env."""

    model_config = SettingsConfigDict(env_prefix="RELMGR_", extra="ignore")

    dev_mode: bool = False

    # Temporal connection (a dev server by default; see docs/DEPLOYMENT.md for clusters and Cloud).
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    temporal_connect_timeout: float = Field(default=5.0, gt=0, le=120)
    temporal_rpc_timeout: float = Field(default=2.0, gt=0, le=120)

    # The shared refresher.
    refresh_seconds: float = Field(default=1.5, gt=0.1, le=300)
    delta_window_seconds: float = Field(default=10.0, ge=0, le=600)
    resync_seconds: float = Field(default=300.0, gt=1, le=86_400)
    watch_ttl_seconds: float = Field(default=60.0, gt=1, le=86_400)
    # First reads of releases (full lists) that may run at once; the others queue.
    cold_load_concurrency: int = Field(default=2, ge=1, le=64)
    live_query_timeout: float = Field(default=1.0, gt=0, le=30)

    # Users, sessions and tokens (one users file for the dashboard and the API).
    users_file: Path = Path("users.yaml")
    cookie_key: SecretStr = SecretStr("")
    cookie_name: str = "relmgr_session"
    cookie_expiry_days: float = Field(default=1.0, gt=0, le=90)
    jwt_secret: SecretStr = SecretStr("")
    # API bearer tokens live at most MAX_TOKEN_MINUTES (8 h); `POST /api/auth/logout` ends one.
    token_minutes: int = Field(default=60, ge=1, le=MAX_TOKEN_MINUTES)
    # Failed logins a minute per username (strict) and per client address (loose: it only blunts
    # spraying; see relmgr.auth.throttle).
    login_attempts_per_minute: int = Field(default=5, ge=1, le=1000)
    login_attempts_per_client_per_minute: int = Field(default=60, ge=1, le=100_000)
    # Reverse proxies whose X-Forwarded-For is believed (addresses/CIDRs; see relmgr.auth.proxies).
    trusted_proxies: str = ""
    # Signed-out dashboard cookies; unset: `revoked-sessions.json` beside the users file.
    revoked_sessions_file: Path | None = None
    # The auth ledger (relmgr.auth.ledger): sign-outs, session generations and failed logins
    # shared by every replica through one Temporal workflow. Off: each replica keeps its own.
    auth_ledger: bool = True
    auth_ledger_workflow_id: str = "relmgr-auth-ledger"
    auth_ledger_task_queue: str = "relmgr-auth-ledger"
    cors_origins: list[str] = []
    audit_log: Path | None = None

    # Dashboard.
    ui_refresh_seconds: float = Field(default=3.0, ge=1, le=300)
    # Temporal's Web UI (e.g. `http://127.0.0.1:8233`): each entity links to its workflow there.
    # Empty: no such links. `relmgr dev` sets it to the UI of its embedded server.
    temporal_ui_url: str = ""

    # Deploy step run by the worker's activity: a command template, or simulation when unset.
    deploy_command: str | None = None
    deploy_command_timeout: float = Field(default=600.0, gt=0)

    # `relmgr dev`.
    data_dir: Path = Path(".relmgr")
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    ui_port: int = Field(default=8501, ge=1, le=65535)

    @property
    def revoked_sessions_path(self) -> Path:
        """The file of signed-out dashboard cookies: the setting, else beside the users file.

        Beside the users file because every dashboard replica already shares that file (and
        `relmgr dev` keeps it in its data directory, wherever `--data-dir` points).
        """
        if self.revoked_sessions_file is not None:
            return self.revoked_sessions_file
        return self.users_file.with_name("revoked-sessions.json")


def check_secret(name: str, value: SecretStr, *, dev_mode: bool) -> str:
    """Return a usable secret, or raise ConfigError naming the variable (never the value)."""
    raw = value.get_secret_value()
    if dev_mode and raw:
        return raw
    if raw.strip().lower() in PLACEHOLDER_SECRETS or "change" in raw.lower():
        raise ConfigError(
            f"RELMGR_{name.upper()} is missing or a placeholder: set it to at least "
            f"{MIN_SECRET_BYTES} random bytes (e.g. `python -c 'import secrets; "
            f"print(secrets.token_urlsafe(48))'`)"
        )
    if len(raw.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"RELMGR_{name.upper()} is too short: {len(raw.encode())} bytes, "
            f"at least {MIN_SECRET_BYTES} are required"
        )
    if len(set(raw)) < MIN_SECRET_DISTINCT or estimated_bits(raw) < MIN_SECRET_BITS:
        raise ConfigError(
            f"RELMGR_{name.upper()} is too predictable: it repeats too few characters "
            f"(at least {MIN_SECRET_DISTINCT} different ones and about {MIN_SECRET_BITS:.0f} bits "
            "are required); generate one with `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`"
        )
    return raw


def estimated_bits(value: str) -> float:
    """The secret's length times the Shannon entropy of its own character frequencies.

    An upper bound on its real strength (it cannot see words or patterns), enough to refuse
    repeats such as "a" * 40 or "ab" * 20.
    """
    counts = Counter(value)
    total = len(value)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_char * total


def check_bind(settings: Settings, host: str) -> None:
    """Refuse, in dev mode, to listen on anything but loopback (dev mode accepts weak secrets)."""
    if not settings.dev_mode:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            f"dev mode (RELMGR_DEV_MODE) accepts weak secrets, so it listens on loopback only, "
            f"not {host!r}: use 127.0.0.1, or turn dev mode off and set real secrets"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"RELMGR_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid relmgr settings: {problems}") from None
