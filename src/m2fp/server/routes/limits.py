"""``GET /api/v1/limits``: what an anonymous client may send, so that a page can say it before
the limit is hit (upload size, photos per period, how many rejected uploads pause uploads and
for how long). The numbers are the running settings; the checks themselves stay in the guard
and the upload reader."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from m2fp.server.abuse.rate_limit import parse_rate_limit
from m2fp.server.deps import SettingsDep

router = APIRouter()


@router.get("/api/v1/limits")
async def limits(settings: SettingsDep) -> JSONResponse:
    """``max_upload_bytes``; ``rate_limit``: the anonymous quotas as ``[{amount, seconds}]``
    (e.g. 5 photos per 60 s); ``ban_after`` rejected uploads in a row pause uploads for
    ``ban_seconds``."""
    body = {
        "max_upload_bytes": settings.max_upload_bytes,
        "rate_limit": [
            {"amount": item.amount, "seconds": item.get_expiry()}
            for item in parse_rate_limit(settings.rate_limit)
        ],
        "ban_after": settings.ban_after,
        "ban_seconds": settings.ban_seconds,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})
