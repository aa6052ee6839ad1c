"""``POST /api/v1/parse``: one image in, persons, parts and masks out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from m2fp.server.deps import (
    ParseQueryDep,
    ParseServiceDep,
    RequestIdDep,
    SettingsDep,
    guard_parse,
)
from m2fp.server.errors import NO_STORE
from m2fp.server.parse.response import wants_png
from m2fp.server.parse.upload_reader import read_upload

# Every route here changes state and spends inference: all of them pass the parse guard.
router = APIRouter(dependencies=[Depends(guard_parse)])


@router.post("/api/v1/parse")
async def parse(
    request: Request,
    query: ParseQueryDep,
    settings: SettingsDep,
    service: ParseServiceDep,
    request_id: RequestIdDep,
) -> Response:
    """Multipart field ``image`` or a raw image/jpeg|png body; see the API contract."""
    upload = await read_upload(request, max_bytes=settings.max_upload_bytes)
    reply = await service.parse(
        upload, query, as_png=wants_png(request.headers.get("accept")), request_id=request_id
    )
    del upload
    return Response(reply.body, media_type=reply.media_type, headers=NO_STORE)
