"""The one error tree of relmgr; nothing outside the read layer ever sees a temporalio exception.

RelmgrError
├── InvalidIdError            a malformed entity ID (API: 422)
├── InvalidQueryError         a malformed filter or paging value (API: 422)
├── NotFoundError             a well-formed ID that names nothing (API: 404)
├── AlreadyExistsError        an ID that is already taken, e.g. starting a release twice (API: 409)
├── TemporalUnavailableError  Temporal cannot be reached or did not answer (API: 503)
│   └── ReadTimeoutError      a read that did not finish within its time budget
├── LiveStateUnavailableError a live query no worker answered (API: 503)
├── WorkerUnavailableError    a control no worker answered in time (API: 503)
├── ConflictError             a control the entity's current state does not allow (API: 409)
├── ForbiddenError            an action the user's role does not allow (API: 403)
└── ConfigError               a setting or config file that cannot be used (start-up error)
"""

from __future__ import annotations

from datetime import datetime


class RelmgrError(Exception):
    """The base class of every error relmgr raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidIdError(RelmgrError):
    """An ID that does not match the documented format of its kind."""

    def __init__(self, message: str, *, value: str, expected: str) -> None:
        super().__init__(message)
        self.value = value
        self.expected = expected


class InvalidQueryError(RelmgrError):
    """A filter, search or paging value outside what relmgr accepts."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(RelmgrError):
    """A well-formed ID for which Temporal has no workflow and no plan entry."""

    def __init__(self, message: str, *, entity_id: str) -> None:
        super().__init__(message)
        self.entity_id = entity_id


class AlreadyExistsError(RelmgrError):
    """A well-formed ID that is already taken by a workflow that exists."""

    def __init__(self, message: str, *, entity_id: str) -> None:
        super().__init__(message)
        self.entity_id = entity_id


class TemporalUnavailableError(RelmgrError):
    """Temporal could not be reached, or refused the call; carries the last good data if any."""

    def __init__(
        self,
        message: str,
        *,
        last_known: object | None = None,
        last_success_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.last_known = last_known
        self.last_success_at = last_success_at


class ReadTimeoutError(TemporalUnavailableError):
    """A read that did not finish within its time budget."""


class LiveStateUnavailableError(RelmgrError):
    """A live `get_state` query that no worker answered in time."""

    def __init__(self, message: str, *, entity_id: str) -> None:
        super().__init__(message)
        self.entity_id = entity_id


class WorkerUnavailableError(RelmgrError):
    """A control that needs a worker, and none answered on the workflow's task queue in time."""

    def __init__(self, message: str, *, task_queue: str) -> None:
        super().__init__(message)
        self.task_queue = task_queue


class ConflictError(RelmgrError):
    """A control that is not possible in the entity's current state; the message says why."""

    def __init__(self, message: str, *, entity_id: str) -> None:
        super().__init__(message)
        self.entity_id = entity_id


class ForbiddenError(RelmgrError):
    """An action the user's role does not allow."""

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.role = role


class ConfigError(RelmgrError):
    """A setting, secret or config file that relmgr cannot start with."""
