"""Reader calls under the API's time budget, so a hung Temporal becomes a 503 and never a hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from relmgr.api.caching import digest, dump_without_read_at
from relmgr.errors import ReadTimeoutError
from relmgr.models import ReleaseHierarchy
from relmgr.reader.protocol import KeepsLapsedTrees, ReleaseReader

T = TypeVar("T")

# The reader bounds its own calls; this is the backstop. A little under 2 s so that the whole
# response, not just the read, reaches the client within the promised 2 s.
READ_BUDGET_SECONDS = 1.8


async def within_budget(call: Awaitable[T], *, seconds: float = READ_BUDGET_SECONDS) -> T:
    """The call's result, or ReadTimeoutError (-> 503) if it takes longer than `seconds`."""
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError:
        raise ReadTimeoutError(f"Temporal did not answer within {seconds:g} s") from None


# Set to "true" on a tree answered from the last one kept because a fresh read outran the budget;
# `Age` then says how many seconds old it is.
STALE_HEADER = "X-Relmgr-Stale"


async def tree_or_stale(reader: ReleaseReader, release_id: str) -> tuple[ReleaseHierarchy, int]:
    """The release's tree and -1, or (if reading it outran the budget) the last tree the reader
    kept of it and its age in whole seconds. Without a kept tree the timeout stands (503)."""
    try:
        return await within_budget(reader.get_release_hierarchy(release_id)), -1
    except ReadTimeoutError:
        kept = (
            reader.previous_hierarchy(release_id) if isinstance(reader, KeepsLapsedTrees) else None
        )
        if kept is None:
            raise
        # The cold load goes on (it is shielded from readers giving up), so a later request
        # gets the fresh tree.
        age = (datetime.now(UTC) - kept.read_at).total_seconds()
        return kept, max(0, round(age))


def stale_headers(age: int) -> dict[str, str]:
    """The headers that mark a stale tree of this age (none for -1, a fresh one)."""
    return {} if age < 0 else {STALE_HEADER: "true", "Age": str(age)}


def hierarchy_revision(tree: ReleaseHierarchy) -> str:
    """The tree's revision (its ETag and cache key), or a digest of its body if it has none."""
    return tree.revision or digest(dump_without_read_at(tree))
