"""Big releases stay light: gzip once per revision, `?depth=` cuts, a stale tree over a 503."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest
from fastapi import FastAPI

from relmgr.api import reads
from relmgr.api.caching import GZIP_MIN_BYTES, ResponseCache, accepts_gzip
from relmgr.models import ReleaseHierarchy
from relmgr.reader.temporal_reader import TemporalReader
from relmgr.settings import Settings
from relmgr.testing.factories import T0, make_hierarchy, make_plan
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.fakes import FakeClock, FakeVisibility
from tests.api.conftest import demo_trees, http_client

BIG = make_hierarchy("big", waves=3, clusters=8, apps=6)
BIG_URL = "/api/releases/rel-big/hierarchy"
GZIP = {"Accept-Encoding": "gzip"}
WITHIN_BUDGET = reads.within_budget
READ_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
def reader() -> FakeReader:
    """The demo releases and a big one (3 x 8 x 6: its JSON is well over the gzip threshold),
    read at a fixed time, so that two reads give the same bytes."""
    fixed = FakeReader([*demo_trees(), BIG])
    fixed.clock = lambda: READ_AT
    return fixed


def cache_of(app: FastAPI) -> ResponseCache:
    cache: ResponseCache = app.state.api.cache
    return cache


@dataclass(frozen=True)
class Wire:
    """A response as sent: its headers and its bytes before any decoding."""

    headers: httpx.Headers
    content: bytes


async def raw(api: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Wire:
    """The response with the bytes on the wire (`response.content` would be gunzipped)."""
    async with api.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        return Wire(response.headers, b"".join([chunk async for chunk in response.aiter_raw()]))


async def test_big_json_is_gzipped_and_decodes_to_the_plain_body(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """With `Accept-Encoding: gzip` the big tree is sent compressed; it decompresses to the plain
    body byte for byte (`read_at` included), with Content-Length the compressed size."""
    plain = await raw(api, BIG_URL, {**auth, **IDENTITY})
    packed = await raw(api, BIG_URL, {**auth, **GZIP})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) == len(packed.content)
    assert len(plain.content) >= GZIP_MIN_BYTES > len(packed.content)
    unpacked = gzip.decompress(packed.content)
    assert unpacked == plain.content
    assert json.loads(unpacked)["release"]["id"] == "rel-big"
    for response in (plain, packed):
        assert response.headers["vary"] == "Accept, Accept-Encoding"
    assert packed.headers["etag"] == plain.headers["etag"]


async def test_big_csv_gzip_decodes_to_exactly_the_plain_csv(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The CSV carries no `read_at`: its gzip decompresses to exactly the same bytes."""
    plain = await raw(api, BIG_URL + "?format=csv", {**auth, **IDENTITY})
    packed = await raw(api, BIG_URL + "?format=csv", {**auth, **GZIP})
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert len(plain.content) >= GZIP_MIN_BYTES


