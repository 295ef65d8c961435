"""The dashboard's one reader per process, and the seam through which tests swap it.

Every page reads through `get_reader()`: a `SyncReader` (one background event loop, one Temporal
client) cached with `st.cache_resource`, so all sessions and reruns share it. It is built from
`relmgr.reader.create_reader`, imported only when the first read happens, so that tests which
install a fake with `set_reader_factory` never import temporalio.

The process's `AuthLedger` (`relmgr.auth.ledger`) lives here too: the real reader reads it in its
refresh cycle and sends its writes, so sign-outs, generations and failed sign-ins are shared with
every other replica. `start_reading` builds the reader in the background from the sign-in gate,
so that the ledger is read before the first page is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache

import streamlit as st

from relmgr.auth.ledger import AuthLedger
from relmgr.errors import RelmgrError, TemporalUnavailableError
from relmgr.reader.protocol import ReleaseReader
from relmgr.settings import Settings, get_settings
from relmgr.ui.bridge import SyncReader

ReaderFactory = Callable[[Settings], Awaitable[ReleaseReader]]

_factory: ReaderFactory | None = None
# Bumped by every `set_reader_factory`, so the cache builds a new reader for the new factory.
_generation = 0


async def _create_default_reader(settings: Settings) -> ReleaseReader:
    # Imported here: it pulls in temporalio, which tests with a fake reader never need.
    from relmgr.reader import create_reader

    return await create_reader(settings, auth_ledger=auth_ledger())


@lru_cache(maxsize=1)
def auth_ledger() -> AuthLedger:
    """This process's view of the auth ledger, shared by all its sessions."""
    return AuthLedger()


def start_reading() -> None:
    """Build the shared reader in the background if it is not there yet (no wait)."""
    get_reader().warm()


def await_ledger() -> None:
    """Wait (once per process, at most `FIRST_READ_WAIT_SECONDS`) for the first read of the auth
    ledger, so that a fresh replica judges cookies and signs sessions in as the others do."""
    auth_ledger().await_first_read()


def set_reader_factory(factory: ReaderFactory | None) -> None:
    """Use `factory` (given the settings) for the shared reader from now on; None restores the
    real one. The reader built from the previous factory is closed."""
    global _factory, _generation
    _factory = factory
    _generation += 1
    _shared_reader.clear()


def reader_timeout(settings: Settings) -> float:
    """The budget of one page read: the first read also connects, so it may take a connect
    timeout; every later one is answered from the reader's cache or one RPC."""
    return max(settings.temporal_connect_timeout, settings.temporal_rpc_timeout) + 1.0


def _close(reader: SyncReader) -> None:
    reader.close()


@st.cache_resource(show_spinner=False, max_entries=1, on_release=_close)
def _shared_reader(generation: int) -> SyncReader:
    settings = get_settings()
    factory = _factory or _create_default_reader

    async def build() -> ReleaseReader:
        try:
            return await factory(settings)
        except RelmgrError:
            raise
        except Exception as exc:
            # A failed connect must reach the page as the one error class pages handle.
            raise TemporalUnavailableError(
                f"cannot connect to Temporal at {settings.temporal_address}: {exc}"
            ) from exc

    return SyncReader(
        build, timeout=reader_timeout(settings), name=f"relmgr-ui-reader-{generation}"
    )


def get_reader() -> SyncReader:
    """The process's shared reader (built on first use)."""
    return _shared_reader(_generation)
