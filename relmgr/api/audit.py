"""The audit log: one JSON object per line for logins, refused tokens, exports and controls.

Written to `RELMGR_AUDIT_LOG` when set, else to the `relmgr.audit` logger. Only the fields named
by `AuditLog.record`'s and `AuditLog.control`'s signatures are ever written: there is no field
for a password, a token or a secret, so none can leak through here.

Every control attempt is written here, accepted or refused; the accepted ones are also durable in
Temporal (the Update in the workflow's history, and the release's `relmgr.audit` memo). The last
`RECENT_CONTROLS` control records are also kept in memory, so `GET /api/audit` can read them back
when the log goes to the logger rather than a file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from relmgr.auth import USERNAME_PATTERN

logger = logging.getLogger("relmgr.audit")


class AuditEvent(StrEnum):
    """What happened."""

    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105  # an event name, not a password
    EXPORT = "export"
    CONTROL = "control"


RECENT_CONTROLS = 1_000
_MAX_REASON = 500


class ControlAttempt(BaseModel):
    """One control attempt as the audit log records it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ts: datetime
    user: str | None = None
    role: str | None = None
    action: str
    target: str
    reason: str = ""
    request_id: str = ""
    outcome: str  # accepted, forbidden, conflict, not_found, unavailable, invalid, failed
    message: str = ""
    client: str | None = None


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
        self._recent: deque[ControlAttempt] = deque(maxlen=RECENT_CONTROLS)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

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
        self._write(entry)

    def control(
        self,
        *,
        username: str,
        role: str,
        action: str,
        target: str,
        reason: str,
        request_id: str,
        outcome: str,
        message: str,
        client: str | None,
    ) -> ControlAttempt:
        """Record one control attempt, accepted or refused (the reason is kept verbatim)."""
        attempt = ControlAttempt(
            ts=datetime.now(UTC),
            user=loggable_username(username),
            role=role,
            action=action,
            target=target[:200],
            reason=reason[:_MAX_REASON],
            request_id=request_id[:200],
            outcome=outcome,
            message=message[:500],
            client=client,
        )
        entry = attempt.model_dump(mode="json", exclude_none=True)
        entry["ts"] = entry["ts"].replace("+00:00", "Z")
        self._write({"ts": entry.pop("ts"), "event": AuditEvent.CONTROL.value, **entry})
        with self._lock:
            self._recent.append(attempt)
        return attempt

    def controls(self) -> list[ControlAttempt]:
        """Every control attempt recorded: the whole file if there is one, else the recent ones."""
        if self._path is None or not self._path.exists():
            with self._lock:
                return list(self._recent)
        attempts = []
        with self._lock, self._path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn or foreign line: skip it, keep the rest
                if not isinstance(entry, dict) or entry.get("event") != AuditEvent.CONTROL:
                    continue
                try:
                    attempts.append(ControlAttempt.model_validate(entry))
                except ValidationError:
                    continue
        return attempts

    def _write(self, entry: dict[str, str | int]) -> None:
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":"))
        if self._path is None:
            logger.info(line)
            return
        # Small appends from one process; the lock keeps lines whole when threads share the log.
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
