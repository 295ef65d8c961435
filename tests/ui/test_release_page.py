"""The release page: header, roll-ups at every level, lazy expanders that stay open, change
highlights, needs-attention list, CSV, not found, malformed IDs and Temporal going away."""

from __future__ import annotations

import csv
import io
import re
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

from relmgr.errors import TemporalUnavailableError
from relmgr.models import EntityState
from relmgr.testing.factories import make_hierarchy
from relmgr.testing.fake_reader import FakeReader
from relmgr.ui import runtime
from relmgr.ui.release_tree import OPEN_KEY, current_hierarchy_csv, hierarchy_csv_of, tree_key
from tests.ui.conftest import APP, FAILED_APP, RETRYING_APP, demo_tree, open_page, sign_in

PAGE = "pages/release.py"
RELEASE_LABEL = "**Release rel-demo** · :blue-badge[IN_PROGRESS] · waves 1/2 · apps 5/8"
WAVE_LABELS = [
    "**Wave 1** · :green-badge[SUCCEEDED] · clusters 2/2 · apps 4/4",
    "**Wave 2** · :blue-badge[IN_PROGRESS] · clusters 0/2 · apps 1/4",
]


def labels(at: AppTest) -> list[str]:
    """Every expander label on the page, top down."""
    return [e.label for e in at.expander]


def app_table(at: AppTest, bundle_id: str) -> pd.DataFrame:
    """The app table drawn inside one bundle's expander."""
    prefix = f"entity?id={bundle_id}.app-"
    found = [d.value for d in app_tables(at) if d.value["Entity"].iloc[0].startswith(prefix)]
    assert len(found) == 1, f"{len(found)} tables for {bundle_id}"
    return found[0]


def app_tables(at: AppTest) -> list[Dataframe]:
    """Every bundle's app table on the page."""
    return [d for d in at.dataframe if d.key is not None and d.key.startswith("apps-tree-")]


def open_nodes(at: AppTest, *entity_ids: str) -> AppTest:
    """Click these nodes open, one after the other, as a user would."""
    for entity_id in entity_ids:
        at.session_state[tree_key(entity_id)] = True
        at.run()
    return at


def test_header_shows_state_progress_counts_and_timing(app: AppTest) -> None:
    """State badge, roll-ups, a progress bar with the percent, app counts by state, times."""
    at = open_page(app, PAGE, release="rel-demo")
    assert not at.exception
    assert [t.value for t in at.title] == ["Release rel-demo"]
    assert at.markdown[0].value == ":blue-badge[IN_PROGRESS] &nbsp; waves 1/2 · apps 5/8"
    assert at.progress[0].value == 62
    assert at.markdown[1].value == (
        ":gray-badge[PENDING 1] :orange-badge[RETRYING 1] :green-badge[SUCCEEDED 5] "
        ":red-badge[FAILED 1]"
    )
    # The last change is the newest in the tree (an app), not the release workflow's own.
    assert at.caption[1].value.startswith(
        "Started 2026-11-26 12:00:00 UTC · last change 2026-11-26 12:00:17 UTC · finished —"
    )


def test_tree_starts_with_the_release_open_and_the_waves_closed(app: AppTest) -> None:
    """Labels carry badges and N/M roll-ups; nothing below a closed wave is drawn."""
    at = open_page(app, PAGE, release="rel-demo")
    assert labels(at) == [RELEASE_LABEL, *WAVE_LABELS]
    assert len(app_tables(at)) == 0


def test_opening_branches_shows_all_five_levels(app: AppTest) -> None:
    """Wave, cluster and (open by default) bundle expanders, and the bundle's app table."""
    at = open_page(app, PAGE, release="rel-demo")
    open_nodes(at, "rel-demo.wave-2", "rel-demo.wave-2.cluster-c1")
    assert labels(at) == [
        RELEASE_LABEL,
        WAVE_LABELS[0],
        WAVE_LABELS[1],
        "**Cluster c1** · :red-badge[FAILED] · apps 1/2",
        "**Bundle core** · :red-badge[FAILED] · apps 1/2",
        "**Cluster c2** · :blue-badge[IN_PROGRESS] · apps 0/2",
    ]
    apps = app_table(at, "rel-demo.wave-2.cluster-c1.bundle-core")
    assert apps["Entity"].tolist() == [
        "entity?id=rel-demo.wave-2.cluster-c1.bundle-core.app-a1",
        f"entity?id={FAILED_APP}",
    ]
    assert [list(s) for s in apps["State"]] == [["SUCCEEDED"], ["FAILED"]]
    assert apps["Last error"].tolist() == ["—", "deploy failed: exit code 3"]
    assert apps["Attempt"].tolist() == ["1", "2"]
    assert apps["Started"].tolist() == ["2026-11-26 12:00:00", "2026-11-26 12:00:00"]


