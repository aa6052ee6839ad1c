"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.server.deps import StateDep
from m2fp.server.errors import NO_STORE

router = APIRouter()


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process answers."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "Loading the model, or shedding load.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def readyz(state: StateDep) -> JSONResponse:
    """The model is loaded and nothing (e.g. the memory watchdog) asked to shed load."""
    if state.services is None or state.not_ready:
        return JSONResponse({"status": "not_ready"}, status_code=503, headers=NO_STORE)
    return JSONResponse({"status": "ready"}, headers=NO_STORE)
