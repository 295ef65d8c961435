"""The search attributes every entity workflow starts with, for starters and workflows alike."""

from __future__ import annotations

from datetime import UTC, datetime

from relmgr.models import EntityState
from relmgr.temporal.contract import (
    SA_KIND,
    SA_LAST_CHANGE,
    SA_PARENT_ID,
    SA_RELEASE_ID,
    SA_STATE,
    SEARCH_ATTRIBUTES,
    initial_search_attributes,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_release_starts_pending_with_no_parent() -> None:
    """A release: kind release, its own ID as release, an empty parent, PENDING, the given time."""
    attributes = initial_search_attributes("rel-2026-11-payments", now=NOW)
    assert {pair.key.name for pair in attributes} == {key.name for key in SEARCH_ATTRIBUTES}
    assert attributes.get(SA_KIND) == "release"
    assert attributes.get(SA_RELEASE_ID) == "rel-2026-11-payments"
    assert attributes.get(SA_PARENT_ID) == ""
    assert attributes.get(SA_STATE) == "PENDING"
    assert attributes.get(SA_LAST_CHANGE) == NOW


def test_an_app_names_its_release_and_bundle() -> None:
    """An app: kind app, the release it belongs to, its bundle as parent."""
    bundle = "rel-demo.wave-2.cluster-c1.bundle-core"
    attributes = initial_search_attributes(f"{bundle}.app-a1", now=NOW)
    assert attributes.get(SA_KIND) == "app"
    assert attributes.get(SA_RELEASE_ID) == "rel-demo"
    assert attributes.get(SA_PARENT_ID) == bundle
    assert attributes.get(SA_STATE) == "PENDING"
    stub = initial_search_attributes(f"{bundle}.app-a1", now=NOW, state=EntityState.FAILED)
    assert stub.get(SA_STATE) == "FAILED"
