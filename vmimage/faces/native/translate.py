"""vmimage's own vocabulary on the wire: entities -> JSON."""

from __future__ import annotations

from typing import Any

from vmimage.core.images import Image
from vmimage.core.inventory import Server, Snapshot, Volume
from vmimage.core.jobs import Job
from vmimage.faces.http import iso_time as _iso


def volume(v: Volume) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "size_gb": v.size_gb, "type": v.type, "iops": v.iops,
            "category": v.category.value, "encrypted": v.encrypted, "status": v.status.value,
            "server_id": v.server_id, "device": v.device, "image_id": v.image_id,
            "snapshot_id": v.snapshot_id, "busy": v.busy is not None, "created_at": _iso(v.created_at)}


def server(s: Server) -> dict[str, Any]:
    system = s.system_disk if s.disks else None
    return {"id": s.id, "name": s.name, "status": s.status.value, "image_id": s.image_id, "task": s.task,
            "memory_mb": s.memory_mb, "system_disk": volume(system) if system else None,
            "data_disks": [volume(d) for d in s.data_disks], "created_at": _iso(s.created_at)}


def snapshot(s: Snapshot) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "volume_id": s.volume_id, "size_gb": s.size_gb,
            "status": s.status.value, "created_at": _iso(s.created_at)}


def job(j: Job) -> dict[str, Any]:
    return {"id": j.id, "kind": j.kind, "status": j.status.value, "progress": j.progress, "attempts": j.attempts,
            "entities": j.entities, "error_code": j.error_code, "fail_reason": j.fail_reason,
            "begin_time": _iso(j.begin_time), "end_time": _iso(j.end_time), "created_at": _iso(j.created_at)}


def image(i: Image) -> dict[str, Any]:
    # Glance and Huawei IMS name an image by its UUID, JD Cloud by its ref ("img-..."), Aries by
    # its small integer.
    return {"id": i.id, "name": i.name, "status": i.status.value, "owner": i.owner,
            "ids": {"glance": i.id, "huawei_ims": i.id, "jdcloud": i.ref, "aries": i.seq}}