def test_open_branches_stay_open_across_refreshes_and_label_changes(
    app: AppTest, fake: FakeReader
) -> None:
    """A branch opened by the user is still open after refreshes, even when its label changes."""
    at = open_page(app, PAGE, release="rel-demo")
    open_nodes(at, "rel-demo.wave-1")
    assert labels(at)[2].startswith("**Cluster c1**")
    assert at.session_state[OPEN_KEY]["rel-demo.wave-1"] is True
    assert at.session_state[OPEN_KEY]["rel-demo.wave-2"] is False
    at.run()  # a plain refresh
    assert labels(at)[2].startswith("**Cluster c1**")
    changed = make_hierarchy("demo", states={"rel-demo.wave-1": EntityState.FAILED})
    fake.put(changed)
    at.run()
    assert labels(at)[1] == (
        "**Wave 1** · :red-badge[FAILED] · clusters 2/2 · apps 4/4 · :orange-badge[changed]"
    )
    assert labels(at)[2].startswith("**Cluster c1**")  # still open under its new label


def test_closing_a_branch_is_remembered(app: AppTest) -> None:
    """Closing the release hides every wave, and it stays closed on the next refresh."""
    at = open_page(app, PAGE, release="rel-demo")
    at.session_state[tree_key("rel-demo")] = False
    at.run()
    assert labels(at) == [RELEASE_LABEL]
    at.run()
    assert labels(at) == [RELEASE_LABEL]


def test_a_branch_stays_open_while_its_parent_is_closed_and_reopened(app: AppTest) -> None:
    """Closing the release and opening it again finds the wave that was open still open."""
    at = open_nodes(open_page(app, PAGE, release="rel-demo"), "rel-demo.wave-2")
    at.session_state[tree_key("rel-demo")] = False
    at.run()
    assert labels(at) == [RELEASE_LABEL]
    open_nodes(at, "rel-demo")
    assert labels(at)[:4] == [RELEASE_LABEL, WAVE_LABELS[0], WAVE_LABELS[1], labels(at)[3]]
    assert labels(at)[3].startswith("**Cluster c1**")


def test_state_changes_since_the_last_refresh_are_highlighted(
    app: AppTest, fake: FakeReader
) -> None:
    """An app that moved on is tagged in its table, its label chain gets the change icons."""
    at = open_page(app, PAGE, release="rel-demo")
    open_nodes(at, "rel-demo.wave-2", "rel-demo.wave-2.cluster-c2")
    before = demo_tree()
    pending_app = "rel-demo.wave-2.cluster-c2.bundle-core.app-a2"
    moved = make_hierarchy(
        "demo",
        states={
            **{n.id: n.state for n in before.entities()},
            pending_app: EntityState.IN_PROGRESS,
        },
        errors={FAILED_APP: "deploy failed: exit code 3", RETRYING_APP: "timeout talking to api"},
    )
    fake.put(moved)
    at.run()
    assert not at.exception
    table = app_table(at, "rel-demo.wave-2.cluster-c2.bundle-core")
    assert [list(c) for c in table["Changed"]] == [[], ["changed"]]
    icons = {e.label.split(" · ")[0]: e.icon for e in at.expander}
    assert icons["**Wave 2**"] == ":material/update:"
    assert icons["**Cluster c2**"] == ":material/update:"
    assert icons["**Wave 1**"] == ":material/check_circle:"


def test_highlights_fade_after_their_time(app: AppTest, fake: FakeReader, monkeypatch) -> None:
    """A change is highlighted for HIGHLIGHT_SECONDS, then the label is plain again."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    at = open_page(app, PAGE, release="rel-demo")
    fake.put(make_hierarchy("demo", states={"rel-demo.wave-1": EntityState.FAILED}))
    at.run()
    assert labels(at)[1].endswith(":orange-badge[changed]")
    clock[0] += 9.0
    at.run()
    assert labels(at)[1].endswith(":orange-badge[changed]")
    clock[0] += 2.0
    at.run()
    assert labels(at)[1] == "**Wave 1** · :red-badge[FAILED] · clusters 2/2 · apps 4/4"


def attention_rows(at: AppTest) -> list[list[str]]:
    """The needs-attention table's cells, row by row, as the HTML holds them."""
    found = [m.value for m in at.markdown if 'class="relmgr-attention"' in m.value]
    assert len(found) == 1
    body = found[0].split("<tbody>")[1]
    return [re.findall(r"<td>(.*?)</td>", row, re.S) for row in body.split("</tr>")[:-1]]


