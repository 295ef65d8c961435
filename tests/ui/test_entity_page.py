"""The entity page: any entity's state, times, attempt and last error, breadcrumbs up to its
release, its children, live detail, not found and malformed IDs, Temporal going away."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from relmgr.reader.fake import FakeReader
from tests.ui.conftest import FAILED_APP, open_page

PAGE = "pages/entity.py"
BUNDLE = "rel-demo.wave-2.cluster-c1.bundle-core"


def crumbs(at: AppTest) -> list[tuple[str, str]]:
    """The breadcrumb links as (label, target page)."""
    return [(link.label, link.proto.page) for link in at.page_link]


def test_an_app_shows_state_attempt_times_and_last_error(app: AppTest) -> None:
    """Title, state badge, attempt, times, and the last error as literal text."""
    at = open_page(app, PAGE, id=FAILED_APP)
    assert not at.exception
    assert [t.value for t in at.title] == ["App a2"]
    assert at.caption[0].value == FAILED_APP
    assert ":red-badge[FAILED] &nbsp; app · attempt 2" in [m.value for m in at.markdown]
    texts = [m.value for m in at.markdown]
    assert "**Started**  \n2026-11-26 12:00:00 UTC" in texts
    assert "**Running time**  \n15 s" in texts
    assert "**Finished**  \n2026-11-26 12:00:15 UTC" in texts
    assert [c.value for c in at.code] == ["deploy failed: exit code 3"]
    assert len(at.dataframe) == 0  # an app has no children


def test_breadcrumbs_link_every_ancestor_up_to_the_release(app: AppTest) -> None:
    """Releases, then the release (its own page), wave, cluster and bundle (entity pages)."""
    at = open_page(app, PAGE, id=FAILED_APP)
    assert [label for label, _ in crumbs(at)] == [
        "Releases",
        "Release rel-demo",
        "Wave 2",
        "Cluster c1",
        "Bundle core",
    ]
    targets = [link.proto.query_string for link in at.page_link]
    assert targets[1:] == [
        "release=rel-demo",
        "id=rel-demo.wave-2",
        "id=rel-demo.wave-2.cluster-c1",
        f"id={BUNDLE}",
    ]


def test_a_bundle_lists_its_children_with_a_rollup(app: AppTest) -> None:
    """Children table (one row per app) and the apps-below summary."""
    at = open_page(app, PAGE, id=BUNDLE)
    assert "Children (2)" in [s.value for s in at.subheader]
    assert "Apps below: 1/2 succeeded · :green-badge[SUCCEEDED 1] :red-badge[FAILED 1]" in [
        m.value for m in at.markdown
    ]
    table = at.dataframe(key="children-table").value
    assert table["Entity"].tolist() == [f"entity?id={BUNDLE}.app-a1", f"entity?id={FAILED_APP}"]
    assert [list(s) for s in table["State"]] == [["SUCCEEDED"], ["FAILED"]]


def test_selecting_a_child_opens_its_page(app: AppTest) -> None:
    """A selected child row switches to that child's entity page."""
    at = open_page(app, PAGE, id=BUNDLE)
    at.session_state["children-table"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["App a2"]


def test_a_release_id_works_and_links_to_its_release_page(app: AppTest) -> None:
    """Any entity ID includes releases; the page links to the release's own page."""
    at = open_page(app, PAGE, id="rel-demo")
    assert not at.exception
    assert [t.value for t in at.title] == ["Release rel-demo"]
    link = at.page_link[-1]
    assert (link.label, link.proto.query_string) == ("Release page of rel-demo", "release=rel-demo")
    assert link.proto.page.endswith("release")
    assert "Children (2)" in [s.value for s in at.subheader]


def test_live_detail_shows_the_workflow_answer(app: AppTest) -> None:
    """The live-detail button asks the running workflow and shows its state."""
    at = open_page(app, PAGE, id=FAILED_APP)
    at.button(key="entity-live").click().run()
    assert not at.exception
    assert len(at.success) == 1
    assert at.success[0].value.startswith(
        "Live state (asked 0 s ago): :red-badge[FAILED] · attempt 2"
    )
    at.run()  # a refresh keeps the answer
    assert len(at.success) == 1


def test_live_detail_says_unavailable_when_no_worker_answers(
    app: AppTest, fake: FakeReader
) -> None:
    """LiveStateUnavailableError becomes a plain 'unavailable', never an error."""
    fake.live_available = False
    at = open_page(app, PAGE, id=FAILED_APP)
    at.button(key="entity-live").click().run()
    assert not at.exception
    assert [i.value for i in at.info] == [
        "Live detail unavailable: no running workflow answered the live query "
        "(it finished, or no worker runs)."
    ]


def test_unknown_entity_is_a_friendly_not_found(app: AppTest) -> None:
    """A well-formed ID that names nothing: its kind and ID, and a way back."""
    at = open_page(app, PAGE, id="rel-demo.wave-7")
    assert not at.exception
    assert [w.value for w in at.warning] == ["Wave rel-demo.wave-7 was not found."]


def test_malformed_entity_id_names_the_expected_format(app: AppTest, fake: FakeReader) -> None:
    """A malformed ID is refused with the grammar of the kind it looks like."""
    at = open_page(app, PAGE, id="rel-demo.wave-x")
    assert not at.exception
    message = at.error[0].value.replace("\\", "")
    assert message.startswith(
        "malformed ID 'rel-demo.wave-x': expected wave: <release-id>.wave-<1-99>"
    )
    assert [t.value for t in at.title] == ["Entity"]
    assert "get_entity" not in fake.calls


def test_temporal_unavailable_keeps_the_entity_with_a_banner(
    app: AppTest, fake: FakeReader
) -> None:
    """The last good detail stays, marked stale; the page recovers by itself."""
    at = open_page(app, PAGE, id=FAILED_APP)
    fake.available = False
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Temporal is unavailable — showing data from 0 s ago."]
    assert [c.value for c in at.code] == ["deploy failed: exit code 3"]
    fake.available = True
    at.run()
    assert len(at.warning) == 0
