"""Path, query and header parameters shared by the read routes, documented once.

IDs and the search text are documented with their patterns but validated by `relmgr.ids`, so that
a malformed one gets the 422 message that names the expected format, the same as in the UI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

from relmgr.api.schemas import ExportFormat
from relmgr.ids import ID_FORMATS, ID_PATTERNS, MAX_ID_LENGTH, SEARCH_PATTERN
from relmgr.models import EntityKind

RELEASE_ID_PATTERN = ID_PATTERNS[EntityKind.RELEASE].pattern
ENTITY_ID_PATTERN = "|".join(f"(?:{pattern.pattern})" for pattern in ID_PATTERNS.values())

ReleaseIdParam = Annotated[
    str,
    Path(
        description=f"A release ID: {ID_FORMATS[EntityKind.RELEASE]}.",
        json_schema_extra={"pattern": RELEASE_ID_PATTERN, "maxLength": MAX_ID_LENGTH},
        examples=["rel-2026-11-payments"],
    ),
]

EntityIdParam = Annotated[
    str,
    Path(
        description="Any entity ID; its shape says its kind: "
        + "; ".join(f"{kind.value}: {fmt}" for kind, fmt in ID_FORMATS.items())
        + ".",
        json_schema_extra={"pattern": ENTITY_ID_PATTERN, "maxLength": MAX_ID_LENGTH},
        examples=["rel-2026-11-payments.wave-1.cluster-eu-1.bundle-core.app-api"],
    ),
]

SearchParam = Annotated[
    str | None,
    Query(
        description="Only releases whose ID contains this text (1-64 of a-z, 0-9, '-', '.').",
        json_schema_extra={"pattern": SEARCH_PATTERN.pattern},
        examples=["payments"],
    ),
]

FormatParam = Annotated[
    ExportFormat | None,
    Query(
        alias="format",
        description="`csv` for a CSV download (the same as `Accept: text/csv`); default JSON.",
    ),
]

IfNoneMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="An ETag from an earlier answer: 304 with no body if nothing changed since.",
    ),
]


def wants_csv(format_: ExportFormat | None, accept: str | None) -> bool:
    """True for `?format=csv`, or no `format` and an Accept header that prefers text/csv."""
    if format_ is not None:
        return format_ is ExportFormat.CSV
    if not accept:
        return False
    best_csv = best_other = 0.0
    for position, media_range in enumerate(accept.split(",")):
        kind, _, params = media_range.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # Earlier entries win ties, as browsers and curl list their preference first.
        score = quality - position * 1e-6
        if kind.strip().lower() == "text/csv":
            best_csv = max(best_csv, score)
        else:
            best_other = max(best_other, score)
    return best_csv > 0 and best_csv > best_other


AppIdParam = Annotated[
    str,
    Path(
        description=f"An app ID: {ID_FORMATS[EntityKind.APP]}.",
        json_schema_extra={
            "pattern": ID_PATTERNS[EntityKind.APP].pattern,
            "maxLength": MAX_ID_LENGTH,
        },
        examples=["rel-2026-11-payments.wave-1.cluster-eu-1.bundle-core.app-api"],
    ),
]

# Read from the request only to choose the encoding; not a documented parameter.
AcceptEncodingHeader = Annotated[str | None, Header(include_in_schema=False)]

# How far below the release a hierarchy goes; a cluster's one bundle counts as part of it.
MAX_HIERARCHY_DEPTH = 3
DepthParam = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_HIERARCHY_DEPTH,
        description=(
            "How much of the tree: 1 = the release and its waves, 2 = and their clusters (each "
            "with its bundle, without apps), 3 = everything (the default). Every node keeps its "
            "`rollup`, so a cut tree still counts the apps below it."
        ),
        examples=[1],
    ),
]
