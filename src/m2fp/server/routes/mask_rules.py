"""``GET /api/v1/mask-rules``: the label sets, remap tables, mask groups and agnostic rules,
for the WebUI's masks panel (static data: nothing about any request or photo)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.outputs.rules_document import rules_document

router = APIRouter()


@router.get("/api/v1/mask-rules")
async def mask_rules() -> JSONResponse:
    """The rules ``m2fp.outputs`` applies, keyed by the label set a result carries."""
    return JSONResponse(rules_document())
