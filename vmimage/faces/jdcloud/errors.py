"""The JD Cloud face's one error table: {"requestId", "error": {code, status, message}}
with the HTTP status equal to `code` (reference §3), JD's wording where the docs give it."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e
from vmimage.faces.errors import ErrorCodes, retry_after_header
from vmimage.faces.http import request_id

# (core error class, what it is about) -> (HTTP status, JD status); the closest class wins.
CODES: ErrorCodes[str] = ErrorCodes({
    (e.NotFound, None): (404, "NOT_FOUND"),
    (e.Gone, None): (404, "NOT_FOUND"),
    (e.Duplicate, None): (400, "DUPLICATE"),
    (e.Conflict, None): (400, "FAILED_PRECONDITION"),
    (e.OutOfRange, None): (400, "OUT_OF_RANGE"),
    (e.Invalid, None): (400, "INVALID_ARGUMENT"),
    (e.Invalid, "duplicate"): (400, "DUPLICATE"),       # a value given twice in one request
    (e.Forbidden, None): (403, "PERMISSION_DENIED"),
    (e.Unauthenticated, None): (401, "UNAUTHENTICATED"),
    (e.QuotaExceeded, None): (429, "QUOTA_EXCEEDED"),
    (e.BackendUnavailable, None): (503, "UNAVAILABLE"),
    (e.RequestTooLarge, None): (413, "INVALID_ARGUMENT"),
    (e.Stalled, None): (408, "DEADLINE_EXCEEDED"),
}, by_status={
    # A family the rows above do not name keeps its default status, with JD's status for it
    # (docs.jdcloud.com common error codes): a brake (TooManyRequests) is 429 RATE_LIMIT
    # ("请求过频繁"), not QUOTA_EXCEEDED, which JD keeps for a resource quota.
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED", 409: "ABORTED", 410: "NOT_FOUND", 413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT", 429: "RATE_LIMIT", 500: "INTERNAL", 503: "UNAVAILABLE",
})


def _message(exc: e.VmImageError) -> str:
    """JD's wording for the refusals its docs name; the core's message otherwise."""
    f = exc.fields
    if isinstance(exc, e.NotFound):
        for key, text in (("server_id", "Instance '{}' not found."), ("snapshot_id", "Snapshot '{}' not found"),
                          ("image_id", "Image '{}' not found")):
            if f.get(key):
                return text.format(f[key])
    if f.get("duplicate") and f.get("field") == "device":
        return "Duplicate deviceName"
    if isinstance(exc, e.MustBeStopped):
        return "Please stop the instance first"
    if isinstance(exc, e.Busy):
        if f.get("volume_id"):
            return f"Disk '{f['volume_id']}' busy in '{f.get('task') or exc.message}'"
        return f"Conflict with underlay task {f.get('task') or exc.message}"
    if isinstance(exc, e.InvalidTransition):
        return f"Invalid image status '{f.get('current')}'"
    if isinstance(exc, e.OutOfRange):
        if f.get("field") == "size_gb" and f.get("minimum") is not None:
            return f"Device '{f.get('device')}' size can only be larger than the original size"
        if str(f.get("field", "")).endswith("size_gb"):
            return "DataDisks.CloudDiskSpec.DiskSizeGB out of range"
        if f.get("field") == "iops":
            return "DataDisks.CloudDiskSpec.Iops out of range."
    if isinstance(exc, e.Invalid) and f.get("field") == "os_release":
        return "Parameter osVersion must be 1 to 64 characters"
    if isinstance(exc, e.Invalid) and f.get("field") == "type" and f.get("value") is None:
        return "Parameter DataDisks.CloudDiskSpec.DiskType missing"
    if isinstance(exc, e.QuotaExceeded) and not isinstance(exc, e.TooLarge):
        return "Image quota limit exceeded"
    return exc.message


def jd_error(request: Request, status: int, symbol: str, message: str,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"requestId": request_id(request) or "",
                         "error": {"code": status, "status": symbol, "message": message}}, status_code=status,
                        headers=headers)


class JdErrors:
    def core(self, request: Request, exc: e.VmImageError) -> JSONResponse:
        status, symbol = CODES.lookup(exc)
        return jd_error(request, status, symbol, _message(exc) if status != 500 else "Internal server error",
                        retry_after_header(exc) or None)

    def http(self, request: Request, exc: HTTPException) -> JSONResponse:
        symbol = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_ARGUMENT")
        return jd_error(request, exc.status_code, symbol, str(exc.detail))

    def invalid(self, request: Request, exc: RequestValidationError) -> JSONResponse:
        return jd_error(request, 400, "INVALID_ARGUMENT", f"Invalid request: {exc.errors()}")

    def internal(self, request: Request) -> JSONResponse:
        return jd_error(request, 500, "INTERNAL", "Internal server error")