async def test_a_revision_is_compressed_once_whatever_the_polls(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """Ten gzip polls of the same tree: one compression; each still has its own `read_at`."""
    ticks = iter(range(100))
    reader.clock = lambda: READ_AT + timedelta(seconds=next(ticks))
    stamps = set()
    for _ in range(10):
        response = await raw(api, BIG_URL, {**auth, **GZIP})
        stamps.add(json.loads(gzip.decompress(response.content))["read_at"])
    assert cache_of(app).compressions == 1
    assert len(stamps) == 10  # the tail differs per read, the compression is shared


async def test_a_new_revision_is_compressed_again(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """A changed tree (new revision) is compressed once more, and its gzip says so."""
    await api.get(BIG_URL, headers={**auth, **GZIP})
    reader.put(BIG.model_copy(update={"revision": "changed"}))
    first = await raw(api, BIG_URL, {**auth, **GZIP})
    second = await raw(api, BIG_URL, {**auth, **GZIP})
    assert cache_of(app).compressions == 2
    assert first.headers["etag"] == second.headers["etag"] == 'W/"h-changed"'


async def test_small_bodies_are_not_compressed(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """rel-old's tree is under the threshold: sent as is, still `Vary: Accept-Encoding`."""
    response = await raw(api, "/api/releases/rel-old/hierarchy", {**auth, **GZIP})
    assert len(response.content) < GZIP_MIN_BYTES
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept, Accept-Encoding"
    assert json.loads(response.content)["release"]["id"] == "rel-old"
    assert cache_of(app).compressions == 0


async def test_304_and_head_work_with_gzip(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """The weak ETag revalidates either encoding (304, no body); HEAD gives the GET's length."""
    packed = await raw(api, BIG_URL, {**auth, **GZIP})
    etag = packed.headers["etag"]
    for encoding in (GZIP, IDENTITY):
        again = await api.get(BIG_URL, headers={**auth, **encoding, "If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
    head = await api.head(BIG_URL, headers={**auth, **GZIP})
    assert head.status_code == 200
    assert head.headers["content-encoding"] == "gzip"
    assert head.headers["content-length"] == packed.headers["content-length"]


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(header: str | None, accepted: bool) -> None:
    """gzip (or `*`) with a nonzero q accepts gzip; q=0 or other codings do not."""
    assert accepts_gzip(header) is accepted


async def test_depth_1_is_the_release_and_its_waves_with_their_rollups(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`?depth=1`: three waves, no clusters, each wave's roll-up still counting its 48 apps."""
    response = await api.get(BIG_URL + "?depth=1", headers=auth)
    assert response.status_code == 200
    release = response.json()["release"]
    assert [wave["clusters"] for wave in release["waves"]] == [[], [], []]
    whole = BIG.release.model_dump(mode="json")
    assert [w["rollup"] for w in release["waves"]] == [w["rollup"] for w in whole["waves"]]
    assert release["rollup"] == whole["rollup"]
    assert release["waves"][0]["rollup"]["apps"]["succeeded"] == 48


async def test_depth_2_stops_at_the_clusters_and_3_is_everything(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`?depth=2`: 24 clusters each with its bundle and no apps; `?depth=3` = no depth at all."""
    cut = (await api.get(BIG_URL + "?depth=2", headers=auth)).json()["release"]
    clusters = [c for wave in cut["waves"] for c in wave["clusters"]]
    assert len(clusters) == 24
    assert {len(c["bundle"]["apps"]) for c in clusters} == {0}
    full = await api.get(BIG_URL + "?depth=3", headers=auth)
    default = await api.get(BIG_URL, headers=auth)
    assert full.headers["etag"] == default.headers["etag"]
    drop = "read_at"
    assert {k: v for k, v in full.json().items() if k != drop} == {
        k: v for k, v in default.json().items() if k != drop
    }
    depth_2 = await api.get(BIG_URL + "?depth=2", headers=auth)
    assert depth_2.headers["etag"] != full.headers["etag"]


async def test_depth_applies_to_the_csv(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """`?depth=1&format=csv`: a header, the release and its 3 waves."""
    response = await api.get(BIG_URL + "?depth=1&format=csv", headers=auth)
    lines = response.text.strip().splitlines()
    assert len(lines) == 1 + 1 + 3


@pytest.mark.parametrize("depth", ["0", "4", "-1", "abc", "1.5", ""])
async def test_bad_depth_gets_422_naming_it(
    api: httpx.AsyncClient, auth: dict[str, str], depth: str
) -> None:
    """A depth outside 1-3 (or not a number) is refused with a message naming `depth`."""
    response = await api.get(f"{BIG_URL}?depth={depth}", headers=auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert "depth" in error["message"]


class LapsedReader(FakeReader):
    """A reader whose cold load of a tree hangs, but which kept the tree it watched before."""

    def __init__(self, kept: ReleaseHierarchy | None) -> None:
        super().__init__(demo_trees())
        self.kept = kept

    async def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    def previous_hierarchy(self, release_id: str) -> ReleaseHierarchy | None:
        return self.kept if self.kept and self.kept.release.id == release_id else None


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50 ms read budget instead of 1.8 s, so a hung read times out quickly."""
    monkeypatch.setattr(reads, "within_budget", partial(WITHIN_BUDGET, seconds=0.05))


@pytest.mark.usefixtures("short_budget")
async def test_a_cold_read_past_the_budget_answers_from_the_kept_tree_marked_stale(
    app_for: Callable[..., FastAPI], auth: dict[str, str]
) -> None:
    """The kept tree, 200, `X-Relmgr-Stale: true`, `Age` = its age, `max-age=0`, its read_at."""
    read_at = datetime.now(UTC) - timedelta(seconds=90)
    kept = BIG.model_copy(update={"read_at": read_at})
    async with http_client(app_for(reader_=LapsedReader(kept))) as api:
        response = await api.get(BIG_URL, headers=auth)
    assert response.status_code == 200
    assert response.headers["x-relmgr-stale"] == "true"
    assert 90 <= int(response.headers["age"]) <= 95
    assert response.headers["cache-control"] == "private, max-age=0"
    body = response.json()
    assert datetime.fromisoformat(body["read_at"]) == read_at
    assert body["release"]["id"] == "rel-big"


@pytest.mark.usefixtures("short_budget")
async def test_a_cold_read_past_the_budget_without_a_kept_tree_is_still_503(
    app_for: Callable[..., FastAPI], auth: dict[str, str]
) -> None:
    """Nothing kept of this release: the timeout stands, 503 naming the budget."""
    async with http_client(app_for(reader_=LapsedReader(None))) as api:
        response = await api.get(BIG_URL, headers=auth)
    assert response.status_code == 503
    assert "x-relmgr-stale" not in response.headers
    assert "0.05 s" in response.json()["error"]["message"]


@pytest.mark.usefixtures("short_budget")
async def test_a_lapsed_release_is_answered_stale_through_the_real_reader_then_fresh(
    app_for: Callable[..., FastAPI], auth: dict[str, str]
) -> None:
    """Over the fake visibility: a release read, then not read for the watch TTL, lapses; its
    next cold load hangs past the budget, so the kept tree answers (stale, with its age); once
    the load finishes the fresh tree answers, not stale."""
    source = FakeVisibility()
    source.add_release("rel-big", make_plan(waves=2, clusters=3, apps=2))
    clock = FakeClock(T0 + timedelta(minutes=5))
    reader = TemporalReader(source, Settings(), clock=clock)
    async with http_client(app_for(reader_=reader)) as api:
        first = await api.get(BIG_URL, headers=auth)
        assert (first.status_code, "x-relmgr-stale" in first.headers) == (200, False)
        clock.advance(61)
        await reader.cache.refresh_once()
        assert reader.cache.watched_releases() == []
        source.gate = asyncio.Event()
        stale = await api.get(BIG_URL, headers=auth)
        assert stale.status_code == 200
        assert stale.headers["x-relmgr-stale"] == "true"
        read_at = datetime.fromisoformat(stale.json()["read_at"])
        assert read_at == datetime.fromisoformat(first.json()["read_at"])
        age = (datetime.now(UTC) - read_at).total_seconds()
        assert abs(int(stale.headers["age"]) - age) < 5
        assert stale.json()["release"] == first.json()["release"]
        source.gate.set()
        for _ in range(20):
            await asyncio.sleep(0)
        fresh = await api.get(BIG_URL, headers=auth)
    assert (fresh.status_code, "x-relmgr-stale" in fresh.headers) == (200, False)
    assert datetime.fromisoformat(fresh.json()["read_at"]) == clock.now()
    await reader.aclose()


WAVE_2 = "rel-big.wave-2"


async def test_an_entity_subtree_is_that_node_of_the_release_tree(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`GET /api/entities/{wave}/hierarchy`: the wave as in the whole tree, with its release,
    revision and read_at; a cluster's subtree is its bundle and apps."""
    response = await api.get(f"/api/entities/{WAVE_2}/hierarchy", headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["node"] == BIG.release.waves[1].model_dump(mode="json")
    assert (body["release_id"], body["revision"]) == ("rel-big", BIG.revision)
    assert datetime.fromisoformat(body["read_at"]) == READ_AT
    cluster = BIG.release.waves[1].clusters[3]
    one = (await api.get(f"/api/entities/{cluster.id}/hierarchy", headers=auth)).json()
    assert one["node"] == cluster.model_dump(mode="json")
    assert len(one["node"]["bundle"]["apps"]) == 6


async def test_an_entity_subtree_is_cached_gzipped_and_revalidated(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """A wave of the big tree (over 8 KiB) is gzipped once over polls; its ETag gives a 304."""
    url = f"/api/entities/{WAVE_2}/hierarchy"
    plain = await raw(api, url, {**auth, **IDENTITY})
    for _ in range(3):
        packed = await raw(api, url, {**auth, **GZIP})
    assert gzip.decompress(packed.content) == plain.content
    assert cache_of(app).compressions == 1
    again = await api.get(url, headers={**auth, "If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("entity_id", "status", "code"),
    [
        ("rel-big.wave-9", 404, "not_found"),
        ("rel-nope.wave-1", 404, "not_found"),
        ("rel-big.wave-x", 422, "invalid_id"),
        ("not an id", 422, "invalid_id"),
    ],
)
async def test_an_unknown_or_malformed_subtree_id_is_refused(
    api: httpx.AsyncClient, auth: dict[str, str], entity_id: str, status: int, code: str
) -> None:
    """An entity its release does not have, or an unknown release: 404; a malformed ID: 422."""
    response = await api.get(f"/api/entities/{entity_id}/hierarchy", headers=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.usefixtures("short_budget")
async def test_an_entity_subtree_is_answered_stale_from_the_kept_tree(
    app_for: Callable[..., FastAPI], auth: dict[str, str]
) -> None:
    """The subtree of a kept tree when the cold read outruns the budget, marked stale."""
    kept = BIG.model_copy(update={"read_at": datetime.now(UTC) - timedelta(seconds=30)})
    async with http_client(app_for(reader_=LapsedReader(kept))) as api:
        response = await api.get(f"/api/entities/{WAVE_2}/hierarchy", headers=auth)
    assert response.status_code == 200
    assert response.headers["x-relmgr-stale"] == "true"
    assert 30 <= int(response.headers["age"]) <= 35
    assert response.json()["node"]["id"] == WAVE_2
