"""The read routes' happy paths: exact bodies, filters, paging, CSV, ETags and 304s, the cache."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from relmgr.api.deps import ApiState
from relmgr.models import EntityKind, EntityState, ReleaseHierarchy
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import FAILED_APP, demo_trees
from tests.progress.test_timeline import running_release, timed_tree

PAYMENTS_ITEM: dict[str, Any] = {
    "id": "rel-payments",
    "kind": "release",
    "release_id": "rel-payments",
    "parent_id": None,
    "state": "IN_PROGRESS",
    "started_at": "2026-11-26T13:00:00Z",
    # The newest change in the release's tree (an app's), not the release workflow's own.
    "last_changed_at": "2026-11-26T13:00:05Z",
    "finished_at": None,
    "attempt": 1,
    "last_error": None,
    "started": True,
    "max_attempts": None,
    "next_retry_at": None,
    "scheduled_for": None,
    "waves_total": 1,
    "clusters_total": 1,
    "current_wave": 1,
    "apps": {
        "pending": 0,
        "in_progress": 1,
        "retrying": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
        "awaiting_approval": 0,
        "paused": 0,
    },
    "controls": [],
    "held": [],
    "audit": [],
    "percent_complete": 50.0,
    "duration_seconds": None,
}
ALL_COUNTS = {
    "pending": 0,
    "in_progress": 1,
    "retrying": 0,
    "succeeded": 1,
    "failed": 1,
    "cancelled": 0,
    "awaiting_approval": 0,
    "paused": 0,
}

# rel-demo: 7 succeeded + 1 failed; rel-payments: 1 in progress + 1 succeeded; rel-old: 1 succeeded.
ALL_APPS = {
    "pending": 0,
    "in_progress": 1,
    "retrying": 0,
    "succeeded": 9,
    "failed": 1,
    "cancelled": 0,
    "awaiting_approval": 0,
    "paused": 0,
}
NO_COUNTS = dict.fromkeys(ALL_COUNTS, 0)


def _state(app: FastAPI) -> ApiState:
    state: ApiState = app.state.api
    return state


def _csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


# --- the release list -------------------------------------------------------------------------


async def test_list_returns_the_first_page_newest_first(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Default query: all three releases by start time, descending, with paging and counts."""
    response = await api.get("/api/releases", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    read_at = body.pop("read_at")
    assert read_at.endswith("Z")
    assert [item["id"] for item in body.pop("items")] == ["rel-payments", "rel-demo", "rel-old"]
    assert body == {
        "total": 3,
        "page": 1,
        "page_size": 50,
        "pages": 1,
        "counts": ALL_COUNTS,
        "app_counts": ALL_APPS,
    }


async def test_list_item_has_every_field_and_percent_complete(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """A list item is the release summary plus its percent of apps deployed."""
    body = (await api.get("/api/releases", headers=auth)).json()
    assert body["items"][0] == PAYMENTS_ITEM


async def test_list_filters_by_state_and_keeps_counts_over_all(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`state=FAILED` keeps the failed release; counts still cover every release."""
    body = (await api.get("/api/releases?state=FAILED", headers=auth)).json()
    assert [item["id"] for item in body["items"]] == ["rel-demo"]
    assert body["total"] == 1
    assert body["counts"] == ALL_COUNTS


async def test_list_searches_ids(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """`q` keeps releases whose ID contains the text; the counts follow the search."""
    body = (await api.get("/api/releases?q=pay", headers=auth)).json()
    assert [item["id"] for item in body["items"]] == ["rel-payments"]
    assert body["counts"] == {**NO_COUNTS, "in_progress": 1}
    assert body["app_counts"] == {**NO_COUNTS, "in_progress": 1, "succeeded": 1}


async def test_a_search_matching_nothing_is_a_clean_empty_page(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """No match is a 200 with no items and zero counts (JSON), a header-only CSV."""
    response = await api.get("/api/releases?q=nothing-like-this", headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert (body["items"], body["total"], body["pages"]) == ([], 0, 1)
    assert (body["counts"], body["app_counts"]) == (NO_COUNTS, NO_COUNTS)
    exported = await api.get("/api/releases?q=nothing-like-this&format=csv", headers=auth)
    assert exported.status_code == 200
    assert len(_csv(exported)) == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort=id&order=asc", ["rel-demo", "rel-old", "rel-payments"]),
        ("sort=id&order=desc", ["rel-payments", "rel-old", "rel-demo"]),
        ("sort=percent_complete&order=desc", ["rel-old", "rel-demo", "rel-payments"]),
        ("sort=started_at&order=asc", ["rel-old", "rel-demo", "rel-payments"]),
    ],
)
async def test_list_sorts(
    api: httpx.AsyncClient, auth: dict[str, str], query: str, expected: list[str]
) -> None:
    """`sort` and `order` choose the column and the direction."""
    body = (await api.get(f"/api/releases?{query}", headers=auth)).json()
    assert [item["id"] for item in body["items"]] == expected


async def test_list_pages(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """page_size=2: page 1 has two releases, page 2 the third; both say 2 pages of 3."""
    first = (await api.get("/api/releases?page_size=2&sort=id&order=asc", headers=auth)).json()
    second = (
        await api.get("/api/releases?page=2&page_size=2&sort=id&order=asc", headers=auth)
    ).json()
    assert [i["id"] for i in first["items"]] == ["rel-demo", "rel-old"]
    assert [i["id"] for i in second["items"]] == ["rel-payments"]
    assert (first["pages"], first["total"], second["page"]) == (2, 3, 2)


async def test_page_past_the_end_is_empty_not_an_error(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """A page beyond the last is an empty page with the true total."""
    body = (await api.get("/api/releases?page=9", headers=auth)).json()
    assert (body["items"], body["total"], body["page"]) == ([], 3, 9)


async def test_list_csv_holds_every_matching_release(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`format=csv` ignores paging: every matching release, in the requested order."""
    before = datetime.now(UTC)
    response = await api.get("/api/releases?format=csv&page_size=1&sort=id&order=asc", headers=auth)
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="releases.csv"'
    assert "x-relmgr-export-truncated-at" not in response.headers
    rows = _csv(response)
    assert rows[0] == [
        "id",
        "state",
        "percent_complete",
        "apps_total",
        "apps_pending",
        "apps_in_progress",
        "apps_retrying",
        "apps_awaiting_approval",
        "apps_paused",
        "apps_succeeded",
        "apps_failed",
        "apps_cancelled",
        "current_wave",
        "waves_total",
        "started_at_utc",
        "last_changed_at_utc",
        "finished_at_utc",
        "duration_seconds",
        "last_error",
    ]
    # A running release lasts until the data was read (between the request's start and end).
    started = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    running_for = int(rows[3][17])
    assert int((before - started).total_seconds()) <= running_for
    assert running_for <= int((after - started).total_seconds())
    assert rows[1:] == [
        [
            "rel-demo",
            "FAILED",
            "87.5",
            "8",
            "0",
            "0",
            "0",
            "0",
            "0",
            "7",
            "1",
            "0",
            "2",
            "2",
            "2026-11-26 12:00:00",
            "2026-11-26 12:00:18",
            "2026-11-26 12:00:00",
            "0",
            "",
        ],
        [
            "rel-old",
            "SUCCEEDED",
            "100.0",
            "1",
            "0",
            "0",
            "0",
            "0",
            "0",
            "1",
            "0",
            "0",
            "1",
            "1",
            "2026-11-25 12:00:00",
            "2026-11-25 12:00:04",
            "2026-11-25 12:00:00",
            "0",
            "",
        ],
        [
            "rel-payments",
            "IN_PROGRESS",
            "50.0",
            "2",
            "0",
            "1",
            "0",
            "0",
            "0",
            "1",
            "0",
            "0",
            "1",
            "1",
            "2026-11-26 13:00:00",
            "2026-11-26 13:00:05",
            "",
            str(running_for),
            "",
        ],
    ]


async def test_list_csv_is_filtered_like_the_list(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`Accept: text/csv` works like `format=csv`, and the state filter applies."""
    response = await api.get(
        "/api/releases?state=SUCCEEDED", headers={**auth, "Accept": "text/csv"}
    )
    assert [row[0] for row in _csv(response)] == ["id", "rel-old"]


async def test_csv_export_walks_every_page_of_the_reader(
    app_for: Any, auth: dict[str, str]
) -> None:
    """With more releases than one reader page (500), the CSV still holds them all, once each."""
    trees = [
        make_hierarchy(f"r{n:04d}", waves=1, clusters=1, apps=1, default=EntityState.SUCCEEDED)
        for n in range(1203)
    ]
    reader = FakeReader(trees)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_for(reader_=reader)), base_url="http://testserver"
    ) as api:
        response = await api.get("/api/releases?format=csv&sort=id&order=asc", headers=auth)
    ids = [row[0] for row in _csv(response)[1:]]
    assert ids == sorted(f"rel-r{n:04d}" for n in range(1203))
    assert reader.calls.count("list_releases") == 3


@pytest.mark.parametrize(
    ("accept", "is_csv"),
    [
        ("text/csv", True),
        ("text/csv;q=0.9, application/json", False),
        ("application/json;q=0.5, text/csv", True),
        ("*/*", False),
        ("text/csv;q=0", False),
    ],
)
async def test_accept_header_negotiation(
    api: httpx.AsyncClient, auth: dict[str, str], accept: str, is_csv: bool
) -> None:
    """CSV only when the client prefers text/csv over everything else it lists."""
    response = await api.get("/api/releases", headers={**auth, "Accept": accept})
    assert response.headers["content-type"].startswith("text/csv") is is_csv


async def test_format_json_beats_accept_csv(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """An explicit `format=json` wins over an Accept header asking for CSV."""
    response = await api.get("/api/releases?format=json", headers={**auth, "Accept": "text/csv"})
    assert response.headers["content-type"] == "application/json"


# --- one release, its hierarchy, any entity ----------------------------------------------------


async def test_get_release(api: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """One release is exactly its list item."""
    response = await api.get("/api/releases/rel-payments", headers=auth)
    assert response.status_code == 200
    assert response.json() == PAYMENTS_ITEM


async def test_a_finished_release_carries_its_duration(
    api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """Where a start and a finish exist, the item says how many seconds lay between them."""
    reader.put(timed_tree("took", {"": (EntityState.SUCCEEDED, 0, 1000.5)}, waves=1))
    body = (await api.get("/api/releases/rel-took", headers=auth)).json()
    assert body["duration_seconds"] == 1000.5
    listed = (await api.get("/api/releases?q=took", headers=auth)).json()
    assert listed["items"][0]["duration_seconds"] == 1000.5


async def test_hierarchy_is_the_readers_tree_with_a_fresh_read_at(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The body is the domain tree as is (revision included); read_at is the read's time."""
    tree = demo_trees()[1]
    response = await api.get("/api/releases/rel-payments/hierarchy", headers=auth)
    assert response.status_code == 200
    body = response.json()
    read_at = body.pop("read_at")
    expected = tree.model_dump(mode="json")
    del expected["read_at"]
    assert body == expected
    # The time of this read, not the time stored in the fake's tree.
    age = datetime.now(UTC) - datetime.fromisoformat(read_at)
    assert timedelta(0) <= age < timedelta(minutes=1)
    assert body["revision"] == tree.revision
    app = body["release"]["waves"][0]["clusters"][0]["bundle"]["apps"][1]
    assert (app["id"], app["kind"], app["state"]) == (
        "rel-payments.wave-1.cluster-c1.bundle-core.app-a2",
        "app",
        "IN_PROGRESS",
    )


async def test_hierarchy_csv_has_one_row_per_entity(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """`format=csv`: 1 + 2 waves + 2x2 clusters + 2x2 bundles + 8 apps = 19 rows, defused errors."""
    response = await api.get("/api/releases/rel-demo/hierarchy?format=csv", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="rel-demo.csv"'
    rows = _csv(response)
    assert rows[0] == [
        "kind",
        "id",
        "parent_id",
        "wave",
        "cluster",
        "bundle",
        "app",
        "state",
        "started_at_utc",
        "last_changed_at_utc",
        "finished_at_utc",
        "duration_seconds",
        "attempt",
        "last_error",
        "apps_total",
        "apps_pending",
        "apps_in_progress",
        "apps_retrying",
        "apps_awaiting_approval",
        "apps_paused",
        "apps_succeeded",
        "apps_failed",
        "apps_cancelled",
    ]
    assert len(rows) == 1 + 19
    failed = next(row for row in rows if row[1] == FAILED_APP)
    assert failed[3:8] == ["2", "c1", "core", "a2", "FAILED"]
    assert failed[8] == "2026-11-26 12:00:00"
    assert failed[9] == failed[10] != ""
    assert failed[12:] == [
        "2",
        '\'=HYPERLINK("http://evil")',
        "1",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "1",
        "0",
    ]
    assert [row[0] for row in rows[1:4]] == ["release", "wave", "cluster"]


@pytest.mark.parametrize(
    ("entity_id", "kind", "children"),
    [
        ("rel-demo", EntityKind.RELEASE, 2),
        ("rel-demo.wave-2", EntityKind.WAVE, 2),
        ("rel-demo.wave-2.cluster-c1", EntityKind.CLUSTER, 1),
        ("rel-demo.wave-2.cluster-c1.bundle-core", EntityKind.BUNDLE, 2),
        (FAILED_APP, EntityKind.APP, 0),
    ],
)
async def test_entity_of_each_kind_says_its_kind(
    api: httpx.AsyncClient,
    auth: dict[str, str],
    entity_id: str,
    kind: EntityKind,
    children: int,
) -> None:
    """Every kind is served by the one entity route, with breadcrumbs and children."""
    response = await api.get(f"/api/entities/{entity_id}", headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["entity"]["id"] == entity_id
    assert body["entity"]["kind"] == kind.value
    assert len(body["children"]) == children
    depth = list(EntityKind).index(kind)
    assert [crumb["kind"] for crumb in body["breadcrumbs"]] == [
        k.value for k in list(EntityKind)[:depth]
    ]
    assert set(body) == {"entity", "breadcrumbs", "children", "rollup", "read_at"}


async def test_failed_app_entity_carries_its_error(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The app's detail has its state, attempt and last error exactly."""
    entity = (await api.get(f"/api/entities/{FAILED_APP}", headers=auth)).json()["entity"]
    assert entity == {
        "id": FAILED_APP,
        "kind": "app",
        "release_id": "rel-demo",
        "parent_id": "rel-demo.wave-2.cluster-c1.bundle-core",
        "state": "FAILED",
        "started_at": "2026-11-26T12:00:00Z",
        "last_changed_at": entity["last_changed_at"],
        "finished_at": entity["last_changed_at"],
        "attempt": 2,
        "last_error": '=HYPERLINK("http://evil")',
        "started": True,
        "max_attempts": None,
        "next_retry_at": None,
        "scheduled_for": None,
        "duration_seconds": (
            datetime.fromisoformat(entity["last_changed_at"]) - T0
        ).total_seconds(),
    }
    assert entity["duration_seconds"] > 0


async def test_hierarchy_carries_each_entitys_duration(
    api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """Finished entities say how many seconds lay between start and finish; running and planned
    ones say null (a duration up to the time of reading would change every cached body)."""
    reader.put(running_release())
    body = (await api.get("/api/releases/rel-run/hierarchy", headers=auth)).json()
    release = body["release"]
    wave_1, wave_2, wave_3 = release["waves"]
    assert release["duration_seconds"] is None
    assert (wave_1["duration_seconds"], wave_2["duration_seconds"]) == (480, None)
    assert wave_3["duration_seconds"] is None
    assert [c["duration_seconds"] for c in wave_1["clusters"]] == [400, 480]
    assert [a["duration_seconds"] for a in wave_1["clusters"][1]["bundle"]["apps"]] == [120] * 4
    running = wave_2["clusters"][0]["bundle"]["apps"]
    assert [a["duration_seconds"] for a in running] == [100, 100, None, None]
    assert [a["state"] for a in running] == ["SUCCEEDED", "SUCCEEDED", "IN_PROGRESS", "PENDING"]
    depth_1 = (await api.get("/api/releases/rel-run/hierarchy?depth=1", headers=auth)).json()
    assert [w["duration_seconds"] for w in depth_1["release"]["waves"]] == [480, None, None]


async def test_a_hierarchy_body_parses_back_to_the_readers_tree(
    api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """A client (or relmgr itself) can parse the body as a `ReleaseHierarchy` again."""
    tree = running_release()
    reader.put(tree)
    response = await api.get("/api/releases/rel-run/hierarchy", headers=auth)
    parsed = ReleaseHierarchy.model_validate_json(response.content)
    assert parsed.release == tree.release
    assert parsed.revision == tree.revision


async def test_subtree_and_entity_carry_durations(
    api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """A cluster's subtree and a wave's entity detail carry the same durations as the tree."""
    reader.put(running_release())
    cluster_id = "rel-run.wave-1.cluster-c2"
    subtree = (await api.get(f"/api/entities/{cluster_id}/hierarchy", headers=auth)).json()
    node = subtree["node"]
    assert (node["duration_seconds"], node["bundle"]["duration_seconds"]) == (480, 480)
    assert [a["duration_seconds"] for a in node["bundle"]["apps"]] == [120] * 4
    running = (
        await api.get("/api/entities/rel-run.wave-2.cluster-c1/hierarchy", headers=auth)
    ).json()["node"]
    assert running["duration_seconds"] is None
    wave = (await api.get("/api/entities/rel-run.wave-1", headers=auth)).json()
    assert wave["entity"]["duration_seconds"] == 480
    assert [c["duration_seconds"] for c in wave["children"]] == [400, 480]
    release = (await api.get("/api/entities/rel-run", headers=auth)).json()
    assert release["entity"]["duration_seconds"] is None
    assert [w["duration_seconds"] for w in release["children"]] == [480, None, None]


# --- ETags, 304 and the snapshot cache -----------------------------------------------------------

READ_URLS = [
    "/api/releases",
    "/api/releases?format=csv",
    "/api/releases/rel-demo",
    "/api/releases/rel-demo/hierarchy",
    "/api/releases/rel-demo/hierarchy?format=csv",
    f"/api/entities/{FAILED_APP}",
]


@pytest.mark.parametrize("url", READ_URLS)
async def test_reads_send_a_weak_etag_and_private_cache_control(
    api: httpx.AsyncClient, auth: dict[str, str], url: str
) -> None:
    """Every read carries a weak ETag and `Cache-Control: private, max-age=...`."""
    response = await api.get(url, headers=auth)
    assert response.status_code == 200
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["cache-control"] == "private, max-age=2"


@pytest.mark.parametrize("url", READ_URLS)
async def test_if_none_match_gives_304_with_no_body(
    api: httpx.AsyncClient, auth: dict[str, str], url: str
) -> None:
    """Sending the ETag back gets 304 with an empty body and the same ETag."""
    etag = (await api.get(url, headers=auth)).headers["etag"]
    response = await api.get(url, headers={**auth, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_the_release_csv_etag_follows_the_data_not_the_running_durations(
    api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """A running release's duration in the CSV grows with each read; the ETag stays until a
    release changes, so a poller of unchanged data gets 304 (as for the JSON list)."""
    url = "/api/releases?format=csv"
    reader.clock = lambda: T0 + timedelta(hours=1)
    first = await api.get(url, headers=auth)
    reader.clock = lambda: T0 + timedelta(hours=1, seconds=10)
    later = await api.get(url, headers=auth)
    assert later.text != first.text
    assert later.headers["etag"] == first.headers["etag"]
    unchanged = await api.get(url, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    reader.put(make_hierarchy("payments", waves=1, clusters=1, apps=2, started_at=T0))
    changed = await api.get(url, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    assert changed.headers["etag"] != first.headers["etag"]


async def test_if_none_match_accepts_lists_and_strong_form(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """A list of ETags, or the strong form of ours, also match (weak comparison)."""
    etag = (await api.get("/api/releases", headers=auth)).headers["etag"]
    listed = await api.get("/api/releases", headers={**auth, "If-None-Match": f'"x", {etag}'})
    strong = await api.get(
        "/api/releases", headers={**auth, "If-None-Match": etag.removeprefix("W/")}
    )
    assert (listed.status_code, strong.status_code) == (304, 304)


async def test_stale_etag_gets_the_new_body(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str], reader: FakeReader
) -> None:
    """When the tree changes, the old ETag no longer matches: 200 with the new state."""
    url = "/api/releases/rel-payments/hierarchy"
    etag = (await api.get(url, headers=auth)).headers["etag"]
    reader.put(make_hierarchy("payments", waves=1, clusters=1, apps=2, started_at=T0))
    response = await api.get(url, headers={**auth, "If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.json()["release"]["state"] == "SUCCEEDED"


async def test_etag_differs_between_json_and_csv_and_between_queries(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Different representations and different queries never share an ETag."""
    urls = [
        "/api/releases",
        "/api/releases?format=csv",
        "/api/releases?page_size=2",
        "/api/releases?state=FAILED",
        "/api/releases/rel-demo/hierarchy",
        "/api/releases/rel-demo/hierarchy?format=csv",
    ]
    etags = [(await api.get(url, headers=auth)).headers["etag"] for url in urls]
    assert len(set(etags)) == len(urls)


async def test_same_revision_is_serialised_once(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Ten polls of an unchanged tree render its JSON once; each still gets a fresh read_at."""
    cache = _state(app).cache
    read_ats = set()
    for _ in range(10):
        body = (await api.get("/api/releases/rel-demo/hierarchy", headers=auth)).json()
        read_ats.add(body["read_at"])
    assert (cache.misses, cache.hits) == (1, 9)
    assert len(read_ats) > 1


async def test_list_is_serialised_once_per_query_and_revision(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Repeated list polls hit the cache; a different page is a different entry."""
    cache = _state(app).cache
    for _ in range(5):
        await api.get("/api/releases", headers=auth)
    await api.get("/api/releases?page=2&page_size=1", headers=auth)
    assert (cache.misses, cache.hits) == (2, 4)


async def test_304_does_not_render_the_body(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """A poll answered with 304 never serialises the tree."""
    cache = _state(app).cache
    etag = (await api.get("/api/releases/rel-demo/hierarchy", headers=auth)).headers["etag"]
    for _ in range(3):
        await api.get("/api/releases/rel-demo/hierarchy", headers={**auth, "If-None-Match": etag})
    assert (cache.misses, cache.hits) == (1, 0)


async def test_exports_are_audited_without_secrets(
    app: FastAPI, api: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    """Each CSV download writes one `export` line with who, what and how many rows."""
    await api.get("/api/releases?format=csv", headers=auth)
    await api.get("/api/releases/rel-demo/hierarchy?format=csv", headers=auth)
    path = _state(app).settings.audit_log
    assert path is not None
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    exports = [(e["event"], e["user"], e["resource"], e["rows"]) for e in lines]
    assert exports == [("export", "admin", "releases", 3), ("export", "admin", "hierarchy", 19)]
    assert token not in path.read_text()


async def test_head_answers_like_get_without_a_body(
    api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """HEAD of a read route gets the GET's status and headers (length, ETag) and no body."""
    got = await api.get("/api/releases", headers=auth)
    head = await api.head("/api/releases", headers=auth)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name
    assert int(head.headers["content-length"]) == len(got.content) > 0


async def test_head_keeps_auth_and_errors(api: httpx.AsyncClient) -> None:
    """HEAD is no way around the token, and a public probe answers it too."""
    refused = await api.head("/api/releases")
    assert refused.status_code == 401
    assert refused.content == b""
    assert (await api.head("/health")).status_code == 200
