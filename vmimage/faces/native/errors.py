"""Core errors -> the native API's envelope (Glance-style status codes)."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse

from vmimage.core.errors import VmImageError
from vmimage.faces.http import GLANCE_STYLE_STATUS, retry_after, status_for


def native_error(exc: VmImageError) -> JSONResponse:
    status = status_for(exc, GLANCE_STYLE_STATUS)
    return JSONResponse({"error": {"code": exc.code, "status": status, "title": HTTPStatus(status).phrase,
                                   "message": exc.message}}, status_code=status,
                        headers=retry_after(exc) or None)
