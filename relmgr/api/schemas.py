"""The API's own response models; the domain models of `relmgr.models` are reused as they are."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from relmgr.models import (
    App,
    Bundle,
    Cluster,
    Control,
    EntityState,
    Release,
    ReleaseListPage,
    ReleaseSummary,
    StateCounts,
    Wave,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SortOrder(StrEnum):
    """Ascending or descending."""

    ASC = "asc"
    DESC = "desc"


class ExportFormat(StrEnum):
    """What a read endpoint can answer in besides its default JSON."""

    JSON = "json"
    CSV = "csv"


class ErrorInfo(_Frozen):
    """What went wrong: a stable machine code, a sentence for people, and structured details."""

    code: str = Field(examples=["invalid_id"])
    message: str = Field(
        examples=["malformed ID 'rel-X': expected release: rel-<name>, e.g. rel-2026-11-payments"]
    )
    details: Any | None = None


class ErrorResponse(_Frozen):
    """The one error shape of every non-2xx answer (304 has no body)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "not_found",
                        "message": "release rel-2026-11-payments not found",
                        "details": {"entity_id": "rel-2026-11-payments"},
                    }
                }
            ]
        },
    )

    error: ErrorInfo


class TokenResponse(_Frozen):
    """A bearer token for the `Authorization` header, and how many seconds it stays valid."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiJ9.sig",
                    "token_type": "bearer",
                    "expires_in": 3600,
                }
            ]
        },
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # the OAuth2 token type, not a secret
    expires_in: int = Field(ge=1)


class UserInfo(_Frozen):
    """The user a token belongs to (never the password hash)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "admin",
                    "name": "Admin",
                    "email": "admin@example.com",
                    "roles": ["admin"],
                }
            ]
        },
    )

    username: str
    name: str
    email: str
    roles: tuple[str, ...]


class ReleaseItem(ReleaseSummary):
    """A release as the list shows it, with its percent of apps deployed."""

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented computed-field idiom
    @property
    def percent_complete(self) -> float:
        """Share of the release's apps deployed successfully, 0-100."""
        return super().percent_complete

    # `duration_seconds` is the computed field every `Entity` carries.

    @classmethod
    def of(cls, summary: ReleaseSummary) -> ReleaseItem:
        """The API form of a release summary."""
        return cls.model_construct(**dict(summary))


class ReleaseListResponse(_Frozen):
    """One page of the release list: the items, paging, and counts per state of all releases."""

    items: tuple[ReleaseItem, ...]
    total: int = Field(ge=0, description="Releases that match the filter and search.")
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    pages: int = Field(ge=1, description="Pages the matching releases fill (at least 1).")
    counts: StateCounts = Field(
        description="Releases per state, over the releases the search matches (no state filter)."
    )
    app_counts: StateCounts = Field(
        default=StateCounts(),
        description="Their apps per state (e.g. apps retrying now), over the same releases.",
    )
    read_at: datetime

    @classmethod
    def of(cls, page: ReleaseListPage) -> ReleaseListResponse:
        """The API form of a reader's page."""
        return cls(
            items=tuple(ReleaseItem.of(s) for s in page.items),
            total=page.total,
            page=page.page,
            page_size=page.page_size,
            pages=page.pages,
            counts=page.counts,
            app_counts=page.app_counts,
            read_at=page.read_at,
        )


class HealthResponse(_Frozen):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class ReadyResponse(_Frozen):
    """Readiness: the process answers and Temporal does too."""

    status: Literal["ready"] = "ready"
    temporal: Literal["ok"] = "ok"
    # What reading has cost Temporal so far: a replica's refresh costs one list call per cycle
    # (the auth ledger rides in it), so these two grow together while nothing new is read.
    refresh_cycles: int = 0
    list_calls: int = 0
    # A cycle is under way (its calls may be counted already, the cycle not yet).
    refreshing: bool = False


# ---------------------------------------------------------------------------------------------
# Controls and the audit trail.


class ReleaseAction(StrEnum):
    """The controls of a release that take nothing but a reason (approve and cancel have routes
    of their own: approve needs a wave, cancel a reason)."""

    PAUSE = "pause"
    RESUME = "resume"


REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
MAX_REASON = 500
_REASON = "Why (at most 500 characters; stored verbatim, shown escaped)."
_REQUEST_ID = (
    "Sent again with the same value, the action happens once (it is the Temporal Update ID). "
    "Default: a new random ID."
)


class ActionRequest(_Frozen):
    """An operator's control: why, and an ID that makes it idempotent."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "hold for the freeze", "request_id": "r-1"}]},
    )

    reason: str = Field(default="", max_length=MAX_REASON, description=_REASON)
    request_id: str | None = Field(
        default=None, pattern=REQUEST_ID_PATTERN, description=_REQUEST_ID
    )


class ApproveActionRequest(ActionRequest):
    """Approve the gated wave `wave` (the one awaiting approval)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "canary healthy for 30 min", "wave": 2, "request_id": "r-2"}]
        },
    )

    wave: int = Field(ge=1, le=99, description="The wave awaiting approval (1-based).")


class CancelActionRequest(ActionRequest):
    """Cancel a release: a reason is required."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "error rate up 4x in eu-west-1", "request_id": "r-3"}]
        },
    )

    reason: str = Field(
        min_length=1, max_length=MAX_REASON, pattern=r"\S", description="Why (required). " + _REASON
    )


class ActionResponse(_Frozen):
    """An accepted control: what it did and the entity's state right after."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcome": "accepted",
                    "action": "approve",
                    "entity_id": "rel-2026-11-payments",
                    "state": "IN_PROGRESS",
                    "message": "wave 2 approved; it starts now",
                    "request_id": "0b6f2c1e-approve-wave-2",
                }
            ]
        },
    )

    outcome: Literal["accepted"] = "accepted"
    action: Control
    entity_id: str
    state: EntityState
    message: str
    request_id: str


class AuditEntry(_Frozen):
    """One control attempt: accepted ones from Temporal (release memo), others from the log."""

    at: datetime
    user: str | None
    role: str | None
    action: str
    target: str
    release_id: str | None
    reason: str
    request_id: str
    outcome: str
    message: str = ""
    source: Literal["temporal", "audit_log"]


class AuditTrail(_Frozen):
    """Control attempts, newest first."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "at": "2026-11-26T12:05:00Z",
                            "user": "ana",
                            "role": "operator",
                            "action": "approve",
                            "target": "rel-2026-11-payments.wave-2",
                            "release_id": "rel-2026-11-payments",
                            "reason": "canary healthy",
                            "request_id": "0b6f2c1e-approve-wave-2",
                            "outcome": "accepted",
                            "message": "",
                            "source": "temporal",
                        },
                        {
                            "at": "2026-11-26T12:04:00Z",
                            "user": "vic",
                            "role": "viewer",
                            "action": "cancel",
                            "target": "rel-2026-11-payments",
                            "release_id": "rel-2026-11-payments",
                            "reason": "oops",
                            "request_id": "a41d",
                            "outcome": "forbidden",
                            "message": "vic has the viewer role; control needs the operator "
                            "role or higher",
                            "source": "audit_log",
                        },
                    ]
                }
            ]
        },
    )

    items: tuple[AuditEntry, ...]


class EntitySubtree(_Frozen):
    """One entity and everything below it, as in its release's tree (`GET .../hierarchy`)."""

    release_id: str
    # The release tree's revision: the subtree's ETag changes with it.
    revision: str
    node: Release | Wave | Cluster | Bundle | App = Field(
        description="The entity with its children, roll-ups included; `node.kind` says which."
    )
    read_at: datetime
