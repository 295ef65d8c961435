"""Dashboard sessions without a browser: Streamlit's websocket protocol, as its frontend speaks it.

A hundred Chromium tabs cannot run beside the servers on two cores, yet the Streamlit server's
cost of a session (its websocket, its session state, a script run on open and a fragment rerun
every refresh) does not depend on who draws the result. So each `ProtocolSession` does what the
frontend does: it opens `/_stcore/stream` with the signed-in browser's cookies (the dashboard's
sign-in cookie is read from `st.context.cookies`, as for a returning user), asks for a page with a
`rerun_script` back-message, and then, every `interval` seconds the server asked for in its
`auto_rerun` message, asks for that fragment to rerun, timing each run from the request to
`script_finished`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

RUN_TIMEOUT_SECONDS = 60.0


@dataclass
class ProtocolSession:
    """One dashboard session on a page (`page_name`, `query_string`) of the Streamlit app."""

    base_url: str
    cookie_header: str
    page_name: str
    query_string: str = ""
    run_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bytes_received: int = 0
    _task: asyncio.Task[None] | None = None
    _opened: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        """Open the session and keep refreshing it until `stop()`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def opened(self, within_seconds: float = RUN_TIMEOUT_SECONDS) -> bool:
        """True once the first full run has finished (False on error or timeout)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._opened.wait(), within_seconds)
        return self._opened.is_set() and not self.errors

    async def stop(self) -> None:
        """Close the session."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _rerun(self, page_hash: str = "", fragment_id: str = "") -> bytes:
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query_string
        state.page_name = self.page_name
        if page_hash:
            state.page_script_hash = page_hash
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        return message.SerializeToString()

    async def _until_finished(self, socket: websockets.ClientConnection) -> tuple[str, str, float]:
        """Read messages up to `script_finished`; the page hash, fragment and interval seen."""
        page_hash, fragment_id, interval = "", "", 0.0
        while True:
            data = await asyncio.wait_for(socket.recv(), RUN_TIMEOUT_SECONDS)
            assert isinstance(data, bytes)
            self.bytes_received += len(data)
            message = ForwardMsg()
            message.ParseFromString(data)
            kind = message.WhichOneof("type")
            if message.metadata.active_script_hash:
                page_hash = message.metadata.active_script_hash
            if kind == "auto_rerun":
                fragment_id = message.auto_rerun.fragment_id
                interval = message.auto_rerun.interval
            elif kind == "script_finished":
                return page_hash, fragment_id, interval

    async def _run(self) -> None:
        socket_url = self.base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
        try:
            async with websockets.connect(
                socket_url,
                subprotocols=[websockets.Subprotocol("streamlit")],
                additional_headers={"Origin": self.base_url, "Cookie": self.cookie_header},
                max_size=None,
            ) as socket:
                began = time.perf_counter()
                await socket.send(self._rerun())
                page_hash, fragment_id, interval = await self._until_finished(socket)
                self.run_seconds.append(time.perf_counter() - began)
                self._opened.set()
                while interval > 0 and fragment_id:
                    await asyncio.sleep(interval)
                    began = time.perf_counter()
                    await socket.send(self._rerun(page_hash, fragment_id))
                    _, next_fragment, next_interval = await self._until_finished(socket)
                    self.run_seconds.append(time.perf_counter() - began)
                    fragment_id = next_fragment or fragment_id
                    interval = next_interval or interval
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a session that breaks is a figure (an error), not a crash
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self._opened.set()
