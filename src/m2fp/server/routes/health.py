"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.server.deps import StateDep
from m2fp.server.errors import NO_STORE

router = APIRouter()
# what /readyz tells about the model's compute; not the GPU's model or memory
PUBLIC = (
    "device",
    "engine",
    "precision",
    "requested_precision",
    "accuracy",
    "caveat",
    "threads",
    "threads_source",
)


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
    """The model is loaded and nothing (e.g. the memory watchdog) asked to shed load; with
    where and how it computes (``compute``: device, engine, precision, and ``accuracy``:
    ``exact``, or ``approximation`` for anything but fp32; ``threads`` and what decided them:
    ``requested``, ``cgroup quota`` or ``affinity``)."""
    if state.services is None or state.not_ready:
        return JSONResponse({"status": "not_ready"}, status_code=503, headers=NO_STORE)
    compute = {k: state.services.compute[k] for k in PUBLIC if k in state.services.compute}
    return JSONResponse({"status": "ready", "compute": compute}, headers=NO_STORE)
