"""Core errors -> Glance status codes and its error body."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e

STATUS: dict[type[e.VmImageError], int] = {
    e.NotFound: 404,
    e.Gone: 410,
    e.Conflict: 409,
    e.Invalid: 400,
    e.BadImageFormat: 415,
    e.Forbidden: 403,
    e.Unauthenticated: 401,
    e.QuotaExceeded: 413,
    e.BackendUnavailable: 503,
}


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:  # the closest registered class wins
        if cls in STATUS:
            return STATUS[cls]
    return 500


def glance_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # A dict of dicts, each with "message": the shape glanceclient and openstacksdk both read.
    body = {"error": {"code": status, "title": HTTPStatus(status).phrase, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_core_error(_request: Request, exc: e.VmImageError) -> JSONResponse:
    status = status_for(exc)
    headers = {"WWW-Authenticate": 'Keystone uri="/identity/v3"'} if status == 401 else None
    return glance_error(status, exc.message, headers)
