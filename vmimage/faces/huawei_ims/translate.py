"""Huawei IMS vocabulary <-> core vocabulary: ImageInfo, the job object, list queries.

Every `__` value in an ImageInfo is a string ("true", "64"), as IMS writes them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, overload

from vmimage.core import insight, os_catalogue
from vmimage.core.errors import Invalid
from vmimage.core.images import (CLOUD_DESCRIPTION, CLOUD_IMAGE_NAME, CLOUD_METADATA_NAME, MAX_RAM_PROPERTY,
                                 OPAQUE_DISK_FORMATS, PUBLISHED, Image, ImageKind, ImageRelation, ImageSource,
                                 ImageStatus, check_range, refuse_encryption_key, relation)
from vmimage.core.jobs import PART_KIND, Job
from vmimage.core.listing import ImageQuery, ListScope, TimeFilter
from vmimage.core.paging import PageRequest
from vmimage.core.services.images import Change
from vmimage.core.services.buckets import EXPORT_KIND, IMPORT_KIND, BucketImport
from vmimage.core.services.members import BATCH_KIND
from vmimage.faces.http import bool_param, int_param
from vmimage.faces.huawei_ims.errors import job_code

# Core statuses IMS does not have are shown as the nearest IMS one.
_STATUS = {ImageStatus.UPLOADING: "saving", ImageStatus.IMPORTING: "saving",
           ImageStatus.PENDING_DELETE: "deleted"}


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# IMS names an image by its relation to the caller, except that a published image (public
# or community) is a public, "gold" one whoever owns it.
_IMAGE_TYPES = {ImageRelation.OWN: "private", ImageRelation.SHARED: "shared", ImageRelation.PUBLIC: "gold",
                ImageRelation.COMMUNITY: "gold"}
_VISIBILITIES = {ImageRelation.OWN: "private", ImageRelation.SHARED: "shared", ImageRelation.PUBLIC: "public",
                 ImageRelation.COMMUNITY: "public"}


def image_type(image: Image, project_id: str) -> str:
    """__imagetype: gold (public), private (the caller's own) or shared (shared with the caller)."""
    if image.visibility in PUBLISHED:
        return "gold"
    return _IMAGE_TYPES[relation(image, project_id)]


def _visibility(image: Image, project_id: str) -> str:
    """Glance's shared-with-nobody is IMS's private; shared is how others see it."""
    if image.visibility in PUBLISHED:
        return "public"
    return _VISIBILITIES[relation(image, project_id)]


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


DEFAULT_ENTERPRISE_PROJECT = "0"
FILE_SOURCES = (ImageSource.UPLOAD, ImageSource.FILE, ImageSource.OBJECT)


def image_info(image: Image, project_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in image.properties.items()}
    body.update(os_fields(image.os_version))
    # What an inspection found, where the user set nothing (their value stays as given).
    for key, found in (("__is_config_init", insight.cloud_init_found(image)), ("__support_kvm", insight.kvm_ready(image))):
        if found is not None and key not in body:
            body[key] = "true" if found else "false"
    if image.boot_mode is not None:
        body["hw_firmware_type"] = image.boot_mode.value
    if image.architecture is not None:
        body["architecture"] = image.architecture
    origin = data_origin(image)
    if origin:
        body["__data_origin"] = origin
    body.update({
        "id": image.id, "name": image.name, "status": _STATUS.get(image.status, image.status.value),
        "visibility": _visibility(image, project_id),
        "protected": image.protected, "owner": image.owner, "tags": list(image.tags),
        "container_format": image.container_format, "disk_format": image.disk_format,
        "min_disk": image.min_disk, "min_ram": image.min_ram, "size": image.size,
        "virtual_size": image.virtual_size, "checksum": image.checksum,
        "created_at": iso(image.created_at), "updated_at": iso(image.updated_at),
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file", "schema": "/v2/schemas/image",
        "virtual_env_type": virtual_env_type(image),
        "enterprise_project_id": image.properties.get("enterprise_project_id", DEFAULT_ENTERPRISE_PROJECT),
        "__imagetype": image_type(image, project_id), "__isregistered": "true",
        "__image_source_type": "uds", "__image_size": str(image.size or 0),
        "__whole_image": "true" if image.kind == ImageKind.WHOLE_MACHINE else "false",
    })
    if image.description is not None:
        body["__description"] = image.description
    if image.source in FILE_SOURCES:     # IMS's one documented value: imported from a file
        body["__root_origin"] = "file"
    if image.name is None:              # IMS: a name not given is empty
        body["name"] = ""
    body["properties"] = dict(image.properties)
    if image.status == ImageStatus.ACTIVE:
        body["active_at"] = iso(image.updated_at)
    return body



# --- jobs ------------------------------------------------------------------------------------

def job_type(job: Job) -> str:
    scope = job.payload.get("scope")
    if job.kind == PART_KIND:
        return "imsCreateImageByInstance"
    if job.kind == "image_from_disks":
        if scope == "volume":
            disks = job.payload.get("disks") or [{}]
            return "imsVolumeCreateImageJob" if disks[0].get("kind") == ImageKind.SYSTEM_DISK.value \
                else "imsVolumesToSysDataImagesJob"
        if job.payload.get("copy"):
            return "imsCrossRegionCopyImageJob" if job.payload["copy"] == "cross_region" else "imsCopyImageInRegionJob"
        return "imsCreateWholeImageByInstanceJob" if scope == "whole" else "imsCreateImageByInstance"
    if job.kind == IMPORT_KIND:
        return "imsNativeImportImageJob" if job.payload.get("registered") else "imsImportImageJob"
    if job.kind == BATCH_KIND:
        return {"add": "imsAddImageMembersJob", "remove": "imsDelImageMembersJob"}.get(
            job.payload.get("action", ""), "imsUpdateImageMembersJob")
    return JOB_TYPES.get(job.kind, job.kind)


JOB_TYPES: dict[str, str] = {EXPORT_KIND: "imsNativeExportImageJob"}


def job_body(job: Job, images: dict[str, Image], parts: Sequence[Job] = ()) -> dict[str, Any]:
    """The IMS job object; `images` holds the images the job names (for their names), `parts`
    the job's parts (one per image when it makes several), shown as its sub-jobs."""
    image_ids = list((job.entities or {}).get("image_ids") or [])
    entities: dict[str, Any] = {"process_percent": job.progress, "current_task": job.status.value.lower()}
    if image_ids:
        first = images.get(image_ids[0])
        entities["image_id"] = image_ids[0]
        entities["image_name"] = first.name if first else None
    if job.kind == BATCH_KIND:
        entities["results"] = [{**r, "status": job.status.value.lower() if job.status in ("SUCCESS", "FAIL")
                                else "running"} for r in (job.entities.get("results") or [])]
        entities.pop("image_id", None)
        entities.pop("image_name", None)
    entities["sub_jobs_result"] = [job_body(part, images) for part in parts]
    entities["sub_jobs_list"] = [part.id for part in parts]
    if job.kind == EXPORT_KIND:
        entities.pop("image_name", None)
    code = job_code(job.error_code)
    if code:
        entities["error_code"] = code
        entities["error"] = job.fail_reason
    return {"job_id": job.id, "job_type": job_type(job), "status": job.status.value,
            "begin_time": iso_ms(job.begin_time or job.created_at), "end_time": iso_ms(job.end_time),
            "error_code": code, "fail_reason": job.fail_reason, "entities": entities}


# --- requests ----------------------------------------------------------------------------------

@overload
def text(body: dict, key: str, required: Literal[True]) -> str: ...
@overload
def text(body: dict, key: str, required: bool = False) -> str | None: ...
def text(body: dict, key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"'{key}' must be a non-empty string", field=key, reason="missing")
    return value


def tags_of(body: dict) -> list[str] | None:
    """IMS's two tag forms ("key=value" strings, or {key, value}) as core tags; not both."""
    tags, image_tags = body.get("tags"), body.get("image_tags")
    if tags is not None and image_tags is not None:
        raise Invalid("'tags' and 'image_tags' cannot both be given")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise Invalid("'tags' must be a list of strings", field="tags")
        return tags
    if image_tags is not None:
        if not isinstance(image_tags, list) or not all(isinstance(t, dict) and isinstance(t.get("key"), str)
                                                       and t["key"] for t in image_tags):
            raise Invalid("'image_tags' must be a list of {key, value}", field="tags")
        return [f"{t['key']}={t.get('value') or ''}" for t in image_tags]
    return None


def memory_of(body: dict) -> tuple[int | None, int | None]:
    """(min_ram, max_ram) in MB as given (None: not given); max_ram, when given, is at least min_ram."""
    min_ram, max_ram = body.get("min_ram"), body.get("max_ram")
    if min_ram is not None:
        check_range(min_ram, 0, MAX_RAM_MB, "min_ram")
    if max_ram is not None:
        check_range(max_ram, 0, MAX_RAM_MB, "max_ram")
        if min_ram is not None and max_ram and min_ram > max_ram:
            raise Invalid("'min_ram' is larger than 'max_ram'", field="min_ram")
    return min_ram, max_ram


def ram_of(value: Any, field: str) -> int:
    """Memory in MB: an integer, or its digits as a string."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        value = int(value)
    return check_range(value, 0, MAX_RAM_MB, field)


def enterprise_project_of(value: Any) -> str | None:
    """"0" (the default enterprise project) or a UUID."""
    if value is None or value == DEFAULT_ENTERPRISE_PROJECT:
        return value
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise Invalid("'enterprise_project_id' must be 0 or a UUID", field="enterprise_project_id")


# The face's own extension properties: shown in ImageInfo, set only through their fields.
FACE_PROPERTIES = (MAX_RAM_PROPERTY, "enterprise_project_id", "virtual_env_type")


def cloud_fields(body: dict) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields every cloud-image creation takes: (core attributes, extra properties). A
    cmk_id is refused: vmimage keeps no keys, so it makes no encrypted image."""
    refuse_encryption_key(body.get("cmk_id"))
    min_ram, max_ram = memory_of(body)
    attributes: dict[str, Any] = {} if min_ram is None else {"min_ram": min_ram}
    properties: dict[str, str] = {}
    if max_ram is not None:
        properties[MAX_RAM_PROPERTY] = str(max_ram)
    project = enterprise_project_of(body.get("enterprise_project_id"))
    if project is not None:
        properties["enterprise_project_id"] = project
    return attributes, properties


def no_image_fields(body: dict, scenario: str) -> None:
    """Images made from volumes take their fields from the volumes: these are refused there."""
    for key in ("min_ram", "max_ram", "enterprise_project_id"):
        if body.get(key) is not None:
            raise Invalid(f"'{key}' is not taken for images {scenario}", field="body")


def server_image_spec(body: dict) -> dict[str, Any]:
    """POST /v2/cloudimages/action with instance_id: the server image plus one data image per
    listed data volume."""
    data_images = body.get("data_images") or []
    if not isinstance(data_images, list) or not all(isinstance(d, dict) for d in data_images):
        raise Invalid("'data_images' must be a list of objects", field="data_images")
    volumes = []
    for d in data_images:
        CLOUD_DESCRIPTION.check(d.get("description"), "description")
        volumes.append({"volume_id": text(d, "volume_id", required=True), "name": d.get("name"),
                        "description": d.get("description"), "tags": tags_of(d)})
    attributes, properties = cloud_fields(body)
    return {"name": body.get("name"), "description": CLOUD_DESCRIPTION.check(body.get("description"), "description"),
            "kind": "system", "data_volumes": volumes, "tags": tags_of(body), **attributes, "properties": properties}


def data_volume_specs(body: dict) -> list[dict[str, Any]]:
    """Data images only: one per {name, volume_id, description} of data_images."""
    data_images = body.get("data_images")
    if not isinstance(data_images, list) or not all(isinstance(d, dict) for d in data_images):
        raise Invalid("'data_images' must be a list of objects", field="data_images")
    return [{"volume_id": text(d, "volume_id", required=True), "name": d.get("name"), "image_kind": "data",
             "tags": tags_of(d),
             "description": CLOUD_DESCRIPTION.check(d.get("description"), "description")} for d in data_images]


def volume_image_spec(body: dict) -> dict[str, Any]:
    return {"name": body.get("name"), "description": CLOUD_DESCRIPTION.check(body.get("description"), "description"),
            "image_kind": "system", "os_version": (body.get("os_version") or ""), "tags": tags_of(body)}


def os_version_of(value: Any, default: str | None = None) -> str | None:
    """An os_version of the catalogue (trimmed), the default when absent."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise Invalid("'os_version' must be a string", field="os_version")
    return os_catalogue.require(value).os_version


# Glance-native create: IMS's keys -> core attributes; every other key is an extra property.
# The seed pages' formats (zvhd2 the default), and the formats PUT .../upload also takes.
IMS_DISK_FORMATS = ("zvhd2", "zvhd", "vhd", "raw", "qcow2", "iso", "vmdk", "vhdx")
MAX_RAM_MB = 2 ** 31 - 1


def glance_create(body: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    name = CLOUD_METADATA_NAME.check(body.get("name"))
    visibility = body.get("visibility", "private")
    if visibility != "private":
        raise Invalid("Only private images can be created", field="visibility")
    disk_format = body.get("disk_format", "zvhd2")
    if disk_format not in IMS_DISK_FORMATS:
        raise Invalid(f"Disk format '{disk_format}' is not supported", field="disk_format")
    attributes: dict[str, Any] = {
        "name": name, "protected": body.get("protected", False),
        "container_format": body.get("container_format", "bare"), "disk_format": disk_format,
        "min_ram": check_range(body.get("min_ram", 0), 0, MAX_RAM_MB, "min_ram"),
        "os_version": os_version_of(body.get("__os_version"), os_catalogue.OTHER_LINUX),
        "source": ImageSource.UPLOAD.value,
        "kind": (ImageKind.ISO if disk_format == "iso" else ImageKind.SYSTEM_DISK).value,
    }
    if body.get("min_disk") is not None:
        attributes["min_disk"] = check_range(body["min_disk"], 1, 1024, "min_disk")
    if body.get("tags") is not None:
        attributes["tags"] = tags_of({"tags": body["tags"]})
    known = {"name", "visibility", "protected", "container_format", "disk_format", "min_ram", "min_disk",
             "tags", "__os_version"}
    properties = {k: v for k, v in body.items() if k not in known}
    for key, value in properties.items():
        if key.startswith("__") or key in IMAGE_KEYS or key in FACE_PROPERTIES:
            raise Invalid(f"'{key}' cannot be set", field=key)
        if not isinstance(value, str):
            raise Invalid(f"'{key}' must be a string", field=key)
    return attributes, properties


# PATCH: IMS path -> (core attribute, is an extra property)
PATCHABLE = {"/name": "name", "/__description": "description", "/min_ram": "min_ram",
             "/hw_firmware_type": "boot_mode"}
PATCHABLE_PROPERTIES = ("/max_ram", "/enterprise_project_id", "/hw_vif_multiqueue_enabled", "/__is_config_init")
_EXTENSION = re.compile(r"^/[a-z0-9_.:-]+$")


def patch_changes(body: Any, glance: bool = False) -> list[Change]:
    if not isinstance(body, list) or not body or not all(isinstance(op, dict) for op in body):
        raise Invalid("The body must be a list of patch operations")
    changes = []
    for op in body:
        kind, path, value = op.get("op"), op.get("path"), op.get("value")
        if kind not in ("add", "replace", "remove") or not isinstance(path, str):
            raise Invalid("Each operation needs op (add, replace, remove) and path")
        if path == "/name":
            CLOUD_IMAGE_NAME.check(value)
        if path == "/__description":
            CLOUD_DESCRIPTION.check(value, "description")
        if path in ("/min_ram", "/max_ram") and kind != "remove":     # the SDK sends values as strings
            value = ram_of(value, path[1:])
            value = str(value) if path == "/max_ram" else value
        if path == "/enterprise_project_id" and kind != "remove":
            value = enterprise_project_of(value)
        if path == "/hw_firmware_type" and value not in ("bios", "uefi"):
            raise Invalid("hw_firmware_type must be bios or uefi", field="hw_firmware_type")
        if glance and path in ("/protected", "/min_disk", "/tags"):
            changes.append(Change(kind, path[1:], value))
        elif path in PATCHABLE:
            changes.append(Change(kind, PATCHABLE[path], value))
        elif path in PATCHABLE_PROPERTIES or path.startswith("/__support_") or (
                _EXTENSION.match(path) and not path.startswith("/__") and path[1:] not in IMAGE_KEYS):
            if kind != "remove" and not isinstance(value, str):
                raise Invalid(f"'{path[1:]}' must be a string", field=path[1:])
            changes.append(Change(kind, path[1:], value, property=True))
        else:
            raise Invalid(f"'{path}' cannot be changed")
    return changes


# ImageInfo keys that are not extension attributes.
IMAGE_KEYS = {"id", "status", "visibility", "protected", "owner", "tags", "container_format", "disk_format",
              "min_disk", "size", "virtual_size", "checksum", "created_at", "updated_at", "active_at", "self",
              "file", "schema", "virtual_env_type", "architecture", "os_version", "locations"}


# --- list ----------------------------------------------------------------------------------------

SORT_KEYS = ("name", "container_format", "disk_format", "status", "id", "size", "created_at")
_EQUALS = {"name": "name", "status": "status", "disk_format": "disk_format",
           "container_format": "container_format", "id": "id", "owner": "owner"}


def _versions(match) -> list[str]:
    return [v for v, info in os_catalogue.CATALOGUE.items() if match(info)]


ENV_KINDS = {"FusionCompute": (ImageKind.SYSTEM_DISK, ImageKind.WHOLE_MACHINE),
             "Ironic": (ImageKind.SYSTEM_DISK, ImageKind.WHOLE_MACHINE),
             "DataImage": (ImageKind.DATA_DISK,), "IsoImage": (ImageKind.ISO,)}


def list_query(params: dict[str, str], project_id: str) -> ImageQuery:
    query = ImageQuery(project_id="", scope=ListScope.ALL)
    for key, attr in _EQUALS.items():
        if params.get(key):
            query.equals[attr] = params[key]
    kind = params.get("__imagetype")
    if kind is not None:
        if kind not in ("gold", "private", "shared"):
            raise Invalid("__imagetype must be gold, private or shared", field="__imagetype")
        query.scope = {"gold": ListScope.PUBLIC, "private": ListScope.ALL, "shared": ListScope.MEMBER}[kind]
        if kind == "private":     # the project's own images, whatever their visibility
            query.equals["owner"] = project_id
    if params.get("visibility"):
        visibility = params["visibility"]
        if visibility not in ("public", "private", "shared"):
            raise Invalid("visibility must be public, private or shared", field="visibility")
        query.scope = {"public": ListScope.PUBLIC, "private": ListScope.ALL, "shared": ListScope.MEMBER}[visibility]
        if visibility == "private":
            query.equals["owner"] = project_id
    versions: set[str] | None = None
    if params.get("__platform"):
        versions = set(_versions(lambda i: i.platform == params["__platform"]))
    if params.get("__os_type"):
        found = set(_versions(lambda i: i.os_type == params["__os_type"]))
        versions = found if versions is None else versions & found
    if params.get("__os_bit"):
        found = set(_versions(lambda i: str(i.os_bit) == params["__os_bit"]))
        versions = found if versions is None else versions & found
    if versions is not None:
        query.any_of["os_version"] = sorted(versions) or ["\0none"]
    if params.get("protected"):
        query.equals["protected"] = bool_param(params["protected"], "protected")
    if params.get("min_disk"):
        query.equals["min_disk"] = int_param(params["min_disk"], "min_disk")
    if params.get("tag"):
        query.tags = [params["tag"]]
    if params.get("min_ram"):
        query.equals["min_ram"] = int_param(params["min_ram"], "min_ram")
    for key, value in params.items():
        if key.startswith("__support_") and value:     # flags PATCH sets as extension properties
            query.properties[key] = value
    if params.get("__isregistered") not in (None, "", "true"):    # every image here is registered
        query.any_of["id"] = []
    if params.get("architecture"):
        if params["architecture"] not in ARCHITECTURES:
            raise Invalid("architecture must be x86 or arm", field="architecture")
        query.architecture = ARCHITECTURES[params["architecture"]]
    env = params.get("virtual_env_type")
    if env:
        if env not in ENV_KINDS:
            raise Invalid("virtual_env_type must be FusionCompute, Ironic, DataImage or IsoImage",
                          field="virtual_env_type")
        query.any_of["kind"] = [k.value for k in ENV_KINDS[env]]
        if env == "FusionCompute":      # the default: shown for images never given another
            query.properties_or_absent["virtual_env_type"] = env
        elif env == "Ironic":
            query.properties["virtual_env_type"] = env
    if params.get("flavor_id"):
        raise Invalid("vmimage has no flavors to match images against", field="flavor_id")
    project = params.get("enterprise_project_id")
    if project == DEFAULT_ENTERPRISE_PROJECT:        # images never given one belong to the default
        query.properties_or_absent["enterprise_project_id"] = project
    elif project and project != "all_granted_eps":   # all_granted_eps: every one the caller sees
        query.properties["enterprise_project_id"] = enterprise_project_of(project) or project
    for key in ("created_at", "updated_at"):
        if params.get(key):
            op, _, when = params[key].partition(":")
            if op not in ("gt", "gte", "lt", "lte", "eq", "neq"):
                raise Invalid(f"'{key}' must be op:time, op one of gt, gte, lt, lte, eq, neq", field=key)
            try:
                moment = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                raise Invalid(f"'{key}' time must be like 2018-10-28T10:00:00Z", field=key) from None
            query.times.append(TimeFilter(key, op, moment))
    sort_key, sort_dir = params.get("sort_key", "created_at"), params.get("sort_dir", "desc")
    if sort_key not in SORT_KEYS or sort_dir not in ("asc", "desc"):
        raise Invalid("Unknown sort_key or sort_dir", field="sort_key")
    query.sort = [(sort_key, sort_dir)]
    query.page = PageRequest(limit=int_param(params.get("limit", "500"), "limit", minimum=1),
                             marker=params.get("marker") or None)
    query.member_status = params.get("member_status", "accepted")
    return query


# --- objects in buckets ---------------------------------------------------------------------------

IMAGE_TYPES = ("ECS", "BMS", "FusionCompute", "Ironic", "IsoImage")
# type -> the virtual_env_type shown (a server image's, FusionCompute, is the default)
ENV_TYPES = {"BMS": "Ironic", "Ironic": "Ironic"}
# min_disk (GB) per route, as its page gives it
MIN_DISK_FILE = (40, 1024)          # POST /v2/cloudimages/action from a file (seed 002)
MIN_DISK_QUICK = (1, 1024)          # quick import
MIN_DISK_DATA = (40, 2048)          # POST /v1/cloudimages/dataimages/action
MIN_DISK_DATA_ITEM = (1, 2048)      # a data_images item of a file import
OS_TYPES = {"Linux": "linux", "Windows": "windows"}
QUICK_FORMATS = ("raw", "zvhd2")
ARCHITECTURES = {"x86": "x86_64", "arm": "aarch64"}
FILE_FORMATS = ("qcow2", "vhd", "vmdk", "raw", "vhdx")


def bucket_object(value: Any, field: str) -> tuple[str, str]:
    """OBS's "bucket:object" as (bucket, key)."""
    if not isinstance(value, str) or ":" not in value:
        raise Invalid(f"'{field}' must be bucket:object", field=field)
    bucket, _, key = value.partition(":")
    if not bucket or not key:
        raise Invalid(f"'{field}' must be bucket:object", field=field)
    return bucket, key


def bucket_import(body: dict, kind: str, min_disk_range: tuple[int, int] = MIN_DISK_QUICK,
                  quick: bool = False) -> BucketImport:
    """An image_url import (system image, or a data image with kind "data"); a quick one takes
    RAW and ZVHD2 objects only."""
    CLOUD_IMAGE_NAME.check(body.get("name"))
    bucket, key = bucket_object(body.get("image_url"), "image_url")
    if body.get("min_disk") is None:
        raise Invalid("'min_disk' is required", field="min_disk")
    min_disk = check_range(body["min_disk"], *min_disk_range, "min_disk")
    core, properties = cloud_fields(body)
    attributes: dict[str, Any] = {**core, "description": CLOUD_DESCRIPTION.check(body.get("description"), "description")}
    tags = tags_of(body)
    if tags is not None:
        attributes["tags"] = tags
    image_type = body.get("type", "ECS")
    if image_type == "DataImage" and kind == "system":      # quick import's data image
        kind = "data"
    elif image_type not in IMAGE_TYPES:
        raise Invalid(f"'type' must be one of {', '.join(IMAGE_TYPES)}", field="type", reason="image_type")
    if image_type in ENV_TYPES and kind != "data":
        properties["virtual_env_type"] = ENV_TYPES[image_type]
    os_type = body.get("os_type")
    if os_type is not None:
        if os_type not in OS_TYPES:
            raise Invalid("os_type must be Linux or Windows", field="os_type")
        attributes["os_family"] = OS_TYPES[os_type]
    license_type = body.get("license_type")
    if license_type is not None:
        if license_type != "byol":        # vmimage provides no licences of its own
            raise Invalid("license_type must be byol: vmimage provides no platform licences",
                          field="license_type")
        properties["license_type"] = license_type
    firmware = body.get("hw_firmware_type")
    if firmware is not None:
        if firmware not in ("bios", "uefi"):
            raise Invalid("hw_firmware_type must be bios or uefi", field="hw_firmware_type")
        attributes["boot_mode"] = firmware
    architecture = body.get("architecture")
    if architecture is not None:
        if architecture not in ARCHITECTURES:
            raise Invalid("architecture must be x86 or arm", field="architecture")
        attributes["architecture"] = ARCHITECTURES[architecture]
        if architecture == "arm" and firmware == "bios":
            raise Invalid("Arm images boot with uefi", field="hw_firmware_type")
    os_version = os_version_of(body.get("os_version"))
    if kind == "data":
        attributes["kind"] = ImageKind.DATA_DISK.value
    elif image_type == "IsoImage":
        attributes["kind"] = ImageKind.ISO.value
    return BucketImport(name=body["name"], bucket=bucket, key=key, os_version=os_version, min_disk=min_disk,
                        attributes=attributes, properties=properties, unique_name=True,
                        formats=QUICK_FORMATS if quick or body.get("is_quick_import") is True else (),
                        disk_format="iso" if image_type == "IsoImage" and kind != "data" else opaque_format(key))


def opaque_format(key: str) -> str | None:
    """A .zvhd/.zvhd2 object is taken as declared so by its name: its bytes cannot be inspected."""
    suffix = key.rpartition(".")[2].lower()
    return suffix if suffix in OPAQUE_DISK_FORMATS else None


def data_image_imports(body: dict) -> list[BucketImport]:
    """The data images of a file import (at most 3), each from its own image_url."""
    data_images = body.get("data_images") or []
    if not isinstance(data_images, list) or not all(isinstance(d, dict) for d in data_images):
        raise Invalid("'data_images' must be a list of objects", field="data_images")
    if len(data_images) > 3:
        raise Invalid("At most 3 data images", field="data_images")
    return [bucket_import(d, "data", MIN_DISK_DATA_ITEM) for d in data_images]


def file_format(value: Any) -> str | None:
    if value is None:
        return None
    if value not in FILE_FORMATS:
        raise Invalid(f"'file_format' must be one of {', '.join(FILE_FORMATS)}", field="file_format")
    return value
