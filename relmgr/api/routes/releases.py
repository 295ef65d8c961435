"""The release list, one release, and one release's whole tree, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from relmgr import ids
from relmgr.api import examples
from relmgr.api.audit import AuditEvent
from relmgr.api.caching import (
    CSV,
    Stamped,
    cached_response,
    digest,
    dump_without_read_at,
    etag_matches,
    weak_etag,
)
from relmgr.api.deps import ApiState, CurrentUser, ReaderDep, StateDep, client_address
from relmgr.api.errors import (
    INVALID_PARAMETER_DOC,
    NOT_FOUND_DOC,
    UNAUTHORIZED_DOC,
    UNAVAILABLE_DOC,
)
from relmgr.api.params import (
    MAX_HIERARCHY_DEPTH,
    AcceptEncodingHeader,
    DepthParam,
    FormatParam,
    IfNoneMatchHeader,
    ReleaseIdParam,
    SearchParam,
    wants_csv,
)
from relmgr.api.reads import hierarchy_revision, stale_headers, tree_or_stale, within_budget
from relmgr.api.schemas import ReleaseItem, ReleaseListResponse, SortOrder
from relmgr.auth.users import User
from relmgr.export import hierarchy_csv, releases_csv
from relmgr.models import (
    MAX_PAGE_SIZE,
    Cluster,
    EntityState,
    ReleaseHierarchy,
    ReleaseQuery,
    ReleaseSort,
    ReleaseSummary,
)
from relmgr.progress.timeline import HISTORY_QUERY, ReleaseTimeline, build_timeline
from relmgr.reader.matching import MAX_EXPORT_ROWS, matching_releases

router = APIRouter(prefix="/api/releases", tags=["releases"])

MAX_PAGE = 1_000_000
# Set on a release CSV cut at the export cap, to the cap (the rows are the first that many).
TRUNCATED_HEADER = "X-Relmgr-Export-Truncated-At"

_ETAG_HEADER = {
    "ETag": {
        "description": "Weak validator: send it back as `If-None-Match`.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`private, max-age=<seconds>`.",
        "schema": {"type": "string"},
    },
}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` ETag is still current (no body)."},
    401: UNAUTHORIZED_DOC,
    422: INVALID_PARAMETER_DOC,
    503: UNAVAILABLE_DOC,
}


def _json_example(model: Any) -> dict[str, Any]:
    return examples.json_example(model.model_dump(mode="json"))


def _record_export(state: ApiState, request: Request, user: User, resource: str, rows: int) -> None:
    state.audit.record(
        AuditEvent.EXPORT,
        client=client_address(request),
        username=user.username,
        path=request.url.path,
        resource=resource,
        rows=rows,
    )


@router.get(
    "",
    response_model=ReleaseListResponse,
    summary="List releases: filter by state, search by ID, sort, page; JSON or CSV",
    responses={
        200: {
            "description": "One page of releases (JSON), or every matching release (CSV).",
            "headers": _ETAG_HEADER,
            "content": {
                **_json_example(ReleaseListResponse.of(examples.PAGE)),
                **examples.csv_example(examples.RELEASES_CSV),
            },
        },
        **_READ_ERRORS,
    },
)
async def list_releases(
    request: Request,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Releases per page, 1-{MAX_PAGE_SIZE}.")
    ] = 50,
    state_filter: Annotated[
        EntityState | None, Query(alias="state", description="Only releases in this state.")
    ] = None,
    q: SearchParam = None,
    sort: Annotated[ReleaseSort, Query(description="Sort column.")] = ReleaseSort.STARTED_AT,
    order: Annotated[SortOrder, Query(description="Sort direction.")] = SortOrder.DESC,
    format_: FormatParam = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Releases newest first (or as sorted), with counts per state over all releases.

    The JSON answer is one page; the CSV answer (`?format=csv` or `Accept: text/csv`) holds
    every release matching the filter and search (up to 10,000; past that the response carries
    `X-Relmgr-Export-Truncated-At`), in the requested order, ignoring paging.
    """
    if q is not None:
        ids.validate_search(q)
    query = ReleaseQuery(
        page=page,
        page_size=page_size,
        state=state_filter,
        search=q,
        sort=sort,
        descending=order is SortOrder.DESC,
    )
    vary = {"Vary": "Accept"}
    if wants_csv(format_, accept):
        found = await within_budget(matching_releases(reader, query))
        text = releases_csv(found.items, as_of=found.read_at)
        # The data, not the text: a running release's duration in the CSV grows with every read,
        # and a client whose rows have not changed keeps its copy (as for the JSON list, whose
        # ETag leaves out `read_at`).
        etag = weak_etag(
            "lc-" + digest(repr((format_, q, state_filter, sort, order)), *_summaries(found.items))
        )
        if not etag_matches(if_none_match, etag):
            _record_export(state, request, user, "releases", len(found.items))
        headers = {**vary, "Content-Disposition": 'attachment; filename="releases.csv"'}
        if found.truncated:
            headers[TRUNCATED_HEADER] = str(MAX_EXPORT_ROWS)
        return cached_response(
            text.encode(),
            etag=etag,
            if_none_match=if_none_match,
            max_age=state.max_age,
            media_type=CSV,
            extra_headers=headers,
            accept_encoding=accept_encoding,
        )
    result = await within_budget(reader.list_releases(query))
    key = ("releases", state_filter, q, sort, order, page, page_size)
    counts = f"{result.counts.model_dump_json()}|{result.app_counts.model_dump_json()}"
    revision = f"{result.revision}|{counts}"
    if not result.revision:
        revision = digest(dump_without_read_at(result))
    etag = weak_etag("l-" + digest(repr(key), revision))

    def render() -> Stamped:
        body = state.cache.entry(
            key, revision, lambda: dump_without_read_at(ReleaseListResponse.of(result))
        )
        return Stamped(body, result.read_at)

    return cached_response(
        render,
        etag=etag,
        if_none_match=if_none_match,
        max_age=state.max_age,
        extra_headers=vary,
        accept_encoding=accept_encoding,
    )


