"""Reader calls under the API's time budget, so a hung Temporal becomes a 503 and never a hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from relmgr.errors import ReadTimeoutError

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
