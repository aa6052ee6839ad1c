"""The WebUI: ``GET /`` serves index.html, ``/static/...`` its scripts, styles and
translations, all from the package (no CDN, nothing outside the wheel).

``/static`` is a route rather than a mount so that metrics and audit lines see its template.
The router is built per app, with its ``StaticFiles`` made once, when the app is.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("m2fp.server"))) / "static"


def build_router() -> APIRouter:
    """The WebUI's routes, serving ``STATIC_DIR`` as it is when this is called."""
    static_dir = STATIC_DIR
    static_files = StaticFiles(directory=static_dir, check_dir=False)
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        page = static_dir / "index.html"
        if not page.is_file():
            raise HTTPException(status_code=404)
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @router.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str, request: Request) -> Response:
        """A file under ``static_dir``; Starlette refuses paths that resolve outside it."""
        return await static_files.get_response(path, request.scope)

    return router
