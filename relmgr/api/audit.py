"""The audit log: one JSON object per line for logins, refused tokens, exports and controls.

Written to `RELMGR_AUDIT_LOG` when set, else to the `relmgr.audit` logger. Only the fields named
by `AuditLog.record`'s signature (and `relmgr.trail`'s, for controls) are ever written: there is
no field for a password, a token or a secret, so none can leak through here.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from relmgr.auth import USERNAME_PATTERN
from relmgr.trail import ControlTrail

logger = logging.getLogger("relmgr.audit")


class AuditEvent(StrEnum):
    """What happened."""

    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105  # an event name, not a password
    EXPORT = "export"


def loggable_username(value: str | None) -> str | None:
    """The username if well-formed, else a marker (it may be a password typed in the wrong box)."""
    if value is None:
        return None
    return value if USERNAME_PATTERN.match(value) else "(malformed)"


class AuditLog:
    """Appends audit records as JSON lines to a file, or hands them to the `relmgr.audit` logger."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Control attempts: the same file, the same lock, so lines never interleave.
        self.controls = ControlTrail(path, self._lock)

    def record(
        self,
        event: AuditEvent,
        *,
        client: str | None,
        username: str | None = None,
        reason: str | None = None,
        path: str | None = None,
        resource: str | None = None,
        rows: int | None = None,
    ) -> None:
        """Write one audit line (fields left as None are omitted)."""
        entry: dict[str, str | int] = {
            "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "event": event.value,
        }
        fields: dict[str, str | int | None] = {
            "user": loggable_username(username),
            "client": client,
            "reason": reason,
            "path": path[:200] if path else None,
            "resource": resource,
            "rows": rows,
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":"))
        if self._path is None:
            logger.info(line)
            return
        # Small appends from one process; the lock keeps lines whole when threads share the log.
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
