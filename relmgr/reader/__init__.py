"""The read module: the only code that reads Temporal for the dashboard and the API.

    reader = await create_reader()          # connects, starts the shared refresher
    page = await reader.list_releases(ReleaseQuery())
    tree = await reader.get_release_hierarchy("rel-2026-11-payments")

`ReleaseReader` is the seam; `TemporalReader` the production implementation; `FakeReader` the
in-memory one for page and route tests. `TemporalReader` and `create_reader` are loaded on first
use (module `__getattr__`), so importing the protocol or the fake never imports temporalio;
tests/test_layering.py checks that in a fresh interpreter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relmgr.reader.protocol import ReaderStats, ReleaseReader
from relmgr.settings import Settings, get_settings
from relmgr.testing.fake_reader import FakeReader

if TYPE_CHECKING:
    from relmgr.reader.temporal_reader import TemporalReader

__all__ = [
    "FakeReader",
    "ReaderStats",
    "ReleaseReader",
    "TemporalReader",
    "create_reader",
]


def __getattr__(name: str) -> object:
    # `from relmgr.reader import TemporalReader` still works; only then is the SDK imported.
    if name == "TemporalReader":
        from relmgr.reader.temporal_reader import TemporalReader

        return TemporalReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def create_reader(
    settings: Settings | None = None,
    *,
    on_failed_attempt: Callable[[str], None] | None = None,
) -> ReleaseReader:
    """Connect to Temporal (retrying with backoff) and start the shared refresher.

    `on_failed_attempt` hears about each failed connection attempt that will be retried.
    Raises `TemporalUnavailableError` if Temporal cannot be reached, `ConfigError` for settings
    that cannot work.
    """
    from relmgr.reader.temporal_reader import TemporalReader
    from relmgr.temporal.client import connect

    settings = settings or get_settings()
    client = await connect(settings, on_failed_attempt=on_failed_attempt)
    reader = TemporalReader.from_client(client, settings)
    reader.start()
    return reader
