"""``POST /api/v1/parse``: one image in, persons, parts and masks out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from m2fp.imaging.decoder import MEDIA_TYPES
from m2fp.server.deps import (
    ParseQueryDep,
    ParseServiceDep,
    RequestIdDep,
    SettingsDep,
    guard_parse,
)
from m2fp.server.errors import NO_STORE, error_responses
from m2fp.server.parse.query_schema import query_parameters
from m2fp.server.parse.response import answer_responses, negotiate
from m2fp.server.parse.upload_reader import FIELD_NAME, read_upload

# Every route here changes state and spends inference: all of them pass the parse guard.
router = APIRouter(dependencies=[Depends(guard_parse)])

# Every reason the parse route can answer with (the error contract, in the OpenAPI schema).
PARSE_REFUSALS = (
    "bad_request",
    "no_person",
    "corrupt_image",
    "too_many_scans",
    "image_too_costly",
    "empty_body",
    "upload_timeout",
    "unauthorized",
    "forbidden_origin",
    "banned",
    "payload_too_large",
    "too_many_pixels",
    "unsupported_media_type",
    "bad_extension",
    "not_acceptable",
    "rate_limited",
    "internal_error",
    "overloaded",
    "timeout",
    "storage_unavailable",
    "device_out_of_memory",
    "unsupported_shape",
)


def _request_body() -> dict[str, Any]:
    """The body ``read_upload`` streams itself (FastAPI never parses it), for the schema."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    field = FIELD_NAME.decode()
    multipart = {
        "schema": {
            "type": "object",
            "properties": {field: {"type": "string", "format": "binary"}},
            "required": [field],
            "additionalProperties": False,
        }
    }
    content = {"multipart/form-data": multipart}
    content.update({media_type: binary for media_type in MEDIA_TYPES.values()})
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/api/v1/parse",
    responses={**answer_responses(), **error_responses(*PARSE_REFUSALS)},
    openapi_extra={**_request_body(), **query_parameters()},
)
async def parse(
    request: Request,
    query: ParseQueryDep,
    settings: SettingsDep,
    service: ParseServiceDep,
    request_id: RequestIdDep,
) -> Response:
    """Multipart field ``image`` (``.jpg``, ``.jpeg``, ``.png``) or a raw image/jpeg|png
    body; JSON answer, or the overlay alone with ``Accept: image/png``."""
    as_png = negotiate(request.headers.get("accept"))
    # the place in the queue first: a full queue is 503 before a byte of the body is read
    with service.reserve() as place:
        upload = await read_upload(
            request, max_bytes=settings.max_upload_bytes, timeout=settings.upload_timeout
        )
        reply = await service.parse(
            upload, query, place=place, as_png=as_png, request_id=request_id
        )
        del upload
    return Response(reply.body, media_type=reply.media_type, headers=NO_STORE)
