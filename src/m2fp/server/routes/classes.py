"""``GET /api/v1/classes``: the CIHP classes and colours, for legends."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.labels import CIHP_CLASSES, CIHP_PALETTE

router = APIRouter()


@router.get("/api/v1/classes")
async def classes() -> JSONResponse:
    body = {
        "classes": [
            {"id": index, "name": CIHP_CLASSES[index], "color": list(color)}
            for index, color in enumerate(CIHP_PALETTE)
        ]
    }
    return JSONResponse(body)
