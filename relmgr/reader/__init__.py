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
    from relmgr.auth.ledger import AuthLedger
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
    auth_ledger: AuthLedger | None = None,
) -> ReleaseReader:
    """Connect to Temporal (retrying with backoff) and start the shared refresher.

    `on_failed_attempt` hears about each failed connection attempt that will be retried.
    With `auth_ledger` (and `RELMGR_AUTH_LEDGER` on), the refresher's delta call also reads the
    auth ledger's memo into it, and this process runs the ledger's worker and sends the
    ledger's writes (`relmgr.temporal.ledger`) until the reader closes.
    Raises `TemporalUnavailableError` if Temporal cannot be reached, `ConfigError` for settings
    that cannot work.
    """
    from relmgr.reader.temporal_reader import TemporalReader
    from relmgr.temporal.client import connect

    settings = settings or get_settings()
    client = await connect(settings, on_failed_attempt=on_failed_attempt)
    reader = TemporalReader.from_client(client, settings)
    if auth_ledger is not None and settings.auth_ledger:
        from relmgr.temporal.ledger import LedgerService, ledger_workflow_id, pinned_query
        from relmgr.temporal.ledger_state import MEMO_AUTH

        workflow_id = ledger_workflow_id(settings)
        reader.follow_memo(
            workflow_id,
            pinned_query(workflow_id),
            MEMO_AUTH,
            auth_ledger.apply_memo,
            on_read=auth_ledger.loaded.set,
        )
        service = LedgerService.start(client, settings)
        auth_ledger.attach(service.writer)
        reader.close_with(service.aclose)
    reader.start()
    return reader
