"""Entity IDs: every ID is its Temporal workflow ID and tells its kind, its release and its parent.

The grammar (one regular expression per kind, see `ID_PATTERNS`):

    release  rel-<name>                    rel-2026-11-payments
    wave     <release>.wave-<n>            rel-2026-11-payments.wave-1
    cluster  <wave>.cluster-<slug>         rel-2026-11-payments.wave-1.cluster-eu-west-1
    bundle   <cluster>.bundle-<slug>       ....cluster-eu-west-1.bundle-core
    app      <bundle>.app-<slug>           ....bundle-core.app-checkout

<name> and <slug> are lowercase letters, digits and inner hyphens (<name> up to 40 characters,
<slug> up to 32); <n> is 1-99. The alphabet has no quote, backslash, space or operator, so a
validated ID is safe inside a quoted visibility-query literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relmgr.errors import InvalidIdError
from relmgr.models import EntityKind

MAX_ID_LENGTH = 255
_NAME = r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?"
_SLUG = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
_RELEASE = rf"rel-{_NAME}"
_WAVE = rf"{_RELEASE}\.wave-[1-9][0-9]?"
_CLUSTER = rf"{_WAVE}\.cluster-{_SLUG}"
_BUNDLE = rf"{_CLUSTER}\.bundle-{_SLUG}"
_APP = rf"{_BUNDLE}\.app-{_SLUG}"

ID_PATTERNS: dict[EntityKind, re.Pattern[str]] = {
    EntityKind.RELEASE: re.compile(rf"^{_RELEASE}$"),
    EntityKind.WAVE: re.compile(rf"^{_WAVE}$"),
    EntityKind.CLUSTER: re.compile(rf"^{_CLUSTER}$"),
    EntityKind.BUNDLE: re.compile(rf"^{_BUNDLE}$"),
    EntityKind.APP: re.compile(rf"^{_APP}$"),
}

ID_FORMATS: dict[EntityKind, str] = {
    EntityKind.RELEASE: "rel-<name>, e.g. rel-2026-11-payments",
    EntityKind.WAVE: "<release-id>.wave-<1-99>, e.g. rel-2026-11-payments.wave-1",
    EntityKind.CLUSTER: "<wave-id>.cluster-<slug>, e.g. rel-2026-11-payments.wave-1.cluster-eu-1",
    EntityKind.BUNDLE: "<cluster-id>.bundle-<slug>, e.g. rel-x.wave-1.cluster-eu-1.bundle-core",
    EntityKind.APP: "<bundle-id>.app-<slug>, e.g. rel-x.wave-1.cluster-eu-1.bundle-core.app-web",
}
_ALPHABET = "lowercase letters, digits and '-'; <name> 1-40 and <slug> 1-32 characters"
_PREFIXES: dict[str, EntityKind] = {
    "wave-": EntityKind.WAVE,
    "cluster-": EntityKind.CLUSTER,
    "bundle-": EntityKind.BUNDLE,
    "app-": EntityKind.APP,
}
# Free-text ID search accepts the ID alphabet plus '.', nothing else.
SEARCH_PATTERN = re.compile(r"^[a-z0-9.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A validated entity ID taken apart."""

    id: str
    kind: EntityKind
    release_id: str
    parent_id: str | None

    @property
    def name(self) -> str:
        """The last segment without its kind prefix (`eu-west-1` for `...cluster-eu-west-1`)."""
        segment = self.id.rsplit(".", 1)[-1]
        return segment.split("-", 1)[1]

    def ancestors(self) -> list[EntityRef]:
        """The chain from the release down to this entity's parent."""
        chain: list[EntityRef] = []
        parent = self.parent_id
        while parent is not None:
            ref = parse_entity_id(parent)
            chain.append(ref)
            parent = ref.parent_id
        return list(reversed(chain))


def _expected_message(value: str, kinds: list[EntityKind]) -> str:
    shown = value if len(value) <= 80 else value[:77] + "..."
    formats = "; ".join(f"{kind.value}: {ID_FORMATS[kind]}" for kind in kinds)
    return f"malformed ID {shown!r}: expected {formats} ({_ALPHABET})"


def _kind_of(value: str) -> EntityKind | None:
    last = value.rsplit(".", 1)[-1]
    if "." not in value:
        return EntityKind.RELEASE if last.startswith("rel-") else None
    for prefix, kind in _PREFIXES.items():
        if last.startswith(prefix):
            return kind
    return None


def parse_entity_id(value: str, *, kind: EntityKind | None = None) -> EntityRef:
    """Validate any entity ID (or one of `kind`) and take it apart; raise InvalidIdError if not."""
    kinds = [kind] if kind is not None else list(EntityKind)
    expected = "; ".join(ID_FORMATS[k] for k in kinds)
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(
            f"malformed ID: expected at most {MAX_ID_LENGTH} characters of the form {expected}",
            value=str(value)[:80],
            expected=expected,
        )
    found = _kind_of(value)
    if found is None or (kind is not None and found is not kind):
        raise InvalidIdError(_expected_message(value, kinds), value=value, expected=expected)
    if not ID_PATTERNS[found].fullmatch(value):
        raise InvalidIdError(_expected_message(value, [found]), value=value, expected=expected)
    release_id = value.split(".", 1)[0]
    parent_id = value.rsplit(".", 1)[0] if found is not EntityKind.RELEASE else None
    return EntityRef(id=value, kind=found, release_id=release_id, parent_id=parent_id)


def validate_release_id(value: str) -> str:
    """Return `value` if it is a well-formed release ID; raise InvalidIdError otherwise."""
    return parse_entity_id(value, kind=EntityKind.RELEASE).id


def validate_search(value: str) -> str:
    """Return a free-text ID search if it only uses the ID alphabet; raise InvalidIdError if not."""
    if not SEARCH_PATTERN.fullmatch(value):
        raise InvalidIdError(
            f"malformed search {value[:80]!r}: "
            "expected 1-64 of lowercase letters, digits, '-', '.'",
            value=value[:80],
            expected="1-64 characters of [a-z0-9.-]",
        )
    return value


def release_id(name: str) -> str:
    """The release ID for a release name."""
    return validate_release_id(f"rel-{name}")


def wave_id(release: str, number: int) -> str:
    """The ID of wave `number` (1-based) of `release`."""
    return parse_entity_id(f"{release}.wave-{number}", kind=EntityKind.WAVE).id


def cluster_id(wave: str, name: str) -> str:
    """The ID of cluster `name` in `wave`."""
    return parse_entity_id(f"{wave}.cluster-{name}", kind=EntityKind.CLUSTER).id


def bundle_id(cluster: str, name: str) -> str:
    """The ID of the one bundle `name` of `cluster`."""
    return parse_entity_id(f"{cluster}.bundle-{name}", kind=EntityKind.BUNDLE).id


def app_id(bundle: str, name: str) -> str:
    """The ID of app `name` in `bundle`."""
    return parse_entity_id(f"{bundle}.app-{name}", kind=EntityKind.APP).id