def test_needs_attention_lists_root_causes_only_with_their_place_and_whole_error(
    app: AppTest,
) -> None:
    """One row per failed or retrying leaf (not its failed cluster and bundle), each a link to
    its page, with wave and cluster as columns and the whole error."""
    at = open_page(app, PAGE, release="rel-demo")
    assert "Needs attention (2)" in [s.value for s in at.subheader]
    rows = attention_rows(at)
    assert [r[0] for r in rows] == [
        f'<a href="entity?id={FAILED_APP}" target="_self">App a2</a>',
        f'<a href="entity?id={RETRYING_APP}" target="_self">App a1</a>',
    ]
    assert [r[1] for r in rows] == [
        '<span class="relmgr-state relmgr-red">✖ Failed</span>',
        '<span class="relmgr-state relmgr-orange">↻ Retrying</span>',
    ]
    assert [(r[2], r[3], r[4]) for r in rows] == [("2", "c1", "2"), ("2", "c2", "2")]
    assert [r[5] for r in rows] == [
        '<span class="relmgr-error">deploy failed: exit code 3</span>',
        '<span class="relmgr-error">timeout talking to api</span>',
    ]


def test_the_header_names_the_root_cause(app: AppTest) -> None:
    """The release header says which app failed where, and why, before any table."""
    at = open_page(app, PAGE, release="rel-demo")
    assert [e.value.replace("\\", "") for e in at.error] == [
        "App a2 on cluster c1 failed: deploy failed: exit code 3 (and 1 more below)"
    ]


def test_an_error_with_markup_is_shown_as_text_in_the_attention_table(
    app: AppTest, fake: FakeReader
) -> None:
    """HTML in an error is escaped, never rendered."""
    fake.put(
        make_hierarchy(
            "demo",
            states={FAILED_APP: EntityState.FAILED},
            errors={FAILED_APP: '<img src=x onerror="alert(1)"> & more'},
        )
    )
    at = open_page(app, PAGE, release="rel-demo")
    assert attention_rows(at)[0][5] == (
        '<span class="relmgr-error">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; '
        "&amp; more</span>"
    )


def test_nothing_needs_attention_in_a_clean_release(app: AppTest) -> None:
    """A succeeded release says so instead of an empty table."""
    at = open_page(app, PAGE, release="rel-done-one")
    assert "Needs attention (0)" in [s.value for s in at.subheader]
    assert "Nothing has failed and nothing is retrying." in [c.value for c in at.caption]


def test_hierarchy_csv_has_one_row_per_entity(app: AppTest) -> None:
    """The page offers the CSV; its rows are every entity with kind, parent, state and times."""
    at = open_page(app, PAGE, release="rel-demo")
    assert at.download_button(key="hierarchy-csv").label == "Download hierarchy CSV"
    rows = list(csv.DictReader(io.StringIO(hierarchy_csv_of(demo_tree()))))
    assert len(rows) == 1 + 2 + 4 + 4 + 8
    assert (rows[0]["kind"], rows[0]["id"], rows[0]["parent_id"]) == ("release", "rel-demo", "")
    failed = next(r for r in rows if r["id"] == FAILED_APP)
    assert failed["state"] == "FAILED"
    assert failed["parent_id"] == "rel-demo.wave-2.cluster-c1.bundle-core"
    assert failed["last_error"] == "deploy failed: exit code 3"


def test_hierarchy_csv_is_read_when_the_button_is_clicked(app: AppTest, fake: FakeReader) -> None:
    """The CSV holds the tree as it is at the click, not as the page last drew it."""
    at = open_page(app, PAGE, release="rel-demo")
    assert at.download_button(key="hierarchy-csv").label == "Download hierarchy CSV"
    fake.put(make_hierarchy("demo"))  # everything succeeded since the page was drawn
    text = current_hierarchy_csv(runtime.get_reader(), "rel-demo")()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 19
    assert {r["state"] for r in rows} == {"SUCCEEDED"}


class _UnavailableReader:
    """A reader whose every read fails the way the real one does while Temporal is away."""

    def __init__(self, last_known: object | None) -> None:
        self.last_known = last_known

    def get_release_hierarchy(self, release_id: str) -> object:
        raise TemporalUnavailableError("Temporal is unavailable", last_known=self.last_known)


def test_hierarchy_csv_falls_back_to_the_last_known_tree() -> None:
    """While Temporal is away the CSV is the tree the stale page shows; with none, it fails."""
    build = current_hierarchy_csv(_UnavailableReader(demo_tree()), "rel-demo")  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(build())))
    assert len(rows) == 19
    assert next(r for r in rows if r["id"] == FAILED_APP)["state"] == "FAILED"
    with pytest.raises(TemporalUnavailableError):
        current_hierarchy_csv(_UnavailableReader(None), "rel-demo")()  # type: ignore[arg-type]


