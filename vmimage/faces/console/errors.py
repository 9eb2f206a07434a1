"""The console's error table: the native API's envelope, {"error": {code, status, title, message}}
(a browser only meets it for a file that is not there)."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core.errors import VmImageError
from vmimage.faces.errors import ErrorCodes, retry_after_header
from vmimage.faces.http import allowed_methods

CODES: ErrorCodes[None] = ErrorCodes()
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def console_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "status": status, "title": HTTPStatus(status).phrase,
                                   "message": message}}, status_code=status, headers=headers)


class ConsoleErrors:
    def core(self, _request: Request, exc: VmImageError) -> JSONResponse:
        status, _ = CODES.lookup(exc)
        return console_error(status, exc.code, exc.message, retry_after_header(exc) or None)

    def http(self, request: Request, exc: HTTPException) -> JSONResponse:
        headers = {"Allow": ", ".join(allowed_methods(request))} if exc.status_code == 405 else None
        return console_error(exc.status_code, _HTTP_CODES.get(exc.status_code, "invalid"), str(exc.detail), headers)

    def invalid(self, _request: Request, exc: RequestValidationError) -> JSONResponse:
        return console_error(400, "invalid", f"Invalid request: {exc.errors()}")

    def internal(self, _request: Request) -> JSONResponse:
        return console_error(500, VmImageError.code, "Internal error")
