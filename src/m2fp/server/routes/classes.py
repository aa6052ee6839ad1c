"""``GET /api/v1/classes``: the loaded model's classes and colours, for legends."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.server.deps import ParserDep

router = APIRouter()


@router.get("/api/v1/classes")
async def classes(parser: ParserDep) -> JSONResponse:
    """The label set of the loaded model (``cihp`` for the multi-person model, ``lip`` for
    the single-person one), its task, and per class id its name and RGB colour."""
    label_set = parser.label_set
    body = {
        "label_set": label_set.name,
        "task": parser.task.value,
        "classes": [
            {"id": index, "name": name, "color": list(color)}
            for index, (name, color) in enumerate(
                zip(label_set.names, label_set.palette, strict=True)
            )
        ],
    }
    return JSONResponse(body)
