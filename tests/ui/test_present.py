"""Pure formatting of the dashboard: badges, labels with roll-ups, times, links, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from relmgr.models import App, EntityState
from relmgr.ui.present import (
    age_seconds,
    attempt_text,
    badge,
    entity_href,
    format_duration,
    format_seconds,
    format_time,
    md_escape,
    next_retry_text,
    node_label,
    node_title,
    release_href,
    scheduled_text,
)
from tests.ui.conftest import FAILED_APP, demo_tree


def test_md_escape_neutralises_links_directives_and_html() -> None:
    """Markdown syntax, Streamlit directives and tags in foreign text are shown literally."""
    assert md_escape("[x](javascript:alert(1))") == r"\[x\]\(javascript\:alert\(1\)\)"
    assert md_escape(":red[boom] <b>hi</b>") == r"\:red\[boom\] \<b\>hi\</b\>"
    assert md_escape("a\n\n# title") == r"a \# title"


def test_md_escape_leaves_ids_readable() -> None:
    """IDs use no Markdown syntax, so they come through unchanged."""
    assert md_escape("rel-2026-11.wave-1.cluster-eu-1") == "rel-2026-11.wave-1.cluster-eu-1"


def test_badge_colours_each_state() -> None:
    """Each state gets its own palette colour."""
    assert badge(EntityState.FAILED) == ":red-badge[FAILED]"
    assert badge(EntityState.SUCCEEDED) == ":green-badge[SUCCEEDED]"
    assert badge(EntityState.RETRYING) == ":orange-badge[RETRYING]"
    assert badge(EntityState.IN_PROGRESS) == ":blue-badge[IN_PROGRESS]"
    assert badge(EntityState.PENDING) == ":gray-badge[PENDING]"
    assert badge(EntityState.CANCELLED) == ":violet-badge[CANCELLED]"


def test_node_labels_carry_state_and_n_of_m_rollups_at_every_level() -> None:
    """Release, wave, cluster and bundle labels show succeeded/total of children and apps."""
    tree = demo_tree()
    release = tree.release
    wave2 = release.waves[1]
    cluster = wave2.clusters[0]
    assert node_label(release) == (
        "**Release rel-demo** · :blue-badge[IN_PROGRESS] · waves 1/2 · apps 5/8"
    )
    assert node_label(release.waves[0]) == (
        "**Wave 1** · :green-badge[SUCCEEDED] · clusters 2/2 · apps 4/4"
    )
    assert node_label(wave2) == "**Wave 2** · :blue-badge[IN_PROGRESS] · clusters 0/2 · apps 1/4"
    assert node_label(cluster) == "**Cluster c1** · :red-badge[FAILED] · apps 1/2"
    assert node_label(cluster.bundle, changed=True) == (
        "**Bundle core** · :red-badge[FAILED] · apps 1/2 · :orange-badge[changed]"
    )
    assert node_title(cluster.bundle.apps[1]) == "App a2"
    assert cluster.bundle.apps[1].id == FAILED_APP


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (61, "1 min 01 s"),
        (3 * 3600 + 7 * 60, "3 h 07 min"),
        (50 * 3600, "2 d 2 h"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    """Durations read at a glance."""
    assert format_seconds(seconds) == text


def test_times_are_shown_in_utc_and_unknown_ones_as_a_dash() -> None:
    """Aware times are converted to UTC; naive ones are taken as UTC; None is a dash."""
    cet = datetime(2026, 11, 26, 14, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(cet) == "2026-11-26 13:00:05 UTC"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05 UTC"
    assert format_time(None) == "—"
    assert age_seconds(cet - timedelta(seconds=12), cet) == 12.0
    assert age_seconds(cet + timedelta(seconds=5), cet) == 0.0


def test_duration_of_a_finished_entity_ends_when_it_finished() -> None:
    """A terminal entity's running time is start to finish, not start to now."""
    tree = demo_tree()
    app = tree.release.waves[1].clusters[0].bundle.apps[1]  # FAILED, finished
    assert app.started_at is not None
    assert app.finished_at is not None
    expected = format_seconds((app.finished_at - app.started_at).total_seconds())
    assert format_duration(app, datetime(2030, 1, 1, tzinfo=UTC)) == expected


def test_links_are_relative_and_quoted() -> None:
    """Links work under any base URL path and cannot smuggle a second parameter."""
    assert release_href("rel-demo") == "release?release=rel-demo"
    assert entity_href("rel-demo.wave-1") == "entity?id=rel-demo.wave-1"
    assert entity_href("x&y=1") == "entity?id=x%26y%3D1"


def _app(**fields: object) -> App:
    """An app of release rel-x with these fields."""
    return App.model_validate(
        {"id": "rel-x.wave-1.cluster-c.bundle-b.app-a", "kind": "app", "release_id": "rel-x"}
        | fields
    )


def test_attempt_text_says_of_how_many_and_nothing_before_the_first() -> None:
    """`2 of 3` with a known maximum, `2` without, an em dash before any attempt."""
    app = _app()
    assert attempt_text(app) == "—"
    assert attempt_text(app.model_copy(update={"attempt": 2})) == "2"
    assert attempt_text(app.model_copy(update={"attempt": 2, "max_attempts": 3})) == "2 of 3"


def test_next_retry_text_names_the_time_and_the_wait() -> None:
    """Only a RETRYING entity with a retry time gets the text; past due says so."""
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    app = _app(state=EntityState.RETRYING, next_retry_at=now + timedelta(minutes=4, seconds=10))
    assert next_retry_text(app, now) == "next attempt 12:04:10 UTC (in 4 min 10 s)"
    assert next_retry_text(app, now + timedelta(minutes=5)) == "next attempt 12:04:10 UTC (due now)"
    assert next_retry_text(app.model_copy(update={"state": EntityState.IN_PROGRESS}), now) == ""


def test_a_scheduled_release_has_a_planned_start_and_no_running_time() -> None:
    """PENDING with a planned start: the start and the wait; no running time."""
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    release = _app(
        state=EntityState.PENDING,
        started_at=now - timedelta(minutes=6),
        scheduled_for=now + timedelta(hours=5, minutes=54),
    )
    assert format_duration(release, now) == "—"
    assert scheduled_text(release, now) == (
        "scheduled to begin 2026-11-26 17:54:00 UTC (in 5 h 54 min)"
    )
    running = release.model_copy(update={"state": EntityState.IN_PROGRESS})
    assert scheduled_text(running, now) == ""
    assert format_duration(running, now) == "6 min 00 s"