@router.get(
    "/{release_id}",
    response_model=ReleaseItem,
    summary="One release without its tree",
    responses={
        200: {
            "description": "The release, its app counts and its current wave.",
            "headers": _ETAG_HEADER,
            "content": _json_example(ReleaseItem.of(examples.SUMMARY)),
        },
        404: NOT_FOUND_DOC,
        **_READ_ERRORS,
    },
)
async def get_release(
    release_id: ReleaseIdParam,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """One release as the release list shows it."""
    ids.validate_release_id(release_id)
    summary = await within_budget(reader.get_release(release_id))
    body = ReleaseItem.of(summary).model_dump_json().encode()
    return cached_response(
        body,
        etag=weak_etag("r-" + digest(body)),
        if_none_match=if_none_match,
        max_age=state.max_age,
        accept_encoding=accept_encoding,
    )


def cut_to_depth(tree: ReleaseHierarchy, depth: int) -> ReleaseHierarchy:
    """The tree down to `depth` (see `DepthParam`); roll-ups stay, so counts are whole."""
    if depth >= MAX_HIERARCHY_DEPTH:
        return tree

    def cluster_without_apps(cluster: Cluster) -> Cluster:
        return cluster.model_copy(update={"bundle": cluster.bundle.model_copy(update={"apps": ()})})

    # model_copy shares the untouched nodes and validates nothing: the parts are valid already.
    waves = tuple(
        wave.model_copy(
            update={
                "clusters": ()
                if depth == 1
                else tuple(cluster_without_apps(c) for c in wave.clusters)
            }
        )
        for wave in tree.release.waves
    )
    return tree.model_copy(update={"release": tree.release.model_copy(update={"waves": waves})})


STALE_DOC = {
    "X-Relmgr-Stale": {
        "description": (
            "`true` when a fresh read outran the API's 1.8 s budget and the tree is the last "
            "one kept of this release; `Age` then gives its age in seconds (and `read_at` says "
            "when it was read)."
        ),
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Age": {
        "description": "Seconds since a stale tree was read (only with `X-Relmgr-Stale`).",
        "schema": {"type": "integer"},
    },
    "Content-Encoding": {
        "description": "`gzip` for bodies of 8 KiB or more when `Accept-Encoding` allows it.",
        "schema": {"type": "string"},
    },
}


@router.get(
    "/{release_id}/hierarchy",
    response_model=ReleaseHierarchy,
    summary="A release's tree (or its top levels): waves, clusters, bundles, apps; JSON or CSV",
    responses={
        200: {
            "description": (
                "The tree (JSON), or one CSV row per entity, depth first; with `?depth=1` only "
                "the release and its waves, `?depth=2` down to the clusters."
            ),
            "headers": {**_ETAG_HEADER, **STALE_DOC},
            "content": {
                "application/json": {
                    "examples": {
                        "whole": {
                            "summary": "The whole tree (default, depth=3)",
                            "value": examples.TREE.model_dump(mode="json"),
                        },
                        "waves": {
                            "summary": "?depth=1: the release and its waves, with roll-ups",
                            "value": cut_to_depth(examples.TREE, 1).model_dump(mode="json"),
                        },
                    }
                },
                **examples.csv_example(examples.HIERARCHY_CSV),
            },
        },
        404: NOT_FOUND_DOC,
        **_READ_ERRORS,
    },
)
async def get_release_hierarchy(
    request: Request,
    release_id: ReleaseIdParam,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    depth: DepthParam = MAX_HIERARCHY_DEPTH,
    format_: FormatParam = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Every entity of the release (or its top `depth` levels); planned ones that have not
    started yet show as PENDING. Bodies of 8 KiB or more are gzip-compressed for clients that
    accept it (compressed once per revision of the tree)."""
    ids.validate_release_id(release_id)
    whole, stale_age = await tree_or_stale(reader, release_id)
    tree = cut_to_depth(whole, depth)
    revision = hierarchy_revision(whole)
    depth_tag = "" if depth == MAX_HIERARCHY_DEPTH else f"{depth}"
    stale = stale_headers(stale_age)
    max_age = 0 if stale else state.max_age
    if wants_csv(format_, accept):
        etag = weak_etag(f"hc{depth_tag}-" + revision)
        if not etag_matches(if_none_match, etag):
            _record_export(state, request, user, "hierarchy", sum(1 for _ in tree.entities()))
        return cached_response(
            lambda: Stamped(
                state.cache.entry(
                    ("hierarchy.csv", release_id, depth),
                    revision,
                    lambda: hierarchy_csv(tree).encode(),
                )
            ),
            etag=etag,
            if_none_match=if_none_match,
            max_age=max_age,
            media_type=CSV,
            extra_headers={
                "Vary": "Accept",
                "Content-Disposition": f'attachment; filename="{release_id}.csv"',
                **stale,
            },
            accept_encoding=accept_encoding,
        )

    def render() -> Stamped:
        body = state.cache.entry(
            ("hierarchy", release_id, depth), revision, lambda: dump_without_read_at(tree)
        )
        return Stamped(body, tree.read_at)

    return cached_response(
        render,
        etag=weak_etag(f"h{depth_tag}-" + revision),
        if_none_match=if_none_match,
        max_age=max_age,
        extra_headers={"Vary": "Accept", **stale},
        accept_encoding=accept_encoding,
    )


@router.get(
    "/{release_id}/timeline",
    response_model=ReleaseTimeline,
    summary="A release's timeline: waves and clusters with durations, and its finish estimate",
    responses={
        200: {
            "description": (
                "Every wave and cluster with `started_at`, `finished_at`, `duration_seconds` and "
                "state; unfinished ones with estimated start and finish. The release carries "
                "`estimated_finish_at` with a range (`estimated_finish_low`/`_high`), null "
                "unless `estimate` is `estimated`, and `estimate_basis` says how it was made or "
                "why there is none."
            ),
            "headers": _ETAG_HEADER,
            "content": _json_example(examples.TIMELINE),
        },
        404: NOT_FOUND_DOC,
        **_READ_ERRORS,
    },
)
async def get_release_timeline(
    release_id: ReleaseIdParam,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """The release's tree as a timeline, estimated from its own pace and earlier releases of its
    shape (the newest releases that succeeded), both as the reader has them."""
    ids.validate_release_id(release_id)
    tree = await within_budget(reader.get_release_hierarchy(release_id))
    history = await within_budget(reader.list_releases(HISTORY_QUERY))
    body = build_timeline(tree, history.items).model_dump_json().encode()
    return cached_response(
        body,
        etag=weak_etag("t-" + digest(body)),
        if_none_match=if_none_match,
        max_age=state.max_age,
        accept_encoding=accept_encoding,
    )


def _summaries(items: tuple[ReleaseSummary, ...]) -> list[str]:
    return [item.model_dump_json() for item in items]
