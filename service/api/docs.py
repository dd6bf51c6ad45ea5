"""The API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) from packaged files.

Swagger UI and ReDoc come from the ``fastapi-offline`` package (a pinned copy of their
distributions), served under ``/static/docs``, so the docs work without internet. Each page
carries its own Content-Security-Policy: scripts only from this service, plus the one
start-up script FastAPI writes into the Swagger page, allowed by its hash; styles may be
inline (both UIs set them at run time).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
files = StaticFiles(directory=ASSETS)  # mounted at /static/docs
_TITLE = "CNN Lab Server"
_OPENAPI = "/openapi.json"
_REDIRECT = "/docs/oauth2-redirect"


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a policy that runs its own inline scripts (by hash) and this
    service's files, nothing else."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", bytes(page.body).decode(), re.S))
    page.headers["content-security-policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'")
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return with_policy(get_swagger_ui_html(
        openapi_url=_OPENAPI, title=f"{_TITLE} - Swagger UI", oauth2_redirect_url=_REDIRECT,
        swagger_js_url="/static/docs/swagger-ui-bundle.js",
        swagger_css_url="/static/docs/swagger-ui.css",
        swagger_favicon_url="/static/docs/favicon.png"))


@router.get(_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return with_policy(get_redoc_html(
        openapi_url=_OPENAPI, title=f"{_TITLE} - ReDoc",
        redoc_js_url="/static/docs/redoc.standalone.js",
        redoc_favicon_url="/static/docs/favicon.png", with_google_fonts=False))
