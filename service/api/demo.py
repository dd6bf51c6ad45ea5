"""The demo page at ``/``: static files (page, script, styles), no build step. The script is
a file of its own so the page's Content-Security-Policy can forbid inline script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC / "index.html"
# the page's script and styles, at /static/...
files = StaticFiles(directory=STATIC)


@router.get("/")
async def demo_page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")
