"""Glance v2 vocabulary <-> core vocabulary. Glance names stop here."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from vmimage.core import os_catalogue
from vmimage.core.errors import Invalid
from vmimage.core.images import Image, Location
from vmimage.core.jobs import Job, JobStatus
from vmimage.core.listing import COMPARE_OPS, IN_FILTER_KEYS, ImageQuery, ListScope, TimeFilter
from vmimage.core.members import Member
from vmimage.core.paging import Page
from vmimage.core.services import tasks
from vmimage.core.services.images import Change
from vmimage.faces.http import bool_param, int_param
from vmimage.faces.http import iso_time as iso

# Glance attribute name -> core attribute name (for the ones the core types itself).
GLANCE_TO_CORE = {
    "name": "name", "visibility": "visibility", "protected": "protected", "os_hidden": "os_hidden",
    "disk_format": "disk_format", "container_format": "container_format", "min_disk": "min_disk",
    "min_ram": "min_ram", "owner": "owner", "tags": "tags", "id": "id",
    "architecture": "architecture", "hw_firmware_type": "boot_mode",
}
# Well-known properties an image shows from its OS identity unless the user set them.
SHOWN_FROM_OS = ("os_distro", "os_version")
PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
ACCEPT_PATCH = f"{PATCH_V20}, {PATCH_V21}"


@dataclass(frozen=True)
class ImageView:
    """What this deployment and this caller add to an image body."""
    multi_store: bool = False
    show_locations: Callable[[Image], bool] = lambda image: False
    location_url: Callable[[Location], str] = lambda loc: loc.key
    # The core's order of an image's locations (heaviest store first).
    ordered: Callable[[list[Location]], list[Location]] = lambda locations: locations


def locations_to_glance(image: Image, view: ImageView) -> list[dict[str, Any]]:
    out = []
    for loc in view.ordered(image.locations):
        metadata = dict(loc.metadata)
        if view.multi_store:
            metadata["store"] = loc.store
        out.append({"url": view.location_url(loc), "metadata": metadata})
    return out


def image_to_glance(image: Image, view: ImageView = ImageView()) -> dict[str, Any]:
    body: dict[str, Any] = dict(image.properties)
    if view.multi_store and image.locations:
        body["stores"] = ",".join(dict.fromkeys(loc.store for loc in view.ordered(image.locations)))
    if view.show_locations(image):
        body["locations"] = locations_to_glance(image, view)
        if body["locations"]:
            body["direct_url"] = body["locations"][0]["url"]
    if image.architecture is not None:
        body["architecture"] = image.architecture
    if image.boot_mode is not None:
        body["hw_firmware_type"] = image.boot_mode.value
    # The OS identity as Glance's well-known properties, where the user set none of the name.
    for key, value in zip(SHOWN_FROM_OS, (image.os_distribution, os_catalogue.release_of(image))):
        if value is not None and key not in body:
            body[key] = value
    if image.os_family is not None and "os_type" not in body:     # the metadef catalogue's linux | windows
        body["os_type"] = image.os_family.value
    body.update({
        "id": image.id, "name": image.name, "status": image.status.value,
        "visibility": image.visibility.value, "protected": image.protected, "os_hidden": image.os_hidden,
        "checksum": image.checksum, "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value, "size": image.size, "virtual_size": image.virtual_size,
        "min_disk": image.min_disk, "min_ram": image.min_ram, "disk_format": image.disk_format,
        "container_format": image.container_format, "owner": image.owner, "tags": sorted(image.tags),
        "created_at": iso(image.created_at), "updated_at": iso(image.updated_at),
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    })
    return body


TASK_STATUS = {JobStatus.INIT: "pending", JobStatus.RUNNING: "processing",
               JobStatus.SUCCESS: "success", JobStatus.FAIL: "failure"}


def task_to_glance(job: Job) -> dict[str, Any]:
    p = job.payload
    body = {
        "id": job.id, "type": tasks.task_type(job), "status": TASK_STATUS[job.status],
        "owner": job.project_id, "image_id": job.image_id, "request_id": p.get("request_id"),
        "user_id": p.get("user_id"),
        "input": p.get("task_input") or {"image_id": job.image_id, "import_req": p.get("import_req", {}),
                                         "backend": p.get("stores", [])},
        "result": ({"image_id": job.image_id} if job.status == JobStatus.SUCCESS else None),
        "message": job.fail_reason or "",
        "created_at": iso(job.created_at), "updated_at": iso(job.end_time or job.heartbeat_at or job.created_at),
        "expires_at": iso(tasks.expires_at(job)),
        "self": f"/v2/tasks/{job.id}", "schema": "/v2/schemas/task",
    }
    return body


def member_to_glance(member: Member) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member_id, "status": member.status.value,
            "created_at": iso(member.created_at), "updated_at": iso(member.updated_at),
            "schema": "/v2/schemas/member"}


def create_body_to_core(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object")
    attributes, properties = {}, {}
    for key, value in body.items():
        if key in GLANCE_TO_CORE:
            attributes[GLANCE_TO_CORE[key]] = value
        else:
            properties[key] = value
    return attributes, properties


def _decode_pointer(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path.count("/") != 1 or len(path) < 2:
        raise Invalid(f"Invalid JSON pointer '{path}': only single-level paths are allowed")
    return path[1:].replace("~1", "/").replace("~0", "~")


def patch_to_changes(media_type: str, body: Any) -> list[Change]:
    if not isinstance(body, list):
        raise Invalid("A JSON patch must be a list of operations")
    changes = []
    for op in body:
        if not isinstance(op, dict):
            raise Invalid("Each patch operation must be an object")
        if media_type == PATCH_V20:
            names = [k for k in ("add", "remove", "replace") if k in op]
            if len(names) != 1:
                raise Invalid("Each operation needs exactly one of add, remove, replace")
            name, path = names[0], op[names[0]]
        else:
            if op.get("op") not in ("add", "remove", "replace"):
                raise Invalid(f"Unsupported patch operation '{op.get('op')}'")
            name, path = op["op"], op.get("path")
        if name != "remove" and "value" not in op:
            raise Invalid(f"Operation '{name}' needs a value")
        if isinstance(path, str) and (path == "/locations" or path.startswith("/locations/")):
            index = path[len("/locations/"):] if path != "/locations" else None
            if index is not None and "/" in index:
                raise Invalid(f"Invalid JSON pointer '{path}'")
            changes.append(Change(name, "locations", op.get("value"), index=index))
            continue
        key = _decode_pointer(path)
        if key in GLANCE_TO_CORE:
            changes.append(Change(name, GLANCE_TO_CORE[key], op.get("value")))
        elif key in SHOWN_FROM_OS and name == "replace":
            # shown from the OS identity although not set: a client that saw it replaces it, which sets it
            changes.append(Change("add", key, op.get("value"), property=True))
        else:   # everything Glance does not type is an extra property
            changes.append(Change(name, key, op.get("value"), property=True))
    return changes


def _split_in(raw: str) -> list[str]:
    return next(csv.reader([raw], skipinitialspace=True)) if raw else []


def _time_filter(field: str, raw: str) -> TimeFilter:
    op, _, value = raw.partition(":")
    if op not in COMPARE_OPS:
        op, value = "eq", raw
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid time '{value}' for '{field}'") from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return TimeFilter(field, op, when)


_SCOPES = {s.value: s for s in ListScope if s not in (ListScope.DEFAULT, ListScope.MEMBER)}
_SKIP = {"limit", "marker", "sort_key", "sort_dir", "sort", "visibility", "member_status", "tag",
         "size_min", "size_max", "created_at", "updated_at", "os_hidden"}


def list_params_to_query(params: list[tuple[str, str]]) -> ImageQuery:
    multi: dict[str, list[str]] = {}
    for key, value in params:
        multi.setdefault(key, []).append(value)
    one = {k: v[-1] for k, v in multi.items()}
    q = ImageQuery(project_id="")
    if "limit" in one:
        q.page.limit = int_param(one["limit"], "limit")
    q.page.marker = one.get("marker")
    q.sort = _sort(multi)
    if "visibility" in one:
        if one["visibility"] not in _SCOPES:
            raise Invalid(f"Invalid visibility '{one['visibility']}'")
        q.scope = _SCOPES[one["visibility"]]
    q.member_status = one.get("member_status", "accepted")
    q.tags = multi.get("tag", [])
    if "size_min" in one:
        q.size_min = int_param(one["size_min"], "size_min")
    if "size_max" in one:
        q.size_max = int_param(one["size_max"], "size_max")
    q.times = [_time_filter(f, one[f]) for f in ("created_at", "updated_at") if f in one]
    if "os_hidden" in one:
        q.os_hidden = bool_param(one["os_hidden"], "os_hidden")
    for key, raw in one.items():
        if key in _SKIP:
            continue
        if key in ("protected",):
            q.equals[key] = bool_param(raw, key)
        elif key in ("name", "status", "disk_format", "container_format", "id", "owner"):
            if raw.startswith("in:") and key in IN_FILTER_KEYS:
                q.any_of[key] = _split_in(raw[3:])
            else:
                q.equals[key] = raw
        elif key in ("min_disk", "min_ram", "size"):
            q.equals[key] = int_param(raw, key)
        elif key == "architecture":
            q.equals["architecture"] = raw
        elif key == "hw_firmware_type":
            q.equals["boot_mode"] = raw
        else:
            q.properties[key] = raw
    return q


def _sort(multi: dict[str, list[str]]) -> list[tuple[str, str]]:
    keys, dirs = multi.get("sort_key", []), multi.get("sort_dir", [])
    if "sort" in multi:
        if keys or dirs:
            raise Invalid("'sort' cannot be combined with sort_key/sort_dir")
        out = []
        for part in multi["sort"][-1].split(","):
            key, _, direction = part.strip().partition(":")
            out.append((key, direction or "desc"))
        return out
    if not keys:
        if dirs:
            return [("created_at", dirs[-1])]
        return [("created_at", "desc")]
    if len(dirs) > len(keys):
        raise Invalid("More sort_dir than sort_key values")
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    dirs = dirs + ["desc"] * (len(keys) - len(dirs))
    return list(zip(keys, dirs))


def page_links(params: list[tuple[str, str]], page: Page[Image]) -> dict[str, str]:
    rest = [(k, v) for k, v in params if k != "marker"]
    links = {"first": "/v2/images" + (f"?{urlencode(rest)}" if rest else "")}
    if page.more and page.items:
        links["next"] = "/v2/images?" + urlencode(rest + [("marker", page.items[-1].id)])
    return links
