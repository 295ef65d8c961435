"""Serialise each snapshot once and serve the bytes: the response cache, ETags and 304s.

A body is cached per key (a release, a list query) together with the revision it was made from;
the same revision is served from the cache, a new one replaces it. `read_at` is left out of the
cached bytes and appended per response, so the body still says when the data was read while the
weak ETag stays stable as long as nothing the client cares about changed.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime

from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
_DATETIME = TypeAdapter(datetime)


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
    stamp = _DATETIME.dump_json(read_at)
    if body == b"{}":
        return b'{"read_at":' + stamp + b"}"
    return body[:-1] + b',"read_at":' + stamp + b"}"


class ResponseCache:
    """The last rendered body per key, reused while the key's revision is unchanged (LRU-bound)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[Hashable, tuple[str, bytes]] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: Hashable, revision: str, render: Callable[[], bytes]) -> bytes:
        """The cached body for (key, revision), rendering and storing it on a miss."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == revision:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        body = render()
        self._entries[key] = (revision, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return body

    def __len__(self) -> int:
        return len(self._entries)


def cached_response(
    body: bytes | Callable[[], bytes],
    *,
    etag: str,
    if_none_match: str | None,
    max_age: int,
    media_type: str = JSON,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    """200 with the body, or 304 with no body if the client already holds this ETag."""
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}"}
    headers.update(extra_headers or {})
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    content = body() if callable(body) else body
    return Response(content=content, media_type=media_type, headers=headers)
