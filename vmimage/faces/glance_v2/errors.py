"""Core errors -> Glance status codes and its error body."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e
from vmimage.faces.http import GLANCE_STYLE_STATUS, retry_after, status_for


def glance_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # A dict of dicts, each with "message": the shape glanceclient and openstacksdk both read.
    body = {"error": {"code": status, "title": HTTPStatus(status).phrase, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_core_error(_request: Request, exc: e.VmImageError) -> JSONResponse:
    status = status_for(exc, GLANCE_STYLE_STATUS)
    headers = {"WWW-Authenticate": 'Keystone uri="/identity/v3"'} if status == 401 else {}
    return glance_error(status, exc.message, {**headers, **retry_after(exc)} or None)
