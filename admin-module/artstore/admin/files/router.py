"""``/api/v1/admin/files``: the catalog view (files:read) and delete-everywhere (files:delete).

Under ``/api/v1/admin`` so that every path has one owner behind the gateway (the query
module answers ``/api/v1/files/{id}``; architecture §9). The old ``/api/v1/files`` paths
stay for one release as deprecated aliases of the same handlers, each answer carrying
``Deprecation: true`` (RFC 9745) and a ``Link`` to its successor."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from artstore.admin.audit.service import Actor
from artstore.admin.auth.exchange import bound_for
from artstore.admin.files import service
from artstore.admin.files.repository import FileFilters
from artstore.admin.files.schemas import AdminFile
from artstore.admin.state import DbSession, State
from artstore.common.auth import Principal, RequireScope
from artstore.common.pagination import Page, Pagination
from artstore.contracts.files import FileStatus, RetentionPolicy

PREFIX = "/api/v1/admin/files"
OLD_PREFIX = "/api/v1/files"  # deprecated alias, removed in the next release

router = APIRouter(tags=["files"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]
Deleter = Annotated[Principal, Depends(RequireScope("files:delete"))]


@router.get(PREFIX, response_model=Page[AdminFile])
async def list_files(
    session: DbSession,
    _: Reader,
    page: Pagination,
    status: Annotated[
        FileStatus | None,
        Query(description="default: active and expired"),
    ] = None,
    retention_policy: RetentionPolicy | None = None,
    storage_element_id: str | None = None,
    uploaded_by: str | None = None,
) -> Page[AdminFile]:
    filters = FileFilters(
        statuses=[status] if status else ["active", "expired"],
        retention_policy=retention_policy,
        storage_element_id=storage_element_id,
        uploaded_by=uploaded_by,
    )
    items, total = await service.page(session, filters, page.limit, page.offset)
    return Page.of([AdminFile.of_copies(r, c) for r, c in items], total, page)


@router.get(PREFIX + "/{file_id}", response_model=AdminFile)
async def get_file(file_id: uuid.UUID, session: DbSession, _: Reader) -> AdminFile:
    speaker, copies = await service.get(session, str(file_id))
    return AdminFile.of_copies(speaker, copies)


@router.delete(PREFIX + "/{file_id}", status_code=204)
async def delete_file(
    file_id: uuid.UUID, session: DbSession, state: State, principal: Deleter
) -> Response:
    async def token_for(storage_id: str) -> str:
        return await bound_for(state.settings, state.keys, principal, storage_id)

    await service.delete_everywhere(
        session, state.http, state.events, Actor.of(principal), token_for, str(file_id)
    )
    return Response(status_code=204)


class _DeprecatedAlias(APIRoute):
    """An old path: the same handler, its answers marked deprecated with the new path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        successor = PREFIX + self.path_format.removeprefix(OLD_PREFIX)

        async def deprecated(request: Request) -> Response:
            response = await handler(request)
            response.headers["Deprecation"] = "true"
            response.headers["Link"] = f'<{successor}>; rel="successor-version"'
            return response

        return deprecated


# The deprecated aliases: same handlers, marked deprecated in the OpenAPI document.
router.add_api_route(
    OLD_PREFIX,
    list_files,
    methods=["GET"],
    response_model=Page[AdminFile],
    deprecated=True,
    route_class_override=_DeprecatedAlias,
)
router.add_api_route(
    OLD_PREFIX + "/{file_id}",
    get_file,
    methods=["GET"],
    response_model=AdminFile,
    deprecated=True,
    route_class_override=_DeprecatedAlias,
)
router.add_api_route(
    OLD_PREFIX + "/{file_id}",
    delete_file,
    methods=["DELETE"],
    status_code=204,
    deprecated=True,
    route_class_override=_DeprecatedAlias,
)
