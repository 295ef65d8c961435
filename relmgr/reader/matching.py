"""Every release a release-list query matches: the one implementation both CSV exports use.

One cap and one rule for pages that shift while they are read (a release starting between two
page reads pushes the rows below it one place down): each release is kept once, where it was
first seen, and reading stops at `MAX_EXPORT_ROWS` releases, saying so in `truncated`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from relmgr.models import MAX_PAGE_SIZE, ReleaseQuery, ReleaseSummary
from relmgr.reader.protocol import ReleaseReader

# The most releases one export holds (20 pages of the largest size).
MAX_EXPORT_ROWS = 10_000


class MatchingReleases(BaseModel):
    """The releases a query matched, in its order, each once, and whether the cap cut them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: tuple[ReleaseSummary, ...]
    truncated: bool = False
    # The oldest `read_at` of the pages read: the data is at least this fresh.
    read_at: datetime


async def matching_releases(
    reader: ReleaseReader, query: ReleaseQuery, *, limit: int = MAX_EXPORT_ROWS
) -> MatchingReleases:
    """Every release `query`'s filter and search match, sorted as it asks, ignoring its paging."""
    if limit < 1:
        raise ValueError("an export needs a limit of at least 1 release")
    page_query = query.model_copy(update={"page": 1, "page_size": MAX_PAGE_SIZE})
    found: dict[str, ReleaseSummary] = {}
    read_at: datetime | None = None
    number = 1
    while True:
        page = await reader.list_releases(page_query.model_copy(update={"page": number}))
        read_at = page.read_at if read_at is None else min(read_at, page.read_at)
        for summary in page.items:
            found.setdefault(summary.id, summary)
        if len(found) >= limit or number >= page.pages:
            break
        number += 1
    items = tuple(found.values())
    truncated = len(items) > limit or (len(items) == limit and number < page.pages)
    return MatchingReleases(items=items[:limit], truncated=truncated, read_at=read_at)
