"""A minimal HTTP/1.1 keep-alive GET client on asyncio streams, for the saturation steps.

httpx costs its caller several milliseconds of CPU per request, three times what the API spends
answering one; on a 2-core machine shared with the API, the load generator, not the API, would
set the "highest sustained rate". This client does only what the steps need (GET, a few headers,
a Content-Length body or none for 304) at a fraction of that cost, so the steps measure the API.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

# uvicorn closes a keep-alive connection after 5 s idle; one idle this long is not reused.
MAX_IDLE_SECONDS = 4.0

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class RawResponse:
    """Status, headers (lower-case names) and body."""

    status_code: int
    headers: dict[str, str]
    content: bytes


class RawHttpError(Exception):
    """The connection failed or the answer could not be read."""


@dataclass
class RawClient:
    """Up to `connections` keep-alive connections to one host, reused in turn."""

    host: str
    port: int
    headers: dict[str, str]
    connections: int = 64
    timeout: float = 10.0
    _idle: list[tuple[Connection, float]] = field(default_factory=list)
    _open: int = 0
    _free: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _acquire(self) -> tuple[Connection, bool]:
        """A connection, and whether it was used before (it may have been closed meanwhile)."""
        async with self._free:
            while True:
                now = time.monotonic()
                while self._idle and now - self._idle[-1][1] > MAX_IDLE_SECONDS:
                    self._idle.pop()[0][1].close()
                    self._open -= 1
                if self._idle or self._open < self.connections:
                    break
                await self._free.wait()
            if self._idle:
                return self._idle.pop()[0], True
            self._open += 1
        try:
            return await asyncio.open_connection(self.host, self.port), False
        except OSError as exc:
            async with self._free:
                self._open -= 1
                self._free.notify()
            raise RawHttpError(f"connect: {exc}") from exc

    async def _release(self, connection: Connection | None) -> None:
        async with self._free:
            if connection is None:
                self._open -= 1
            else:
                self._idle.append((connection, time.monotonic()))
            self._free.notify()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        """One GET; RawHttpError if it fails or takes longer than `timeout`.

        A reused connection that the server closed before answering (EOF before the first byte)
        is retried once on a new connection, as any HTTP client does with keep-alive.
        """
        for _ in range(2):
            connection, reused = await self._acquire()
            try:
                response = await asyncio.wait_for(
                    self._exchange(connection, path, headers or {}), self.timeout
                )
            except asyncio.IncompleteReadError as exc:
                connection[1].close()
                await self._release(None)
                if reused and not exc.partial:
                    continue
                raise RawHttpError(f"IncompleteReadError: {exc}") from exc
            except (OSError, TimeoutError, ValueError) as exc:
                connection[1].close()
                await self._release(None)
                raise RawHttpError(f"{type(exc).__name__}: {exc}") from exc
            await self._release(connection)
            return response
        raise RawHttpError("the server closed two connections in a row before answering")

    async def _exchange(
        self,
        connection: Connection,
        path: str,
        headers: dict[str, str],
    ) -> RawResponse:
        reader, writer = connection
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in {**self.headers, **headers}.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        found: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                found[name.strip().lower()] = value.strip()
        length = int(found.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return RawResponse(status_code=status, headers=found, content=body)

    async def aclose(self) -> None:
        """Close every idle connection."""
        async with self._free:
            for (_, writer), _ in self._idle:
                writer.close()
            self._idle.clear()
