"""The API's release CSV and the dashboard's are one implementation: same filter, same bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from relmgr.models import EntityState
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.fakes import ShiftingReader
from relmgr.ui.bridge import SyncReader
from relmgr.ui.release_list import ListControls, build_query, matching_releases, releases_csv_of

READ_AT = T0 + timedelta(hours=2, seconds=7)


def _reader() -> FakeReader:
    """700 releases (two reader pages), a third of them running, pinned to one read time."""
    states = (EntityState.SUCCEEDED, EntityState.IN_PROGRESS, EntityState.FAILED)
    reader = FakeReader(
        make_hierarchy(
            f"p{number:03d}",
            waves=1,
            clusters=1,
            apps=2,
            default=states[number % 3],
            started_at=T0 + timedelta(seconds=number),
        )
        for number in range(700)
    )
    reader.clock = lambda: READ_AT
    return reader


@pytest.mark.parametrize(
    ("controls", "params", "rows"),
    [
        (ListControls(), "", 700),
        (
            ListControls(state="IN_PROGRESS", sort="id", order="asc"),
            "&state=IN_PROGRESS&sort=id&order=asc",
            233,
        ),
        (ListControls(search="p1", sort="percent_complete"), "&q=p1&sort=percent_complete", 100),
        (ListControls(search="nothing"), "&q=nothing", 0),
    ],
)
async def test_the_same_filter_gives_the_same_csv_through_api_and_dashboard(
    app_for: Callable[..., FastAPI],
    auth: dict[str, str],
    controls: ListControls,
    params: str,
    rows: int,
) -> None:
    """Byte for byte, including durations of running releases and a search matching nothing."""
    reader = _reader()

    async def factory() -> FakeReader:
        return reader

    sync = SyncReader(factory, timeout=10)
    try:
        dashboard = releases_csv_of(sync, build_query(controls))()
    finally:
        sync.close()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_for(reader_=reader)), base_url="http://testserver"
    ) as api:
        response = await api.get(f"/api/releases?format=csv{params}", headers=auth)
    assert response.status_code == 200
    assert response.text == dashboard
    assert dashboard.count("\r\n") == 1 + rows


def test_the_dashboard_export_keeps_each_release_once_when_pages_shift() -> None:
    """A release starting between two page reads does not duplicate a row in the dashboard CSV."""
    reader = ShiftingReader(
        [make_hierarchy(f"s{n:04d}", waves=1, clusters=1, apps=1) for n in range(600)]
    )

    async def factory() -> FakeReader:
        return reader

    sync = SyncReader(factory, timeout=10)
    try:
        found = matching_releases(sync, build_query(ListControls(sort="id")))
    finally:
        sync.close()
    assert [r.id for r in found] == [f"rel-s{n:04d}" for n in range(599, -1, -1)]
