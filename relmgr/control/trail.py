"""The trail of control attempts: one JSON line per attempt, accepted or refused, any front end.

The API and the dashboard both record here (the same `RELMGR_AUDIT_LOG` file as the API's other
audit events, else the `relmgr.audit` logger), so `GET /api/audit` reads every attempt back.
Accepted controls are also durable in Temporal (the Update in history, the release's
`relmgr.audit` memo). The last `RECENT` attempts are kept in memory too, for a process whose log
goes to the logger rather than a file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from relmgr.auth.users import USERNAME_PATTERN

logger = logging.getLogger("relmgr.audit")

EVENT = "control"
RECENT = 1_000
_MAX_REASON = 500


class ControlAttempt(BaseModel):
    """One control attempt as the trail records it."""

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


class ControlTrail:
    """Appends control attempts to a JSON-lines file (or the logger) and reads them back."""

    def __init__(self, path: Path | None, lock: threading.Lock | None = None) -> None:
        self._path = path
        self._lock = lock or threading.Lock()
        self._recent: deque[ControlAttempt] = deque(maxlen=RECENT)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        *,
        username: str | None,
        role: str | None,
        action: str,
        target: str,
        reason: str,
        request_id: str,
        outcome: str,
        message: str,
        client: str | None,
    ) -> ControlAttempt:
        """Record one attempt (the reason is kept verbatim, JSON-escaped in the file).

        `username` and `role` are None for a malformed request whose sender is not known (no
        valid token)."""
        if username is not None and not USERNAME_PATTERN.match(username):
            username = "(malformed)"
        attempt = ControlAttempt(
            ts=datetime.now(UTC),
            user=username,
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
        stamp = entry.pop("ts").replace("+00:00", "Z")
        line = json.dumps(
            {"ts": stamp, "event": EVENT, **entry}, ensure_ascii=True, separators=(",", ":")
        )
        with self._lock:
            self._recent.append(attempt)
            if self._path is None:
                logger.info(line)
            else:
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
        return attempt

    def attempts(self) -> list[ControlAttempt]:
        """Every attempt recorded: the whole file if there is one, else this process's recent."""
        if self._path is None or not self._path.exists():
            with self._lock:
                return list(self._recent)
        found = []
        with self._lock, self._path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn or foreign line: skip it, keep the rest
                if not isinstance(entry, dict) or entry.get("event") != EVENT:
                    continue
                try:
                    found.append(ControlAttempt.model_validate(entry))
                except ValidationError:
                    continue
        return found
