"""Core errors -> the Aries envelope: {"code": PascalCase, "message": Chinese text}.

One table (vmimage.faces.errors), walked along the error's class hierarchy (closest wins).
Where the dialect names the entity in the code (ImageNotFound, VolumeInUse...), the core
error's structured field says which entity it is about; one route names a code its own way
(update's ImageNameExists).
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e
from vmimage.faces.errors import ErrorCodes, retry_after_header

MESSAGES = {
    "InvalidParameter": "参数无效",
    "ImageExists": "镜像已存在",
    "ImageNameExists": "镜像名称已存在",
    "InvalidSourcePath": "源文件路径无效",
    "ImageNotFound": "镜像不存在",
    "ImageInUse": "镜像正在使用中",
    "ImageProtected": "系统内置镜像不可删除",
    "ServerNotFound": "服务器不存在",
    "VolumeNotFound": "云盘不存在",
    "SnapshotNotFound": "快照不存在",
    "ResourceNotFound": "资源不存在",
    "VolumeInUse": "云盘正在使用中",
    "InvalidOperation": "当前状态不允许该操作",
    "InvalidCPUCore": "CPU核数无效",
    "InvalidMemorySize": "内存大小无效",
    "InvalidDiskSize": "磁盘大小无效",
    "InvalidDiskType": "磁盘类型无效",
    "QuotaExceeded": "超出配额",
    "Unauthorized": "认证失败",
    "Forbidden": "无权限",
    "TooManyRequests": "请求过于频繁，请稍后重试",
    "MethodNotAllowed": "不支持的请求方法",
    "ServiceUnavailable": "服务暂不可用",
    "InternalError": "内部错误",
    "RequestTooLarge": "请求体过大",
    "RequestTimeout": "请求超时",
}

# The one table: (core error class, what the error is about) -> (status, code). What it is
# about: None (the class alone); the structured field naming the entity ("image_id"...);
# "field=<name>" for an invalid value of that field (a dotted one by its last part);
# "route=<METHOD> <path below the prefix>" where one route names a code its own way.
CODES: ErrorCodes[str] = ErrorCodes({
    (e.NotFound, None): (404, "ResourceNotFound"),
    (e.NotFound, "image_id"): (404, "ImageNotFound"),
    (e.NotFound, "server_id"): (404, "ServerNotFound"),
    (e.NotFound, "volume_id"): (404, "VolumeNotFound"),
    (e.NotFound, "snapshot_id"): (404, "SnapshotNotFound"),
    (e.Gone, None): (404, "ResourceNotFound"),
    (e.Gone, "image_id"): (404, "ImageNotFound"),
    (e.Conflict, None): (400, "InvalidOperation"),
    (e.Conflict, "no_data"): (400, "InvalidParameter"),    # server/create from an image without data
    (e.InUse, "image_id"): (400, "ImageInUse"),
    (e.InUse, "volume_id"): (409, "VolumeInUse"),
    (e.Duplicate, None): (400, "InvalidParameter"),     # a caller-chosen uuid that is taken
    (e.NameTaken, None): (400, "ImageExists"),
    (e.NameTaken, "route=PUT /image"): (400, "ImageNameExists"),
    (e.Invalid, None): (400, "InvalidParameter"),
    (e.Invalid, "field=cpu_count"): (400, "InvalidCPUCore"),
    (e.Invalid, "field=memory_mb"): (400, "InvalidMemorySize"),
    (e.Invalid, "field=size_gb"): (400, "InvalidDiskSize"),
    (e.Invalid, "field=type"): (400, "InvalidDiskType"),
    # the same values as the dialect names them, refused by the body's model
    (e.Invalid, "field=cpu_core_count"): (400, "InvalidCPUCore"),
    (e.Invalid, "field=memory_size"): (400, "InvalidMemorySize"),
    (e.Invalid, "field=size"): (400, "InvalidDiskSize"),
    (e.Invalid, "field=source_path"): (400, "InvalidSourcePath"),
    (e.InvalidSource, None): (400, "InvalidSourcePath"),
    (e.BadImageFormat, None): (400, "InvalidSourcePath"),   # only registered files carry data here
    (e.Forbidden, None): (403, "Forbidden"),
    (e.Protected, None): (400, "ImageProtected"),
    (e.Unauthenticated, None): (401, "Unauthorized"),
    (e.QuotaExceeded, None): (400, "QuotaExceeded"),
    (e.TooManyRequests, None): (429, "TooManyRequests"),
    (e.BackendUnavailable, None): (503, "ServiceUnavailable"),
    (e.RequestTooLarge, None): (413, "RequestTooLarge"),
    (e.Stalled, None): (408, "RequestTimeout"),
}, by_status={     # a family the rows above do not name: its default status, in Aries' words
    400: "InvalidParameter", 401: "Unauthorized", 403: "Forbidden", 404: "ResourceNotFound",
    408: "RequestTimeout", 409: "InvalidOperation", 410: "ResourceNotFound", 413: "RequestTooLarge",
    415: "InvalidParameter", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
})
# The framework's own refusals.
HTTP_CODES = {404: (404, "ResourceNotFound"), 405: (405, "MethodNotAllowed")}


def aries_body(status: int, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": MESSAGES[code]}, status_code=status, headers=headers)


class AriesErrors:
    """The Aries face's error table; routes are named by their path below `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def core(self, request: Request, exc: e.VmImageError) -> JSONResponse:
        status, code = CODES.lookup(exc, route=f"{request.method} {request.url.path[len(self.prefix):]}")
        return aries_body(status, code, retry_after_header(exc) or None)

    def http(self, _request: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own refusals (no such route, wrong method) in the Aries envelope."""
        return aries_body(*HTTP_CODES.get(exc.status_code, (400, "InvalidParameter")))

    def invalid(self, _request: Request, _exc: RequestValidationError) -> JSONResponse:
        return aries_body(400, "InvalidParameter")

    def internal(self, _request: Request) -> JSONResponse:
        return aries_body(500, "InternalError")
