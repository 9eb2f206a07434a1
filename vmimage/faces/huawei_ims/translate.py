"""Huawei IMS vocabulary <-> core vocabulary: ImageInfo, the job object, list queries.

Every `__` value in an ImageInfo is a string ("true", "64"), as IMS writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vmimage.core import os_catalogue
from vmimage.core.images import Image, ImageKind, ImageSource, ImageStatus, Visibility
from vmimage.core.jobs import Job

# Core statuses IMS does not have are shown as the nearest IMS one.
_STATUS = {ImageStatus.UPLOADING: "saving", ImageStatus.IMPORTING: "saving",
           ImageStatus.PENDING_DELETE: "deleted"}


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def image_type(image: Image, project_id: str) -> str:
    """__imagetype: gold (public), private (the caller's own) or shared (shared with the caller)."""
    if image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return "gold"
    return "private" if image.owner == project_id else "shared"


def virtual_env_type(image: Image) -> str:
    if image.kind == ImageKind.DATA_DISK:
        return "DataImage"
    if image.kind == ImageKind.ISO or image.disk_format == "iso":
        return "IsoImage"
    return image.properties.get("virtual_env_type", "FusionCompute")


def data_origin(image: Image) -> str | None:
    if image.source in (ImageSource.SERVER, ImageSource.VOLUME, ImageSource.SNAPSHOT) and image.source_ref:
        return f"{'instance' if image.source == ImageSource.SERVER else image.source.value},{image.source_ref}"
    if image.source == ImageSource.OBJECT and image.source_ref:
        return f"file,{image.source_ref}"
    return None


def os_fields(os_version: str | None) -> dict[str, str]:
    info = os_catalogue.lookup(os_version)
    if info is None:
        return {}
    return {"__os_version": info.os_version, "__platform": info.platform, "__os_type": info.os_type,
            "__os_bit": str(info.os_bit)}


def image_info(image: Image, project_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in image.properties.items()}
    body.update(os_fields(image.os_version))
    if image.boot_mode is not None:
        body["hw_firmware_type"] = image.boot_mode.value
    if image.architecture is not None:
        body["architecture"] = image.architecture
    origin = data_origin(image)
    if origin:
        body["__data_origin"] = origin
    body.update({
        "id": image.id, "name": image.name, "status": _STATUS.get(image.status, image.status.value),
        "visibility": "public" if image.visibility == Visibility.COMMUNITY else image.visibility.value,
        "protected": image.protected, "owner": image.owner, "tags": sorted(image.tags),
        "container_format": image.container_format, "disk_format": image.disk_format,
        "min_disk": image.min_disk, "min_ram": image.min_ram, "size": image.size,
        "virtual_size": image.virtual_size, "checksum": image.checksum,
        "created_at": iso(image.created_at), "updated_at": iso(image.updated_at),
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file", "schema": "/v2/schemas/image",
        "virtual_env_type": virtual_env_type(image), "enterprise_project_id": "0",
        "__imagetype": image_type(image, project_id), "__isregistered": "true",
        "__image_source_type": "uds", "__image_size": str(image.size or 0),
        "__root_origin": "file", "__whole_image": "true" if image.kind == ImageKind.WHOLE_MACHINE else "false",
    })
    if image.description is not None:
        body["__description"] = image.description
    if image.status == ImageStatus.ACTIVE:
        body["active_at"] = iso(image.updated_at)
    return body


def job_body(job: Job, job_type: str, images: dict[str, Image]) -> dict[str, Any]:
    """The IMS job object; `images` holds the images the job names (for their names)."""
    image_ids = list((job.entities or {}).get("image_ids") or [])
    entities: dict[str, Any] = {"process_percent": job.progress,
                                "current_task": job.status.value.lower()}
    if image_ids:
        first = images.get(image_ids[0])
        entities["image_id"] = image_ids[0]
        entities["image_name"] = first.name if first else None
    subs = [_sub_job(job, image_id, images.get(image_id)) for image_id in image_ids[1:]]
    entities["sub_jobs_result"] = subs
    entities["sub_jobs_list"] = [s["job_id"] for s in subs]
    if job.error_code:
        entities["error_code"] = job.error_code
        entities["error"] = job.fail_reason
    return {"job_id": job.id, "job_type": job_type, "status": job.status.value,
            "begin_time": iso_ms(job.begin_time or job.created_at), "end_time": iso_ms(job.end_time),
            "error_code": job.error_code, "fail_reason": job.fail_reason, "entities": entities}


def _sub_job(job: Job, image_id: str, image: Image | None) -> dict[str, Any]:
    """One data image of a server-image job, shown as IMS shows a sub-job."""
    return {"job_id": f"{job.id[:24]}{image_id.replace('-', '')[:8]}", "job_type": "imsCreateDataImageByInstance",
            "status": job.status.value, "begin_time": iso_ms(job.begin_time or job.created_at),
            "end_time": iso_ms(job.end_time), "error_code": job.error_code, "fail_reason": job.fail_reason,
            "entities": {"image_id": image_id, "image_name": image.name if image else None}}
