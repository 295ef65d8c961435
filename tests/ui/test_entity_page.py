"""The entity page: any entity's state, times, attempt and last error, breadcrumbs up to its
release, its children, live detail, not found and malformed IDs, Temporal going away."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from relmgr.testing.fake_reader import FakeReader
from relmgr.ui.links import NAVIGATING_TO
from tests.ui.conftest import FAILED_APP, open_page

PAGE = "pages/entity.py"
BUNDLE = "rel-demo.wave-2.cluster-c1.bundle-core"


_ANCHOR = re.compile(r'<a href="([^"]*)" target="(_self|_blank)"[^>]*>([^<]*)</a>')


def anchors(markdown: str) -> list[tuple[str, str, str]]:
    """The HTML links in a Markdown text as (label, href, target)."""
    return [(label, href, target) for href, target, label in _ANCHOR.findall(markdown)]


def crumbs(at: AppTest) -> list[tuple[str, str]]:
    """The breadcrumb links (the first Markdown with links) as (label, href)."""
    found = next(m.value for m in at.markdown if "<a href" in m.value)
    return [(label, href) for label, href, target in anchors(found) if target == "_self"]


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
    """Releases, then the release (its own page), wave, cluster and bundle (entity pages), each a
    plain link to its own URL, opened in the same tab (a full navigation, so the address bar and
    Back follow; st.page_link to the same page left the URL on the old entity)."""
    at = open_page(app, PAGE, id=FAILED_APP)
    assert crumbs(at) == [
        ("Releases", "./"),
        ("Release rel-demo", "release?release=rel-demo"),
        ("Wave 2", "entity?id=rel-demo.wave-2"),
        ("Cluster c1", "entity?id=rel-demo.wave-2.cluster-c1"),
        ("Bundle core", f"entity?id={BUNDLE}"),
    ]
    assert len(at.page_link) == 0


def test_no_temporal_ui_link_without_the_setting(app: AppTest) -> None:
    """RELMGR_TEMPORAL_UI_URL unset: no link to Temporal's UI anywhere on the page."""
    at = open_page(app, PAGE, id=FAILED_APP)
    assert not any("Temporal UI" in m.value for m in at.markdown)


def test_the_entity_links_to_its_workflow_in_temporal_ui(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RELMGR_TEMPORAL_UI_URL set, the breadcrumb line links (new tab) to the workflow."""
    from relmgr.settings import get_settings

    monkeypatch.setenv("RELMGR_TEMPORAL_UI_URL", "http://127.0.0.1:8233/")
    get_settings.cache_clear()
    at = open_page(app, PAGE, id=FAILED_APP)
    found = next(m.value for m in at.markdown if "<a href" in m.value)
    assert anchors(found)[-1] == (
        "Temporal UI ↗",
        "http://127.0.0.1:8233/namespaces/default/workflows?query="
        "WorkflowId%3D%27rel-demo.wave-2.cluster-c1.bundle-core.app-a2%27",
        "_blank",
    )


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


def test_selecting_a_child_sends_the_browser_to_its_page(app: AppTest) -> None:
    """A selected child row navigates the browser to that child's URL (one full navigation);
    the run that does so shows nothing else."""
    at = open_page(app, PAGE, id=BUNDLE)
    at.session_state["children-table"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    assert not at.exception
    assert at.session_state[NAVIGATING_TO] == f"entity?id={FAILED_APP}"


def test_a_release_id_works_and_links_to_its_release_page(app: AppTest) -> None:
    """Any entity ID includes releases; the page links to the release's own page."""
    at = open_page(app, PAGE, id="rel-demo")
    assert not at.exception
    assert [t.value for t in at.title] == ["Release rel-demo"]
    assert crumbs(at)[-1] == ("Release page of rel-demo", "release?release=rel-demo")
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


def test_unknown_entity_is_a_friendly_not_found_with_the_picker(app: AppTest) -> None:
    """A well-formed ID that names nothing: its kind and ID, why, and the release picker."""
    at = open_page(app, PAGE, id="rel-demo.wave-7")
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Wave rel-demo.wave-7 was not found: no workflow has this ID (a typo, or a release "
        "this Temporal namespace does not keep any more). Pick a release instead:"
    ]
    picker = at.selectbox(key="entity-picker-not-found")
    assert picker.options[0].startswith("rel-demo · ")
    picker.select("rel-done-one").run()
    assert at.query_params["id"] == "rel-done-one"
    assert [t.value for t in at.title] == ["Release rel-done-one"]


def test_no_id_offers_a_picker_of_recent_releases(app: AppTest) -> None:
    """Without an ID: the title and a searchable select of releases, running first; choosing
    one puts it into the URL."""
    at = open_page(app, PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Entity"]
    picker = at.selectbox(key="entity-picker")
    assert picker.options[0] == "rel-demo · in progress"
    assert sorted(picker.options[1:]) == ["rel-done-one · succeeded", "rel-done-two · failed"]
    picker.select("rel-demo").run()
    assert [t.value for t in at.title] == ["Release rel-demo"]


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
    assert at.selectbox(key="entity-picker").value is None  # and the picker is offered


def test_temporal_unavailable_keeps_the_entity_with_a_banner(
    app: AppTest, fake: FakeReader
) -> None:
    """The last good detail stays, marked stale; the page recovers by itself."""
    at = open_page(app, PAGE, id=FAILED_APP)
    fake.available = False
    at.run()
    assert not at.exception
    # The age is a second or so when the machine is busy: any single digit is this read's.
    [warning] = [w.value for w in at.warning]
    assert re.fullmatch(r"Temporal is unavailable — showing data from \d s ago\.", warning)
    assert [c.value for c in at.code] == ["deploy failed: exit code 3"]
    fake.available = True
    at.run()
    assert len(at.warning) == 0
