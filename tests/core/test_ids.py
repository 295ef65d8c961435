"""The ID grammar: one pattern per kind, parents and releases derived, everything else refused."""

from __future__ import annotations

import pytest

from relmgr import ids
from relmgr.errors import InvalidIdError
from relmgr.models import EntityKind

APP = "rel-2026-11-pay.wave-3.cluster-eu-west-1.bundle-core.app-checkout"


@pytest.mark.parametrize(
    ("value", "kind", "parent"),
    [
        ("rel-2026-11-pay", EntityKind.RELEASE, None),
        ("rel-2026-11-pay.wave-3", EntityKind.WAVE, "rel-2026-11-pay"),
        ("rel-2026-11-pay.wave-3.cluster-eu-west-1", EntityKind.CLUSTER, "rel-2026-11-pay.wave-3"),
        (
            "rel-2026-11-pay.wave-3.cluster-eu-west-1.bundle-core",
            EntityKind.BUNDLE,
            "rel-2026-11-pay.wave-3.cluster-eu-west-1",
        ),
        (APP, EntityKind.APP, "rel-2026-11-pay.wave-3.cluster-eu-west-1.bundle-core"),
    ],
)
def test_each_kind_parses_to_its_kind_release_and_parent(
    value: str, kind: EntityKind, parent: str | None
) -> None:
    """A valid ID of every kind tells its kind, its release and its parent."""
    ref = ids.parse_entity_id(value)
    assert (ref.kind, ref.release_id, ref.parent_id) == (kind, "rel-2026-11-pay", parent)


def test_name_and_ancestors_come_from_the_id() -> None:
    """An app's name is its last slug; its ancestors run from the release down to its bundle."""
    ref = ids.parse_entity_id(APP)
    assert ref.name == "checkout"
    assert [a.kind for a in ref.ancestors()] == [
        EntityKind.RELEASE,
        EntityKind.WAVE,
        EntityKind.CLUSTER,
        EntityKind.BUNDLE,
    ]
    assert ref.ancestors()[-1].id == ref.parent_id


@pytest.mark.parametrize(
    "value",
    [
        "",
        "rel-",
        "rel-UPPER",
        "rel--double",
        "rel-trailing-",
        "release-x",
        "rel-x.wave-0",
        "rel-x.wave-100",
        "rel-x.wave-01",
        "rel-x.cluster-a",
        "rel-x.wave-1.bundle-core",
        "rel-x.wave-1.cluster-a.app-web",
        "rel-x.wave-1.cluster-a.bundle-core.app-web.app-x",
        "x' OR ReleaseId != '",
        "rel-x' OR RelmgrReleaseId != '",
        'rel-x"',
        "rel-x\\",
        "rel-x y",
        "rel-<b>x</b>",
        "rel-é",
        "rel-" + "a" * 41,
        "rel-x.wave-1.cluster-" + "a" * 33,
        "a" * 10_000,
    ],
)
def test_malformed_ids_are_refused_with_the_expected_format(value: str) -> None:
    """Anything outside the grammar raises InvalidIdError whose message names a format."""
    with pytest.raises(InvalidIdError) as caught:
        ids.parse_entity_id(value)
    assert "expected" in caught.value.message
    assert "rel-" in caught.value.expected


def test_a_kind_constraint_refuses_ids_of_other_kinds() -> None:
    """validate_release_id refuses a well-formed wave ID and names the release format."""
    with pytest.raises(InvalidIdError) as caught:
        ids.validate_release_id("rel-x.wave-1")
    assert caught.value.expected == ids.ID_FORMATS[EntityKind.RELEASE]


def test_huge_ids_are_refused_before_any_pattern_runs() -> None:
    """An ID over 255 characters is refused with the length limit in the message."""
    with pytest.raises(InvalidIdError, match="at most 255 characters"):
        ids.parse_entity_id("rel-" + "a" * 300)


def test_builders_compose_valid_ids_and_refuse_bad_parts() -> None:
    """The ID builders produce IDs that parse back, and refuse parts outside the alphabet."""
    release = ids.release_id("demo")
    wave = ids.wave_id(release, 2)
    cluster = ids.cluster_id(wave, "us-1")
    bundle = ids.bundle_id(cluster, "core")
    app = ids.app_id(bundle, "web")
    assert app == "rel-demo.wave-2.cluster-us-1.bundle-core.app-web"
    assert ids.parse_entity_id(app).kind is EntityKind.APP
    with pytest.raises(InvalidIdError):
        ids.cluster_id(wave, "US 1")


@pytest.mark.parametrize("value", ["pay", "rel-2026.wave-1", "a-b-c"])
def test_search_accepts_the_id_alphabet(value: str) -> None:
    """A search of lowercase letters, digits, '-' and '.' is accepted as is."""
    assert ids.validate_search(value) == value


@pytest.mark.parametrize("value", ["", "x'", "a b", "A", "a" * 65, "%", "<script>"])
def test_search_refuses_anything_else(value: str) -> None:
    """Quotes, spaces, capitals, wildcards and over-long searches are refused."""
    with pytest.raises(InvalidIdError, match="malformed search"):
        ids.validate_search(value)


@pytest.mark.parametrize(
    "value", ["rel-x\n", "rel-x.wave-1\n", "rel-x\r\n", "rel-x.wave-1.cluster-c1\n"]
)
def test_a_trailing_newline_is_refused(value: str) -> None:
    """The whole string must match: `$` alone would let a trailing newline through."""
    with pytest.raises(InvalidIdError):
        ids.parse_entity_id(value)


def test_a_search_with_a_trailing_newline_is_refused() -> None:
    """Search text is matched in full too."""
    with pytest.raises(InvalidIdError):
        ids.validate_search("payments\n")
