"""Any single entity (release, wave, cluster, bundle or app) by its ID."""

from __future__ import annotations

from fastapi import APIRouter, Response

from relmgr import ids
from relmgr.api import examples
from relmgr.api.caching import (
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
from relmgr.api.reads import within_budget
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
