"""Aries vocabulary <-> core vocabulary. Aries names (os_type, image_ref, memory_size...) stop here."""

from __future__ import annotations

import secrets
import string
from typing import Any

from vmimage.core.errors import Invalid
from vmimage.core.images import Image
from vmimage.core.inventory import SYSTEM_DEVICE, Server, ServerStatus, Volume
from vmimage.core.listing import ImageQuery
from vmimage.core.paging import PageRequest
from vmimage.core.services.images import Change
from vmimage.faces.http import int_param
from vmimage.faces.http import iso_time as iso

# Aries image field -> core attribute
IMAGE_FIELDS = {"name": "name", "os_type": "os_family", "os_name": "os_distribution", "description": "description"}
SERVER_STATUS = {ServerStatus.BUILDING: "creating", ServerStatus.RUNNING: "running",
                 ServerStatus.STOPPED: "stopped", ServerStatus.ERROR: "error"}
SYSTEM, DATA = 0, 1          # Aries volume types
_NAME_CHARS = string.ascii_lowercase + string.digits


def positive_int(value: Any, what: str) -> int:
    return int_param(value, what, minimum=1)


def _text(body: dict, key: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"'{key}' must be a non-empty string", field=key)
    return value


# --- images --------------------------------------------------------------------------------

def image(i: Image, *, source_path: bool = True, updated_at: bool = True) -> dict[str, Any]:
    body = {"id": i.seq, "name": i.name, "os_type": i.os_family.value if i.os_family else None,
            "os_name": i.os_distribution, "description": i.description}
    if source_path:
        body["source_path"] = i.source_ref
    body["created_at"] = iso(i.created_at)
    if updated_at:
        body["updated_at"] = iso(i.updated_at)
    body["image_ref"] = i.ref
    return body


def create_image_body(body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(core attributes, source_path). The CLI's extra keys (version, size...) are ignored."""
    attributes = {IMAGE_FIELDS[k]: _text(body, k, required=True) for k in ("name", "os_type", "os_name")}
    attributes["description"] = _text(body, "description", required=False)
    if body.get("uuid") is not None:
        attributes["ref"] = body["uuid"]
    return attributes, body.get("source_path")


def update_image_body(body: dict[str, Any]) -> tuple[int, list[Change]]:
    """(sequence id, changes); source_path cannot change and is ignored."""
    seq = positive_int(body.get("id"), "id")
    changes = []
    for key, core_key in IMAGE_FIELDS.items():
        if body.get(key) is not None:
            _text(body, key, required=key != "description")
            changes.append(Change("replace", core_key, body[key]))
    return seq, changes


def image_query(params: dict[str, str]) -> ImageQuery:
    query = ImageQuery(project_id="", sort=[("created_at", "desc"), ("seq", "desc")],
                       page=PageRequest.everything())
    if params.get("os_type") is not None:
        query.equals["os_family"] = params["os_type"]
    if params.get("os_name"):
        query.contains["os_distribution"] = params["os_name"]
    return query


# --- servers and volumes ---------------------------------------------------------------------

def volume(v: Volume, images: dict[str, Image]) -> dict[str, Any]:
    source = images.get(v.image_id) if v.image_id else None
    return {"id": v.seq, "uuid": v.id, "name": v.name, "type": SYSTEM if v.device == SYSTEM_DEVICE else DATA,
            "size": v.size_gb, "status": v.status.value, "server_ref": v.server_id,
            "image_ref": source.ref if source else None, "save_path": None, "comment": None,
            "created_at": iso(v.created_at)}


def server(s: Server, images: dict[str, Image], status: str | None = None) -> dict[str, Any]:
    source = images.get(s.image_id) if s.image_id else None
    return {"id": s.seq, "uuid": s.id, "name": s.name, "status": status or SERVER_STATUS[s.status],
            "cpu_core_count": s.cpu_count, "memory_size": s.memory_mb,
            "os_type": source.os_family.value if source and source.os_family else None,
            "os_name": source.os_distribution if source else None,
            "os_details": source.description if source else None,
            "private_ip_address": None, "volumes": [volume(d, images) for d in s.disks],
            "adapters": [], "meta_data": {}, "created_at": iso(s.created_at)}


def created_server(s: Server, images: dict[str, Image]) -> dict[str, Any]:
    """The create reply: the string id, and `creating` as the dialect's asynchronous create says."""
    return {**server(s, images, status="creating"), "id": s.id}


def _server_name(name: Any) -> str:
    if name in (None, "", "auto"):   # the dialect's default: a random name starting with "i"
        return "i" + "".join(secrets.choice(_NAME_CHARS) for _ in range(14))
    if not isinstance(name, str):
        raise Invalid("'name' must be a string", field="name")
    return name


def _disk_type(value: Any) -> int:
    if value not in (SYSTEM, DATA) or isinstance(value, bool):
        raise Invalid("'type' must be 0 (system) or 1 (data)", field="type")
    return value


def create_server_body(body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(core server spec without image_id, the system volume's image_ref)."""
    compute = body.get("compute") or {}
    volumes = (body.get("storage") or {}).get("volumes")
    if not isinstance(compute, dict) or not isinstance(volumes, list) or \
            not all(isinstance(v, dict) for v in volumes):
        raise Invalid("'compute' and 'storage.volumes' are required")
    systems = [v for v in volumes if _disk_type(v.get("type")) == SYSTEM]
    if len(systems) != 1:
        raise Invalid("Exactly one system volume (type 0) is required", field="storage.volumes")
    data = [v for v in volumes if v.get("type") == DATA]
    boot = (body.get("option") or {}).get("boot_when_created", True)
    spec = {"name": _server_name(body.get("name")), "cpu_count": compute.get("cpu_core_count"),
            "memory_mb": compute.get("memory_size"),
            "system_disk": {"size_gb": systems[0].get("size"), "category": "local"},
            "data_disks": [{"device": f"vd{chr(ord('b') + i)}", "size_gb": v.get("size"), "category": "local"}
                           for i, v in enumerate(data)],
            "start": boot is not False}
    return spec, systems[0].get("image_ref")


def server_query(params: dict[str, str]) -> tuple[ServerStatus | None, str | None, int, int]:
    """(status, name part, page, page size)."""
    status = None
    if params.get("status"):
        by_name = {v: k for k, v in SERVER_STATUS.items()}
        if params["status"] not in by_name:
            raise Invalid(f"Unknown status '{params['status']}'", field="status")
        status = by_name[params["status"]]
    page = positive_int(params.get("page", 1), "page")
    size = positive_int(params.get("page_size", 10), "page_size")
    return status, params.get("name") or None, page, size


def create_volume_body(body: dict[str, Any]) -> dict[str, Any]:
    _disk_type(body.get("type"))
    return {"name": _text(body, "name", required=False), "size_gb": body.get("size")}
