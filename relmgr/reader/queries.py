"""Visibility query strings, built only from validated IDs, enum values and formatted times.

Nothing a user typed reaches a query unvalidated: release IDs pass `relmgr.ids` (whose alphabet
has no quote, backslash, space or operator) before they are quoted, kinds are `EntityKind`
values, and times are formatted here. The SQLite visibility store of a dev server supports
`=`, `IN`, `AND`/`OR` with parentheses and time comparisons, but no `ORDER BY` and no `LIKE`;
these queries use nothing else.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from relmgr import ids
from relmgr.models import EntityKind
from relmgr.temporal.contract import SA_KIND, SA_LAST_CHANGE, SA_RELEASE_ID

# Above this many IDs an IN list is split over several calls (a long query costs the server
# parsing time, and some visibility stores cap the query length).
MAX_IN_IDS = 200


def _quoted_release(release_id: str) -> str:
    return f"'{ids.validate_release_id(release_id)}'"


def release_query(release_id: str) -> str:
    """Every workflow of one release, the release itself included."""
    return f"{SA_RELEASE_ID.name} = {_quoted_release(release_id)}"


def releases_query(release_ids: Collection[str]) -> str:
    """Every workflow of several releases at once (at most `MAX_IN_IDS` of them)."""
    if not release_ids or len(release_ids) > MAX_IN_IDS:
        raise ValueError(f"between 1 and {MAX_IN_IDS} releases, not {len(release_ids)}")
    quoted = ", ".join(_quoted_release(r) for r in sorted(release_ids))
    return f"{SA_RELEASE_ID.name} IN ({quoted})"


def release_list_query() -> str:
    """Every release workflow (the rows the release list is made of)."""
    return f"{SA_KIND.name} = '{EntityKind.RELEASE.value}'"


def format_time(moment: datetime) -> str:
    """A UTC RFC 3339 time with microseconds, as visibility compares it."""
    if moment.tzinfo is None:
        raise ValueError("visibility times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delta_query(
    since: datetime,
    release_ids: Collection[str],
    *,
    include_release_list: bool,
    pinned: str | None = None,
) -> str:
    """Rows that changed or closed at or after `since`, in the given releases or any release row.

    `CloseTime` catches workflows that ended without publishing a last change (terminated,
    timed out); `RelmgrLastChange` catches every published change. `pinned`, a clause built by
    relmgr itself (the auth ledger's `relmgr.temporal.ledger.pinned_query`), is added whole,
    changed or not, so its workflow rides in the same call.
    """
    scopes: list[str] = []
    if include_release_list:
        scopes.append(release_list_query())
    if release_ids:
        quoted = ", ".join(_quoted_release(r) for r in sorted(release_ids))
        scopes.append(f"{SA_RELEASE_ID.name} IN ({quoted})")
    if not scopes:
        raise ValueError("a delta query needs at least one release or the release list")
    stamp = format_time(since)
    changed = f"{SA_LAST_CHANGE.name} >= '{stamp}' OR CloseTime >= '{stamp}'"
    query = f"({changed}) AND ({' OR '.join(scopes)})"
    return f"({query}) OR {pinned}" if pinned else query
