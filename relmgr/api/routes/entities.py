"""Any single entity (release, wave, cluster, bundle or app) by its ID."""

from __future__ import annotations

from fastapi import APIRouter, Response

from relmgr import ids
from relmgr.api import examples
from relmgr.api.caching import (
    Stamped,
    cached_response,
    digest,
    dump_without_read_at,
    weak_etag,
    with_read_at,
)
from relmgr.api.deps import CurrentUser, ReaderDep, StateDep
from relmgr.api.errors import (
    INVALID_PARAMETER_DOC,
    NOT_FOUND_DOC,
    UNAUTHORIZED_DOC,
    UNAVAILABLE_DOC,
)
from relmgr.api.params import AcceptEncodingHeader, EntityIdParam, IfNoneMatchHeader
from relmgr.api.reads import hierarchy_revision, stale_headers, tree_or_stale, within_budget
from relmgr.api.schemas import EntitySubtree
from relmgr.errors import NotFoundError
from relmgr.models import EntityDetail

router = APIRouter(prefix="/api/entities", tags=["entities"])


@router.get(
    "/{entity_id}",
    response_model=EntityDetail,
    summary="One entity of any kind, with its ancestors and children",
    responses={
        200: {
            "description": "The entity (`entity.kind` says which kind), its breadcrumbs up to "
            "the release, its direct children and the roll-up of everything below it.",
            "headers": {
                "ETag": {"description": "Weak validator.", "schema": {"type": "string"}},
            },
            "content": examples.json_example(examples.ENTITY.model_dump(mode="json")),
        },
        304: {"description": "Not modified: the `If-None-Match` ETag is still current."},
        401: UNAUTHORIZED_DOC,
        404: NOT_FOUND_DOC,
        422: INVALID_PARAMETER_DOC,
        503: UNAVAILABLE_DOC,
    },
)
async def get_entity(
    entity_id: EntityIdParam,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """The entity fresh from Temporal; its ID alone tells its kind, release and parent."""
    ids.parse_entity_id(entity_id)
    detail = await within_budget(reader.get_entity(entity_id))
    body = dump_without_read_at(detail)
    return cached_response(
        lambda: with_read_at(body, detail.read_at),
        etag=weak_etag("e-" + digest(body)),
        if_none_match=if_none_match,
        max_age=state.max_age,
        accept_encoding=accept_encoding,
    )


_SUBTREE_EXAMPLE = EntitySubtree(
    release_id=examples.TREE.release.id,
    revision=examples.TREE.revision,
    node=examples.TREE.release.waves[0].clusters[0],
    read_at=examples.TREE.read_at,
)


@router.get(
    "/{entity_id}/hierarchy",
    response_model=EntitySubtree,
    summary="One entity's part of the tree: a wave, cluster or bundle with everything below it",
    responses={
        200: {
            "description": "The entity (`node`) with its children, roll-ups included, read "
            "from its release's tree (so it is as fresh as `GET /api/releases/{id}/hierarchy`). "
            "Bodies of 8 KiB or more are gzip-compressed for clients that accept it. "
            "`X-Relmgr-Stale: true` and `Age` mark a subtree of the last kept tree when a cold "
            "read outran the budget.",
            "headers": {
                "ETag": {"description": "Weak validator.", "schema": {"type": "string"}},
            },
            "content": examples.json_example(_SUBTREE_EXAMPLE.model_dump(mode="json")),
        },
        304: {"description": "Not modified: the `If-None-Match` ETag is still current."},
        401: UNAUTHORIZED_DOC,
        404: NOT_FOUND_DOC,
        422: INVALID_PARAMETER_DOC,
        503: UNAVAILABLE_DOC,
    },
)
async def get_entity_hierarchy(
    entity_id: EntityIdParam,
    user: CurrentUser,
    state: StateDep,
    reader: ReaderDep,
    accept_encoding: AcceptEncodingHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """The subtree under one entity, so a script reads one wave or cluster, not the release."""
    ref = ids.parse_entity_id(entity_id)
    tree, stale_age = await tree_or_stale(reader, ref.release_id)
    node = tree.find(entity_id)
    if node is None:
        raise NotFoundError(f"{ref.kind.value} {entity_id} not found", entity_id=entity_id)
    revision = hierarchy_revision(tree)
    stale = stale_headers(stale_age)

    def render() -> Stamped:
        body = state.cache.entry(
            ("subtree", entity_id),
            revision,
            lambda: dump_without_read_at(
                EntitySubtree(
                    release_id=ref.release_id, revision=revision, node=node, read_at=tree.read_at
                )
            ),
        )
        return Stamped(body, tree.read_at)

    return cached_response(
        render,
        etag=weak_etag("s-" + digest(entity_id, revision)),
        if_none_match=if_none_match,
        max_age=0 if stale else state.max_age,
        extra_headers=stale,
        accept_encoding=accept_encoding,
    )