def test_unknown_release_is_a_friendly_not_found_with_the_picker(app: AppTest) -> None:
    """A well-formed ID with no release gets a message, the picker and a way back, no tree."""
    at = open_page(app, PAGE, release="rel-nope")
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Release rel-nope was not found: no release workflow has this ID (a typo, or a "
        "release this Temporal namespace does not keep any more). Pick one instead:"
    ]
    assert len(at.expander) == 0
    assert at.selectbox(key="release-picker-not-found").value is None
    assert at.page_link[-1].label == "Back to all releases"


def test_malformed_release_id_names_the_expected_format(app: AppTest, fake: FakeReader) -> None:
    """A malformed ID is refused before any read, with the expected format, and the picker."""
    at = open_page(app, PAGE, release="REL_<script>")
    assert not at.exception
    message = at.error[0].value.replace("\\", "")
    assert message.startswith("malformed ID 'REL_<script>': expected release: rel-<name>")
    assert "get_release_hierarchy" not in fake.calls
    assert [t.value for t in at.title] == ["Release"]
    assert len(at.get("download_button")) == 0
    assert at.selectbox(key="release-picker").value is None


def test_no_release_in_the_url_offers_the_picker(app: AppTest) -> None:
    """Without ?release=, a searchable select of releases (running first); choosing one opens
    it and puts it into the URL."""
    at = open_page(app, PAGE)
    assert not at.exception
    picker = at.selectbox(key="release-picker")
    assert picker.label == "Release"
    assert picker.options[0] == "rel-demo · in progress"
    picker.select("rel-demo").run()
    assert [t.value for t in at.title] == ["Release rel-demo"]
    assert at.query_params["release"] == "rel-demo"


def test_a_typed_release_id_opens_too(app: AppTest) -> None:
    """An ID that is not in the picker's list can be typed in."""
    at = open_page(app, PAGE)
    at.selectbox(key="release-picker").select("rel-done-two").run()
    assert [t.value for t in at.title] == ["Release rel-done-two"]


def test_temporal_unavailable_keeps_the_tree_with_a_banner(app: AppTest, fake: FakeReader) -> None:
    """The tree stays on screen, marked stale, with a retry; it comes back by itself."""
    at = open_page(app, PAGE, release="rel-demo")
    fake.available = False
    at.run()
    assert not at.exception
    # The age is a second or so when the machine is busy: any single digit is this read's.
    [warning] = [w.value for w in at.warning]
    assert re.fullmatch(r"Temporal is unavailable — showing data from \d s ago\.", warning)
    assert labels(at) == [RELEASE_LABEL, *WAVE_LABELS]
    assert at.button(key="release-retry").label == "Retry now"
    fake.available = True
    at.run()
    assert len(at.warning) == 0


def test_the_big_release_renders_lazily(app: AppTest, fake: FakeReader) -> None:
    """1,206 entities: closed, one run draws 6 expanders; every branch open, 206 and 100 tables.

    Prints the run times (a benchmark, not an assertion)."""
    big = make_hierarchy("big", waves=5, clusters=20, apps=10)
    fake.put(big)
    started = time.perf_counter()
    at = open_page(app, PAGE, release="rel-big")
    closed = time.perf_counter() - started
    assert not at.exception
    assert len(at.expander) == 6
    assert len(app_tables(at)) == 0
    fresh = sign_in(AppTest.from_file(str(APP), default_timeout=30))
    fresh.session_state[OPEN_KEY] = {n.id: True for n in big.entities()}
    fresh.run()
    started = time.perf_counter()
    open_page(fresh, PAGE, release="rel-big")
    everything = time.perf_counter() - started
    assert not fresh.exception
    assert len(fresh.expander) == 1 + 5 + 100 + 100
    assert len(app_tables(fresh)) == 100
    print(f"\nbig release, server side: closed tree {closed:.3f} s, fully open {everything:.3f} s")


def test_every_open_node_links_to_its_own_page(app: AppTest) -> None:
    """Inside an opened wave, cluster and bundle: a plain link (same tab) to its entity page;
    the release itself is this page and gets none."""
    at = open_nodes(
        open_page(app, PAGE, release="rel-demo"), "rel-demo.wave-2", "rel-demo.wave-2.cluster-c1"
    )
    links = [c.value for c in at.caption if "<a href" in c.value]
    assert links == [
        '<a href="entity?id=rel-demo.wave-2" target="_self">Open wave 2</a>',
        '<a href="entity?id=rel-demo.wave-2.cluster-c1" target="_self">Open cluster c1</a>',
        '<a href="entity?id=rel-demo.wave-2.cluster-c1.bundle-core" target="_self">'
        "Open bundle core</a>",
    ]
