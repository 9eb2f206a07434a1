"""The console's files: index.html for /console/, the assets beside it, each with a strict
Content-Security-Policy (no inline script or style, no framing, requests to this origin only)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from vmimage.core.errors import NotFound
from vmimage.faces.contract import face_router

PREFIX = "/console"
STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
           # Assets change with the package; a browser asks again rather than run an old app.
           "Cache-Control": "no-cache"}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".txt": "text/plain; charset=utf-8"}
# A flat folder of plainly named files: nothing else is ever looked up on disk.
ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

router = face_router(prefix=PREFIX)


def asset(name: str) -> Response:
    path = STATIC / name
    kind = TYPES.get(path.suffix)
    if not ASSET_NAME.fullmatch(name) or ".." in name or kind is None or not path.is_file():
        raise NotFound(f"No console file {name!r}")
    return Response(path.read_bytes(), media_type=kind, headers=HEADERS)


@router.get("")
def console_root(_request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", status_code=308)


@router.get("/")
def console_index(_request: Request) -> Response:
    return asset("index.html")


@router.get("/{name}")
def console_asset(_request: Request, name: str) -> Response:
    return asset(name)
