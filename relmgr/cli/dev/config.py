"""What `relmgr dev` starts, and where: its options and the host every server listens on."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from relmgr.settings import Settings

HOST = "127.0.0.1"


class DevConfig(BaseModel):
    """What `relmgr dev` starts, and where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    ui_port: int = Field(default=8501, ge=1, le=65535)
    seed: bool = True
    api: bool = True
    ui: bool = True
    # Children get this long to stop after SIGTERM before they are killed.
    grace_seconds: float = Field(default=5.0, ge=0, le=120)
    ready_seconds: float = Field(default=60.0, gt=0, le=600)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DevConfig:
        """Defaults from `RELMGR_*` settings; options given on the command line win."""
        values: dict[str, object] = {
            "data_dir": settings.data_dir,
            "temporal_port": settings.temporal_port,
            "temporal_ui_port": settings.temporal_ui_port,
            "api_port": settings.api_port,
            "ui_port": settings.ui_port,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def temporal_address(self) -> str:
        """Where the dev server's gRPC front end listens."""
        return f"{HOST}:{self.temporal_port}"
