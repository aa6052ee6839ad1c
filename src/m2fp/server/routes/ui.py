"""The WebUI: ``GET /`` serves index.html, ``/static`` its scripts, styles and translations,
all from the package (no CDN, nothing outside the wheel)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("m2fp.server"))) / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """The app mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR, check_dir=False)
