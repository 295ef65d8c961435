"""Every release a query matches: one cap, each release once even when pages shift."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relmgr.models import ReleaseQuery, ReleaseSort
from relmgr.reader.matching import MAX_EXPORT_ROWS, matching_releases
from relmgr.testing.factories import T0, make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.testing.fakes import ShiftingReader


def _fake(count: int) -> FakeReader:
    return FakeReader(
        make_hierarchy(
            f"m{number:04d}", waves=1, clusters=1, apps=1, started_at=T0 + timedelta(minutes=number)
        )
        for number in range(count)
    )


async def test_every_page_is_read_in_the_querys_order() -> None:
    """1,203 releases (three reader pages of 500) come back all, sorted as asked."""
    found = await matching_releases(
        _fake(1203), ReleaseQuery(sort=ReleaseSort.ID, descending=False)
    )
    assert [r.id for r in found.items] == [f"rel-m{n:04d}" for n in range(1203)]
    assert found.truncated is False


async def test_a_page_shift_while_reading_keeps_each_release_once() -> None:
    """The row pushed from page 1 onto page 2 is not exported twice."""
    reader = ShiftingReader(
        [make_hierarchy(f"s{number:04d}", waves=1, clusters=1, apps=1) for number in range(600)]
    )
    found = await matching_releases(reader, ReleaseQuery(sort=ReleaseSort.ID, descending=True))
    ids = [r.id for r in found.items]
    # The new release sorts first, onto the page already read; page 2 then starts with the
    # last release of page 1 (rel-s0100), which is kept once, where it was first seen.
    assert ids == [f"rel-s{n:04d}" for n in range(599, -1, -1)]


async def test_the_cap_cuts_and_says_so() -> None:
    """Past the limit the export stops reading and is marked truncated; at it exactly, not."""
    reader = _fake(7)
    cut = await matching_releases(reader, ReleaseQuery(), limit=5)
    assert [r.id for r in cut.items] == [f"rel-m{n:04d}" for n in (6, 5, 4, 3, 2)]
    assert cut.truncated is True
    exact = await matching_releases(reader, ReleaseQuery(), limit=7)
    assert (len(exact.items), exact.truncated) == (7, False)
    assert MAX_EXPORT_ROWS == 10_000
    with pytest.raises(ValueError, match="at least 1"):
        await matching_releases(reader, ReleaseQuery(), limit=0)


async def test_a_search_that_matches_nothing_is_an_empty_export() -> None:
    """No match: no rows, not truncated, not an error."""
    found = await matching_releases(_fake(3), ReleaseQuery(search="nothing-here"))
    assert (found.items, found.truncated) == ((), False)
