"""Core errors -> IMS's envelope {"error": {"code": "IMG.xxxx", "message"}}; a refused
signature -> the gateway's {"error_code": "APIGW.0301", "error_msg"}. One table
(vmimage.faces.errors), walked along the error's class hierarchy (closest wins), the field or
entity the error names choosing among a family's codes."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e
from vmimage.faces.errors import ErrorCodes, retry_after_header

# (core error class, what it is about) -> (status, IMG code); None: any. An APIGW code is the
# gateway's, in the gateway's envelope.
CODES: ErrorCodes[str] = ErrorCodes({
    (e.Invalid, "field=name/too_long"): (400, "IMG.0002"),
    (e.Invalid, "field=name/missing"): (400, "IMG.0013"),
    (e.Invalid, "field=name"): (400, "IMG.0003"),
    (e.Invalid, "field=description/too_long"): (400, "IMG.0004"),
    (e.Invalid, "field=description"): (400, "IMG.0054"),
    (e.Invalid, "field=body/missing"): (400, "IMG.0007"),
    (e.Invalid, "field=instance_id"): (400, "IMG.0012"),
    (e.Invalid, "field=os_version"): (400, "IMG.0056"),
    (e.Invalid, "field=min_disk"): (400, "IMG.0055"),
    (e.Invalid, "field=min_ram"): (400, "IMG.0055"),
    (e.Invalid, "field=max_ram"): (400, "IMG.0055"),
    (e.Invalid, "field=image_url"): (400, "IMG.0017"),
    (e.Invalid, "field=bucket_url"): (400, "IMG.0017"),
    (e.Invalid, "field=hw_firmware_type"): (400, "IMG.0141"),
    (e.Invalid, "field=architecture"): (400, "IMG.0212"),
    (e.Invalid, "field=tags/too_many"): (400, "IMG.0116"),
    (e.Invalid, "field=tags"): (400, "IMG.0115"),
    (e.Invalid, "field=disk_format"): (400, "IMG.0072"),
    (e.Invalid, "field=file_format"): (400, "IMG.0072"),
    (e.Invalid, "field=type/image_type"): (400, "IMG.0024"),
    (e.Invalid, "field=bucket"): (400, "IMG.0017"),
    (e.Invalid, "field=key"): (400, "IMG.0017"),
    (e.Invalid, "bucket"): (400, "IMG.0069"),      # not granted (whether or not it exists)
    (e.BadImageFormat, None): (400, "IMG.0057"),
    (e.Invalid, None): (400, "IMG.0001"),
    (e.NotFound, "server_id"): (400, "IMG.0005"),
    (e.NotFound, "encryption_key"): (400, "IMG.0095"),
    (e.OpaqueFormat, None): (400, "IMG.0072"),
    (e.NotFound, "volume_id"): (400, "IMG.0120"),
    (e.NotFound, "job_id"): (404, "IMG.0066"),
    (e.NotFound, "bucket"): (400, "IMG.0069"),
    (e.NotFound, "object"): (400, "IMG.0121"),
    (e.NotFound, "tag"): (404, "IMG.0115"),
    (e.NotFound, None): (404, "IMG.0027"),
    (e.MustBeStopped, None): (400, "IMG.0008"),
    (e.Busy, None): (400, "IMG.0010"),
    (e.NameTaken, None): (400, "IMG.0009"),
    (e.InUse, None): (400, "IMG.0046"),
    (e.InvalidTransition, None): (400, "IMG.0090"),
    (e.Conflict, None): (400, "IMG.0046"),
    (e.Protected, None): (400, "IMG.0028"),
    (e.Forbidden, "field=project_id"): (403, "IMG.0067"),
    (e.Forbidden, "image_id"): (403, "IMG.0047"),
    (e.Forbidden, "bucket"): (400, "IMG.0069"),
    (e.Forbidden, None): (403, "IMG.0026"),
    (e.TooLarge, None): (400, "IMG.0059"),
    (e.QuotaExceeded, None): (400, "IMG.0015"),
    (e.Gone, None): (404, "IMG.0027"),
    (e.TooManyRequests, None): (429, "IMG.0060"),
    (e.BackendUnavailable, None): (503, "IMG.0061"),
    (e.Unauthenticated, None): (401, "APIGW.0301"),     # the gateway refuses the signature
}, by_status={
    # A family the rows above do not name keeps its default status, with the closest IMG code.
    # The request body over the byte cap (413) and a body that stopped arriving (408) are the
    # request message refused as such: IMG.0001 "request message format invalid" (IMG.0059 is
    # the image file too large, the image data cap's code, which they are not).
    400: "IMG.0001", 401: "APIGW.0301", 403: "IMG.0026", 404: "IMG.0027", 408: "IMG.0001",
    409: "IMG.0046", 410: "IMG.0027", 413: "IMG.0001", 415: "IMG.0057", 429: "IMG.0060",
    500: "IMG.0061", 503: "IMG.0061",
})

# Job failures: the core's error code -> IMG code shown by the job.
JOB_CODES = {"unsafe_image": "IMG.0057", "bad_image_format": "IMG.0057", "too_large": "IMG.0059",
             "quota_exceeded": "IMG.0015", "not_found": "IMG.0121", "forbidden": "IMG.0069",
             "invalid_source": "IMG.0017", "invalid": "IMG.0072"}


def job_code(core_code: str | None) -> str | None:
    return None if core_code is None else JOB_CODES.get(core_code, "IMG.0061")


def ims_body(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def gateway_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status)


class ImsErrors:
    def core(self, _request: Request, exc: e.VmImageError) -> JSONResponse:
        status, code = CODES.lookup(exc)
        if code.startswith("APIGW."):
            return gateway_body(status, code, exc.message)
        return ims_body(status, code, exc.message, retry_after_header(exc) or None)

    def http(self, _request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return ims_body(405, "IMG.0001", "Method not allowed")
        if exc.status_code == 404:
            return gateway_body(404, "APIGW.0101", "The API does not exist or has not been published")
        return ims_body(exc.status_code, "IMG.0001", str(exc.detail))

    def invalid(self, _request: Request, exc: RequestValidationError) -> JSONResponse:
        return ims_body(400, "IMG.0001", f"Invalid request: {exc.errors()}")

    def internal(self, _request: Request) -> JSONResponse:
        return ims_body(500, "IMG.0061", "Unknown system error")
