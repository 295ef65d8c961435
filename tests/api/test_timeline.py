"""GET /api/releases/{id}/timeline on a fake reader: real and estimated times, errors, ETags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from relmgr.models import EntityState, ReleaseHierarchy
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import http_client
from tests.progress.test_timeline import NOW, cluster_times, running_release, timed_tree

S = EntityState.SUCCEEDED


def finished_same_shape() -> Any:
    """A 3x2x4 release that succeeded in 2,400 s: 200 s per app of its 12-app critical path."""
    times: dict[str, tuple[EntityState, float, float | None]] = {"": (S, -9000, -6600)}
    for wave in (1, 2, 3):
        times[f"wave-{wave}"] = (S, -9000 + 800 * (wave - 1), -9000 + 800 * wave)
        for cluster in ("c1", "c2"):
            times |= cluster_times(wave, cluster, -9000 + 800 * (wave - 1), 200, 4)
    return timed_tree("prev", times)


@pytest.fixture
async def timeline_api(app_for: Any) -> Any:
    """The API on a fake reader holding the running release and an earlier one of its shape."""
    app: FastAPI = app_for(reader_=FakeReader([running_release(), finished_same_shape()]))
    async with http_client(app) as client:
        yield client


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_timeline_estimates_from_own_clusters_and_the_earlier_release(
    timeline_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Paces 100 and 120 s/app (own clusters) and 200 s/app (the earlier release), 6 apps left:
    median 120 -> now + 720 s, range 600-1,200 s; durations where start and finish exist."""
    response = await timeline_api.get("/api/releases/rel-run/timeline", headers=auth)
    assert response.status_code == 200
    body = response.json()
    now = _time(body["now"])
    assert body["estimate"] == "estimated"
    assert _time(body["estimated_finish_at"]) - now == timedelta(seconds=720)
    assert _time(body["estimated_finish_low"]) - now == timedelta(seconds=600)
    assert _time(body["estimated_finish_high"]) - now == timedelta(seconds=1200)
    assert (body["pace_samples"], body["similar_releases"]) == (2, 1)
    assert "1 earlier release of 3 waves x 6 clusters x 24 apps" in body["estimate_basis"]
    assert (body["waves_total"], body["current_wave"]) == (3, 2)
    wave1, wave2, wave3 = body["waves"]
    assert wave1["duration_seconds"] == 480.0
    assert [c["duration_seconds"] for c in wave1["clusters"]] == [400.0, 480.0]
    assert wave1["clusters"][0]["bundle"]["duration_seconds"] == 400.0
    assert wave2["duration_seconds"] is None
    assert _time(wave3["estimated_start_at"]) - now == timedelta(seconds=240)
    assert body["release"]["duration_seconds"] is None


async def test_a_finished_release_has_its_duration_and_a_null_estimate(
    timeline_api: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Once finished, the estimate is null and the basis says when it finished."""
    body = (await timeline_api.get("/api/releases/rel-prev/timeline", headers=auth)).json()
    assert body["estimate"] == "finished"
    assert body["estimated_finish_at"] is None
    assert body["release"]["duration_seconds"] == 2400.0
    assert body["estimate_basis"] == "finished at 2026-11-26 10:10:00 UTC"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/releases/rel-unknown/timeline", 404, "not_found"),
        ("/api/releases/REL_bad/timeline", 422, "invalid_id"),
        ("/api/releases/wave-1/timeline", 422, "invalid_id"),
    ],
)
async def test_unknown_and_malformed_ids_are_404_and_422(
    timeline_api: httpx.AsyncClient, auth: dict[str, str], path: str, status: int, code: str
) -> None:
    """Like the other release routes: a malformed ID names the expected format."""
    response = await timeline_api.get(path, headers=auth)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if status == 422:
        assert "rel-<name>" in response.json()["error"]["message"]


async def test_timeline_needs_a_token(timeline_api: httpx.AsyncClient) -> None:
    """No bearer token, no timeline."""
    assert (await timeline_api.get("/api/releases/rel-run/timeline")).status_code == 401


class _FrozenClockReader(FakeReader):
    """A fake reader whose trees keep their own read time, as a cached tree does."""

    async def get_release_hierarchy(self, release_id: str) -> ReleaseHierarchy:
        return self._tree(release_id)


async def test_timeline_etag_gives_304_until_the_tree_changes(
    app_for: Any, auth: dict[str, str]
) -> None:
    """The same tree answers 304 to its own ETag; a changed tree gets a new body and ETag."""
    reader = _FrozenClockReader([running_release()])
    url = "/api/releases/rel-run/timeline"
    async with http_client(app_for(reader_=reader)) as api:
        first = await api.get(url, headers=auth)
        etag = first.headers["etag"]
        assert etag.startswith('W/"t-')
        again = await api.get(url, headers={**auth, "If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        reader.put(running_release().model_copy(update={"read_at": NOW + timedelta(seconds=5)}))
        moved = await api.get(url, headers={**auth, "If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["etag"] != etag
    assert _time(moved.json()["now"]) == NOW + timedelta(seconds=5)
