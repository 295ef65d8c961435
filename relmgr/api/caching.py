"""Serialise each snapshot once and serve the bytes: the response cache, ETags and 304s.

A body is cached per key (a release, a list query) together with the revision it was made from;
the same revision is served from the cache, a new one replaces it. `read_at` is left out of the
cached bytes and appended per response, so the body still says when the data was read while the
weak ETag stays stable as long as nothing the client cares about changed.

Bodies of `GZIP_MIN_BYTES` or more go out gzip-compressed to clients that accept it, compressed
once per cached revision: the compressed bytes are kept beside the plain ones, left open, and each
response only compresses its short tail (`"read_at": ...}`) and appends it. A 6.4 MB
tree costs one compression per revision, not one per poll.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
_DATETIME = TypeAdapter(datetime)

# Below this a body goes out as it is: a gzip header and trailer are 18 bytes, and small bodies
# gain little while costing a compression per response.
GZIP_MIN_BYTES = 8 * 1024
# zlib's default level: a 6.4 MB tree shrinks ~25x; level 9 gains ~3 % for twice the time.
GZIP_LEVEL = 6
# A fixed gzip header (RFC 1952): magic, deflate, no flags, no mtime (so equal bodies compress
# to equal bytes), no extra flags, OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def digest(*parts: str | bytes) -> str:
    """A short, stable hex digest of some strings or bytes."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def weak_etag(tag: str) -> str:
    """A weak ETag header value (weak: equal means equivalent, not byte-identical)."""
    return f'W/"{tag}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True if an `If-None-Match` header names this ETag (weak comparison) or is `*`."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def dump_without_read_at(model: BaseModel) -> bytes:
    """A model's JSON minus its `read_at` field, ready for `with_read_at`."""
    return model.model_dump_json(exclude={"read_at"}).encode()


def with_read_at(body: bytes, read_at: datetime) -> bytes:
    """Append `"read_at": ...` to a JSON object's bytes made by `dump_without_read_at`."""
    return body[:-1] + _read_at_tail(body, read_at)


def _read_at_tail(body: bytes, read_at: datetime) -> bytes:
    """What replaces the closing brace of `body` in `with_read_at`."""
    separator = b"" if body == b"{}" else b","
    return separator + b'"read_at":' + _DATETIME.dump_json(read_at) + b"}"


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True if an `Accept-Encoding` header accepts gzip (by name or `*`) with a nonzero q."""
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        q = params.strip().lower().removeprefix("q=").strip() if params else "1"
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def gzip_bytes(body: bytes) -> bytes:
    """`body` as one gzip member (fixed header, so equal bodies give equal bytes)."""
    return _GzipStream(body).finish(b"")


class _GzipStream:
    """A gzip stream of some bytes left open, so that different tails can finish it cheaply.

    The head is deflated and sync-flushed (byte-aligned, no final block); a tail is deflated by a
    fresh compressor and its blocks appended, the last one final. A deflate stream is just a run
    of blocks, so the two make one valid stream, and nothing but the compressed head is kept (no
    256 KiB compressor state per cached body).
    """

    def __init__(self, head: bytes) -> None:
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._out = _GZIP_HEADER + deflate.compress(head) + deflate.flush(zlib.Z_SYNC_FLUSH)
        self._crc = zlib.crc32(head)
        self._size = len(head)

    def finish(self, tail: bytes) -> bytes:
        """The whole gzip member of head + tail; compresses only the tail."""
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        end = deflate.compress(tail) + deflate.flush()
        crc = zlib.crc32(tail, self._crc)
        trailer = struct.pack("<II", crc, (self._size + len(tail)) & 0xFFFFFFFF)
        return self._out + end + trailer


class CachedBody:
    """One cached body and, once a client asked for it, its gzip stream (made once)."""

    def __init__(self, plain: bytes, owner: ResponseCache) -> None:
        self.plain = plain
        self._owner = owner
        self._gzip: _GzipStream | None = None
        self._closed: bytes | None = None

    def gzipped(self, read_at: datetime | None = None) -> bytes:
        """The gzip of the body, or of `with_read_at(body, read_at)` if `read_at` is given.

        A body is served either always with `read_at` (JSON) or never (CSV), so one stream per
        body: the JSON one stops before the closing brace, the CSV one is finished once.
        """
        if self._gzip is None:
            self._owner.compressions += 1
            self._gzip = _GzipStream(self.plain[:-1] if read_at is not None else self.plain)
        if read_at is not None:
            return self._gzip.finish(_read_at_tail(self.plain, read_at))
        if self._closed is None:
            self._closed = self._gzip.finish(b"")
        return self._closed


@dataclass(frozen=True)
class Stamped:
    """A cached body to send, with `read_at` appended if given."""

    body: CachedBody
    read_at: datetime | None = None

    def plain(self) -> bytes:
        """The uncompressed bytes of the response."""
        if self.read_at is None:
            return self.body.plain
        return with_read_at(self.body.plain, self.read_at)

    def gzipped(self) -> bytes:
        """The gzip-compressed bytes of the response (compressed once per cached body)."""
        return self.body.gzipped(self.read_at)


class ResponseCache:
    """The last rendered body per key, reused while the key's revision is unchanged (LRU-bound)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[Hashable, tuple[str, CachedBody]] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0
        # Bodies gzip-compressed (each once per revision, on the first client that accepts it).
        self.compressions = 0

    def get_or_render(self, key: Hashable, revision: str, render: Callable[[], bytes]) -> bytes:
        """The cached body for (key, revision), rendering and storing it on a miss."""
        return self.entry(key, revision, render).plain

    def entry(self, key: Hashable, revision: str, render: Callable[[], bytes]) -> CachedBody:
        """The cached body (and its gzip, once made) for (key, revision), rendered on a miss."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == revision:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        body = CachedBody(render(), self)
        self._entries[key] = (revision, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return body

    def __len__(self) -> int:
        return len(self._entries)


def cached_response(
    body: bytes | Stamped | Callable[[], bytes | Stamped],
    *,
    etag: str,
    if_none_match: str | None,
    max_age: int,
    media_type: str = JSON,
    extra_headers: dict[str, str] | None = None,
    accept_encoding: str | None = None,
) -> Response:
    """200 with the body (gzip-compressed if large and accepted), or 304 with no body if the
    client already holds this ETag.

    The ETag is weak and the same for both encodings: a weak validator promises semantic
    equivalence, not identical bytes (RFC 9110, 8.8.1), and the gzip body decodes to exactly the
    plain one, so a client may revalidate either with it and a 304 holds for both. Caches keep
    the two apart by `Vary: Accept-Encoding`. Content-Length is that of the bytes sent.
    """
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}"}
    headers.update(extra_headers or {})
    vary = [v.strip() for v in headers.get("Vary", "").split(",") if v.strip()]
    headers["Vary"] = ", ".join([*vary, "Accept-Encoding"])
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    content = body() if callable(body) else body
    gzip_ok = accepts_gzip(accept_encoding)
    if isinstance(content, Stamped):
        if gzip_ok and len(content.body.plain) >= GZIP_MIN_BYTES:
            headers["Content-Encoding"] = "gzip"
            return Response(content=content.gzipped(), media_type=media_type, headers=headers)
        content = content.plain()
    elif gzip_ok and len(content) >= GZIP_MIN_BYTES:
        # Not a cached snapshot (an export, an entity): compressed for this response only.
        headers["Content-Encoding"] = "gzip"
        content = gzip_bytes(content)
    return Response(content=content, media_type=media_type, headers=headers)
