"""Core errors -> the Aries envelope: {"code": PascalCase, "message": Chinese text}.

The class table walks the error's class hierarchy (closest wins). Where the dialect names
the entity in the code (ImageNotFound, VolumeInUse...), the core error's structured field
says which entity it is about; one route renames a code (update's ImageNameExists).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from vmimage.core import errors as e

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
    "MethodNotAllowed": "不支持的请求方法",
    "ServiceUnavailable": "服务暂不可用",
    "InternalError": "内部错误",
    "RequestTooLarge": "请求体过大",
    "TooManyRequests": "请求过于频繁",
    "RequestTimeout": "请求超时",
}

BY_CLASS: dict[type[e.VmImageError], tuple[int, str]] = {
    e.NotFound: (404, "ResourceNotFound"),
    e.Gone: (404, "ResourceNotFound"),
    e.Conflict: (400, "InvalidOperation"),
    e.Duplicate: (400, "InvalidParameter"),     # a caller-chosen uuid that is taken
    e.NameTaken: (400, "ImageExists"),
    e.Invalid: (400, "InvalidParameter"),
    e.InvalidSource: (400, "InvalidSourcePath"),
    e.BadImageFormat: (400, "InvalidSourcePath"),   # only registered files carry data here
    e.Forbidden: (403, "Forbidden"),
    e.Protected: (400, "ImageProtected"),
    e.Unauthenticated: (401, "Unauthorized"),
    e.QuotaExceeded: (400, "QuotaExceeded"),
    e.BackendUnavailable: (503, "ServiceUnavailable"),
    e.RequestTooLarge: (413, "RequestTooLarge"),
    e.Throttled: (429, "TooManyRequests"),
    e.Stalled: (408, "RequestTimeout"),
}

# (error class, the field naming the entity) -> (status, code)
BY_ENTITY: dict[tuple[type[e.VmImageError], str], tuple[int, str]] = {
    (e.NotFound, "image_id"): (404, "ImageNotFound"),
    (e.NotFound, "server_id"): (404, "ServerNotFound"),
    (e.NotFound, "volume_id"): (404, "VolumeNotFound"),
    (e.NotFound, "snapshot_id"): (404, "SnapshotNotFound"),
    (e.Gone, "image_id"): (404, "ImageNotFound"),
    (e.InUse, "image_id"): (400, "ImageInUse"),
    (e.InUse, "volume_id"): (409, "VolumeInUse"),
}

# Invalid values whose field has a code of its own (servers and volumes).
BY_FIELD: dict[str, str] = {
    "cpu_count": "InvalidCPUCore",
    "memory_mb": "InvalidMemorySize",
    "size_gb": "InvalidDiskSize",
    "type": "InvalidDiskType",
    # the same values as the dialect names them, refused by the body's model
    "cpu_core_count": "InvalidCPUCore",
    "memory_size": "InvalidMemorySize",
    "size": "InvalidDiskSize",
    "source_path": "InvalidSourcePath",
}

# (method, path after the prefix) -> {code: code on this route}
BY_ROUTE: dict[tuple[str, str], dict[str, str]] = {
    ("PUT", "/image"): {"ImageExists": "ImageNameExists"},
}


def aries_body(status: int, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": MESSAGES[code]}, status_code=status, headers=headers)


def _classify(exc: e.VmImageError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        for name in exc.fields:
            if (cls, name) in BY_ENTITY:
                return BY_ENTITY[(cls, name)]
        if cls is e.Invalid and str(exc.fields.get("field", "")).rsplit(".", 1)[-1] in BY_FIELD:
            return 400, BY_FIELD[str(exc.fields["field"]).rsplit(".", 1)[-1]]
        if cls in BY_CLASS:
            return BY_CLASS[cls]
    return 500, "InternalError"


def aries_error(request: Request, exc: e.VmImageError, prefix: str) -> JSONResponse:
    status, code = _classify(exc)
    route = (request.method, request.url.path[len(prefix):])
    seconds = exc.fields.get("retry_after")
    return aries_body(status, BY_ROUTE.get(route, {}).get(code, code),
                      {"Retry-After": str(seconds)} if seconds is not None else None)


def aries_http_error(status: int) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method) in the Aries envelope."""
    code = {404: "ResourceNotFound", 405: "MethodNotAllowed"}.get(status, "InvalidParameter")
    return aries_body(status if status in (404, 405) else 400, code)
