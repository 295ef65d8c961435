"""The audit log: one JSON object per line for logins, refused tokens, exports and controls.

Written to `RELMGR_AUDIT_LOG` when set (`relmgr dev` sets it to `logs/audit.log` in its data
directory), else to standard error through the `relmgr.audit` logger's own handler: at INFO
whatever level the rest of the process logs at, so `relmgr api`'s WARNING never drops an audit
line. Only the fields named by `AuditLog.record`'s signature (and `relmgr.control.trail`'s, for
controls) are ever written: there is no field for a password, a token or a secret, so none can leak
through here.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from relmgr.auth.users import USERNAME_PATTERN
from relmgr.control.trail import ControlTrail

logger = logging.getLogger("relmgr.audit")


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a line is written (not when it was created)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current standard error."""


def _own_handler() -> None:
    """Give the audit logger a handler of its own at INFO, once, not passing lines upwards."""
    if any(isinstance(h, _StderrHandler) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class AuditEvent(StrEnum):
    """What happened."""

    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105  # an event name, not a password
    EXPORT = "export"


def loggable_username(value: str | None) -> str | None:
    """The username if well-formed, else a marker (it may be a password typed in the wrong box)."""
    if value is None:
        return None
    return value if USERNAME_PATTERN.fullmatch(value) else "(malformed)"


class AuditLog:
    """Appends audit records as JSON lines to a file, or hands them to the `relmgr.audit` logger."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            _own_handler()
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
