"""Native API: images imported from and exported to the object storage's granted buckets."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from vmimage.core.errors import Invalid
from vmimage.core.policy import Caller
from vmimage.core.services import buckets as bsvc
from vmimage.faces.bodies import body_of
from vmimage.faces.http import caller
from vmimage.faces.native import schemas
from vmimage.faces.native import translate as t
from vmimage.faces.contract import deps, face_router
from vmimage.faces.native.routes import PREFIX

router = face_router(prefix=PREFIX)
_IMPORT_FIELDS = {"name", "bucket", "key", "disk_format", "os_version", "min_disk", "store"}
_EXPORT_FIELDS = {"bucket", "key", "disk_format"}


def _fields(body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)}")
    for name in ("name", "bucket", "key", "disk_format", "os_version", "store"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise Invalid(f"'{name}' must be a string", field=name)
    if "min_disk" in body and (not isinstance(body["min_disk"], int) or isinstance(body["min_disk"], bool)):
        raise Invalid("'min_disk' must be an integer", field="min_disk")
    return body


@router.post("/images/import", status_code=202)
def import_image(request: Request, who: Caller = Depends(caller),
                 body: dict = Depends(body_of(schemas.BucketImport))):
    b = _fields(body, _IMPORT_FIELDS)
    req = bsvc.BucketImport(name=b.get("name"), bucket=b.get("bucket"), key=b.get("key"),
                            disk_format=b.get("disk_format"), os_version=b.get("os_version"),
                            min_disk=b.get("min_disk"), store=b.get("store"))
    return JSONResponse({"job": t.job(bsvc.import_from_bucket(deps(request), who, req))}, status_code=202)


@router.post("/images/{image_id}/export", status_code=202)
def export_image(request: Request, image_id: str, who: Caller = Depends(caller),
                 body: dict = Depends(body_of(schemas.BucketExport))):
    b = _fields(body, _EXPORT_FIELDS)
    job = bsvc.export_to_bucket(deps(request), who, image_id, b.get("bucket"), b.get("key"), b.get("disk_format"))
    return JSONResponse({"job": t.job(job)}, status_code=202)
