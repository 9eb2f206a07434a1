"""Images from servers and volumes, made by jobs.

Submitting checks everything that can be checked up front (server state, devices, sizes,
snapshots, quota), creates the queued images, marks the server and its disks busy and
queues a job. The job copies each disk — live through the hypervisor when the server runs,
from the file otherwise — streams each copy through the same one-pass pipeline as an upload,
and activates the images. A failure deletes the images it made (or, when the caller asked
to keep them, leaves them `killed` without data) and frees the server.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vmimage.core import os_catalogue
from vmimage.core.errors import (Busy, Conflict, Duplicate, Forbidden, Gone, Invalid, MustBeStopped, NameTaken, NotFound,
                                 OutOfRange)
from vmimage.core.images import (Image, ImageKind, ImageSource, ImageStatus, TagSet, TextRule, Visibility,
                                 check_range, check_ref, inherit_os, new_image_id, validate_property, validate_tag)
from vmimage.core.inventory import (SYSTEM_DEVICE, DiskCategory, ServerStatus, check_data_device, check_iops,
                                    check_size_gb, check_volume_type, device_order, new_id)
from vmimage.core.jobs import Job, JobStatus, new_job_id, new_part
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.log_context import current_request_id
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller, owns, require_owned, require_writer
from vmimage.core.ports import READ_CHUNK, UnitOfWork
from vmimage.core.quotas import check_image_bytes, check_image_count
from vmimage.core.services.deps import Deps
from vmimage.core.services.image_data import begin_saving, receive_data
from vmimage.core.services.images import find_visible, set_os_attribute
from vmimage.core.services.intake import discard_failed
from vmimage.core.services.jobs import advance_part, queue_jobs
from vmimage.core.services.servers import GiB

KIND = "image_from_disks"
MAX_INT = 2 ** 31 - 1


def create_server_image(deps: Deps, caller: Caller, server_id: str, spec: dict[str, Any],
                        names: TextRule | None = None, unique_name: bool = False) -> Job:
    """spec: name, description, kind (system | whole), ref, keep_failed, min_ram and properties (of
    the system or whole image); whole: data_disks by device;
    system: data_volumes [{volume_id, name, description}] also images those attached data
    volumes, one data image each, named as given. names: the rule names keep to (default
    1-255 characters); unique_name: no other live image of the project may have the name."""
    require_writer(caller)
    name = _name(spec, names)
    kind = spec.get("kind", "system")
    if kind not in ("system", "whole"):
        raise Invalid("'kind' must be system or whole", field="kind")
    named = _named_volumes(spec.get("data_volumes"), names) if kind == "system" else []
    with deps.uow(write=True) as uow:
        server = require_owned(caller, uow.inventory.get_server(server_id, for_update=True), "Server", server_id)
        if server.task:     # the server's task first: its disks are busy with it too
            raise Busy(f"Server {server_id} is busy with {server.task}", server_id=server_id, task=server.task)
        running = server.status == ServerStatus.RUNNING
        if running and server.system_disk.category == DiskCategory.LOCAL:
            raise MustBeStopped("A server with a local system disk must be stopped to make an image",
                                server_id=server_id)
        if server.status not in (ServerStatus.RUNNING, ServerStatus.STOPPED):
            raise Busy(f"Server {server_id} is {server.status}", server_id=server_id)
        disks = [{**_disk_plan(server.system_disk, None), "tags": spec.get("tags"),
                  "min_ram": check_range(spec.get("min_ram", 0), 0, MAX_INT, "min_ram"), "properties": _properties(spec.get("properties"))}]
        if kind == "whole":
            disks += _whole_machine_plan(caller, uow, server, spec.get("data_disks") or [],
                                         include_local=spec.get("include_local_data_disks", True) is not False)
        for wanted in named:
            volume = server.disk_by_id(wanted["volume_id"])
            if volume is None or volume.device == server.system_disk.device:
                raise NotFound(f"Volume {wanted['volume_id']} is not a data disk of server {server.id}",
                               volume_id=wanted["volume_id"])
            if running and volume.category == DiskCategory.LOCAL:
                raise MustBeStopped(f"Local disk {volume.device} of a running server cannot be copied",
                                    server_id=server.id)
            disks.append({**_disk_plan(volume, volume.device), "name": wanted["name"],
                          "description": wanted.get("description"), "tags": wanted.get("tags")})
        job = _submit(deps, caller, uow, name, spec.get("description"), disks, kind,
                      _source(spec, server.id, running),
                      busy=[server.system_disk.id] + [d["volume_id"] for d in disks[1:] if d["volume_id"]],
                      unique_name=unique_name)
        server.begin_task(job.id)
        uow.inventory.save_server(server)
        uow.commit()
    deps.submit_job()
    return job


def create_volume_image(deps: Deps, caller: Caller, volume_id: str, spec: dict[str, Any],
                        names: TextRule | None = None, unique_name: bool = False) -> Job:
    """A data-disk image of one volume (attached to a stopped server, or free); with
    image_kind "system" (and an os_version from the catalogue) a system-disk image of it."""
    return create_volumes_image(deps, caller, [{**spec, "volume_id": volume_id}], names, unique_name)


def create_volumes_image(deps: Deps, caller: Caller, specs: list[dict[str, Any]],
                         names: TextRule | None = None, unique_name: bool = False) -> Job:
    """One job making an image of each volume given ({volume_id, name, description,
    image_kind, os_version}); each volume free, or attached to a server that is stopped or
    (for a cloud disk) running, which is then copied live."""
    require_writer(caller)
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise Invalid("At least one volume is required", field="volume_id")
    plans: list[dict[str, Any]] = []
    with deps.uow(write=True) as uow:
        for spec in specs:
            name = _name(spec, names)
            image_kind = spec.get("image_kind", "data")
            if image_kind not in ("data", "system"):
                raise Invalid("'image_kind' must be data or system", field="image_kind")
            os_version = spec.get("os_version")
            if image_kind == "system" or os_version is not None:
                os_version = os_catalogue.require(os_version if isinstance(os_version, str) else "").os_version
            volume_id = spec.get("volume_id")
            if not isinstance(volume_id, str) or any(p["volume_id"] == volume_id for p in plans):
                raise Invalid("Each volume must be given once, by its id", field="volume_id")
            volume = require_owned(caller, uow.inventory.get_volume(volume_id, for_update=True), "Volume", volume_id)
            volume.require_idle()
            server_id = volume.server_id
            running = False
            server = uow.inventory.get_server(server_id) if server_id else None
            if server is not None:
                if server.task:
                    server.begin_task("image")   # raises Busy
                running = server.status == ServerStatus.RUNNING
                if running and volume.category == DiskCategory.LOCAL:
                    raise MustBeStopped("A local disk of a running server cannot be copied", server_id=server_id)
            plans.append({**_disk_plan(volume, volume.device), "os": {"os_version": os_version} if os_version else None,
                          "name": name,
                          "description": spec.get("description"), "server_id": server_id, "running": running,
                          "tags": spec.get("tags"),
                          "kind": ImageKind.SYSTEM_DISK.value if image_kind == "system" else ImageKind.DATA_DISK.value})
        job = _submit(deps, caller, uow, plans[0]["name"], None, plans, "volume",
                      {"server_id": None, "running": False}, busy=[p["volume_id"] for p in plans],
                      unique_name=unique_name)
        uow.commit()
    deps.submit_job()
    return job


def create_snapshots_image(deps: Deps, caller: Caller, spec: dict[str, Any]) -> Job:
    """A whole-machine image from snapshots: spec["disks"] lists {device, snapshot_id,
    size_gb?, type?, iops?}, the system disk (vda) among them."""
    require_writer(caller)
    name = _name(spec)
    specs = spec.get("disks")
    if not isinstance(specs, list) or not all(isinstance(d, dict) for d in specs):
        raise Invalid("'disks' must be a list of objects", field="disks")
    with deps.uow(write=True) as uow:
        plans = {}
        for d in specs:
            device = d.get("device")
            device = SYSTEM_DEVICE if device == SYSTEM_DEVICE else check_data_device(device)
            if device in plans:
                raise Invalid(f"Device '{device}' is given twice", field="device", device=device, duplicate=True)
            if d.get("snapshot_id") is None:
                raise Invalid(f"Disk {device} needs a snapshot", field="snapshot_id", device=device)
            plans[device] = _new_disk_plan(caller, uow, device, d)
        if SYSTEM_DEVICE not in plans:
            raise Invalid("A system disk (vda) is required", field="disks")
        disks = [plans[k] for k in sorted(plans, key=device_order)]
        disks[0]["os"] = spec.get("os")
        job = _submit(deps, caller, uow, name, spec.get("description"), disks, "whole",
                      _source(spec), busy=[])
        uow.commit()
    deps.submit_job()
    return job


def create_image_copy(deps: Deps, caller: Caller, image_id: str, spec: dict[str, Any],
                      target: Caller | None = None, region: str | None = None, cross_region: bool = False,
                      own_only: bool = False, unique_name: bool = False, names: TextRule | None = None) -> Job:
    """A copy of an active image the caller may see (own_only: of the caller's project), with
    the disks of a whole-machine image (parent_id = its id) copied along, by a job.

    The copies are the target's project's (default: the caller's) and live in `region`
    (default: the caller's); cross_region: the region must be another one. Everything is
    checked before anything is made: the region, the source, the name (unique_name: no clash
    in the target project and region), the target project's image count and bytes. The job
    copies the bytes store to store and checks them against the source's hashes; a failure
    leaves no data in the target."""
    return create_image_copies(deps, caller, [(image_id, spec)], target, region, cross_region, own_only,
                               unique_name, names)[0]


def create_image_copies(deps: Deps, caller: Caller, sources: list[tuple[str, dict[str, Any]]],
                        target: Caller | None = None, region: str | None = None, cross_region: bool = False,
                        own_only: bool = False, unique_name: bool = False,
                        names: TextRule | None = None) -> list[Job]:
    """Copies of several images (image id, spec), one job each, as create_image_copy: all
    checked together (quotas counting them all) before any is made, all made or none."""
    require_writer(caller)
    here = deps.region_of(caller.region)
    where = deps.require_region(region) if region is not None else here
    if cross_region and where == here:
        raise Invalid(f"The image is already in region '{where}'", field="region", reason="same_region")
    target = replace(target or caller, region=where)
    require_writer(target)
    jobs = []
    with deps.uow(write=True) as uow:
        limits = deps.limits_for(uow, target.project_id)
        uow.images.lock_project(target.project_id)
        adding = 0
        for image_id, spec in sources:
            source = find_visible(uow, caller, image_id)
            if own_only and not owns(caller, source.owner):
                raise Forbidden("Only the image's project may copy it", image_id=source.id)
            query = ImageQuery(caller.project_id, is_admin=True, scope=ListScope.ALL,
                               equals={"parent_id": source.id}, page=PageRequest.everything())
            images = [source, *sorted(uow.images.list(query), key=lambda i: device_order(i.device or ""))]
            for image in images:
                if image.status != ImageStatus.ACTIVE or not image.locations:
                    raise Conflict(f"Image {source.ref} is {source.status}, not active", image_id=source.ref)
            disks: list[dict[str, Any]] = [
                {"device": i.device or SYSTEM_DEVICE, "volume_id": None, "snapshot_id": None,
                 "source_image_id": i.id, "disk_format": i.disk_format, "size_gb": i.min_disk, "resize_gb": None,
                 "type": i.volume_type, "iops": i.iops} for i in images]
            disks[0]["properties"] = _properties(spec.get("properties"))
            kind = "whole" if len(images) > 1 or source.kind == ImageKind.WHOLE_MACHINE else "copy"
            name = _name({"name": spec.get("name") or source.name}, names)
            # The copies' bytes are not in the project's usage until their jobs fill them: count them all here.
            adding += sum(i.size or 0 for i in images)
            check_image_bytes(limits, lambda: uow.images.usage(target.project_id)[1], adding)
            jobs.append(_submit(deps, target, uow, name,
                                spec.get("description") if spec.get("description") is not None else source.description,
                                disks, kind, {**_source(spec), "copy": "cross_region" if where != here else "in_region"},
                                busy=[], unique_name=unique_name, job_project=caller.project_id))
        uow.commit()
    deps.submit_job()
    return jobs


def _source(spec: dict[str, Any], server_id: str | None = None, running: bool = False) -> dict[str, Any]:
    """What the job keeps of the request besides its disks. keep_failed: a failure leaves
    the images `killed` (no data) rather than deleting them."""
    return {"server_id": server_id, "running": running, "ref": _ref(spec), "keep_failed": spec.get("keep_failed") is True}


def _ref(spec: dict[str, Any]) -> str | None:
    """The whole image's ref when the caller chose one (checked against the others); None:
    the image's own random ref (no lookup, as for generated ids)."""
    return check_ref(spec["ref"]) if spec.get("ref") is not None else None


def _name(spec: dict[str, Any], names: TextRule | None = None) -> str:
    name = spec.get("name")
    if names is not None:
        checked = names.check(name)
        if checked is not None:      # else: a rule that lets a name be missing; a name is required
            return checked
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise Invalid("'name' must be a string of 1 to 255 characters", field="name")
    return name


def _properties(properties: Any) -> dict[str, str]:
    """Extra properties the caller asked the server image to carry."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise Invalid("'properties' must be an object", field="properties")
    return {k: validate_property(k, v) for k, v in properties.items()}


def _tags(tags: Any) -> TagSet:
    if tags is None:
        return TagSet()
    if not isinstance(tags, list):
        raise Invalid("'tags' must be a list", field="tags")
    return TagSet(validate_tag(t) for t in tags)


def _named_volumes(specs: Any, names: TextRule | None) -> list[dict[str, Any]]:
    if specs is None:
        return []
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise Invalid("'data_volumes' must be a list of objects", field="data_volumes")
    seen = set()
    for spec in specs:
        if not isinstance(spec.get("volume_id"), str) or not spec["volume_id"]:
            raise Invalid("Each data volume needs a 'volume_id'", field="volume_id")
        if spec["volume_id"] in seen:
            raise Invalid(f"Volume {spec['volume_id']} is given twice", field="volume_id")
        seen.add(spec["volume_id"])
        _name(spec, names)
    return specs


def _disk_plan(volume, device: str | None) -> dict[str, Any]:
    # A disk goes with its server when it is the system disk or a local disk (delete_server).
    return {"device": device or volume.device, "volume_id": volume.id, "snapshot_id": None,
            "size_gb": volume.size_gb, "resize_gb": None, "type": volume.type, "iops": volume.provisioned_iops,
            "auto_delete": volume.device == SYSTEM_DEVICE or volume.category == DiskCategory.LOCAL}


def _disk_wishes(plan: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """What the caller asks of a disk besides its size: whether it goes with the server
    (auto_delete), and no encryption, which vmimage cannot give (refused, never a plain disk
    in its place)."""
    device = plan["device"]
    encrypted = spec.get("encrypted", False)
    if not isinstance(encrypted, bool):
        raise Invalid(f"Disk {device}: 'encrypted' must be a boolean", field="encrypted", device=device)
    if encrypted:
        raise Invalid(f"Disk {device}: encrypted disks are not supported", field="encrypted", device=device)
    auto_delete = spec.get("auto_delete")
    if auto_delete is not None:
        if not isinstance(auto_delete, bool):
            raise Invalid(f"Disk {device}: 'auto_delete' must be a boolean", field="auto_delete", device=device)
        plan["auto_delete"] = auto_delete
    return plan


def _os_origin(uow: UnitOfWork, volume_id: str | None, snapshot_id: str | None) -> Image | None:
    """The image a disk came from: its volume's, or that of the volume a snapshot was taken
    of, through volumes made from snapshots (a bounded chain)."""
    for _ in range(16):
        if volume_id is None and snapshot_id is not None:
            snapshot = uow.inventory.get_snapshot(snapshot_id)
            volume_id = snapshot.volume_id if snapshot else None
        volume = uow.inventory.get_volume(volume_id) if volume_id else None
        if volume is None:
            return None
        if volume.image_id:
            return uow.images.get(volume.image_id)
        volume_id, snapshot_id = None, volume.snapshot_id
    return None


def _give_os(caller: Caller, image: Image, origin: Image | None, asked: dict[str, Any] | None) -> None:
    """The image's OS identity: its origin's, unless the caller named another operating
    system (which then replaces the inherited one whole), completed from the catalogue."""
    if origin is not None:
        inherit_os(image, origin)
    if asked:
        if any(key in asked and asked[key] != getattr(image, key)
               for key in ("os_version", "os_distribution", "os_release", "os_family")):
            image.os_version = image.os_release = image.os_family = image.os_distribution = None
        for key, value in asked.items():
            set_os_attribute(caller, image, key, value)
    os_catalogue.settle(image)


def _new_disk_plan(caller: Caller, uow: UnitOfWork, device: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An inserted disk: from a snapshot, or empty."""
    snapshot = None
    if spec.get("snapshot_id") is not None:
        if not isinstance(spec["snapshot_id"], str):
            raise Invalid(f"Disk {device}: 'snapshot_id' must be a string", field="snapshot_id")
        snapshot = require_owned(caller, uow.inventory.get_snapshot(spec["snapshot_id"]), "Snapshot", spec["snapshot_id"])
    size = check_size_gb(spec.get("size_gb", snapshot.size_gb if snapshot else None), f"{device}.size_gb")
    if snapshot and size < snapshot.size_gb:
        raise OutOfRange(f"Disk {device} cannot be smaller than its snapshot", field="size_gb", device=device)
    volume_type = check_volume_type(spec.get("type", "ssd.gp1"))
    return _disk_wishes({"device": device, "volume_id": None, "snapshot_id": snapshot.id if snapshot else None,
                         "size_gb": size, "resize_gb": None, "type": volume_type,
                         "iops": check_iops(volume_type, size, spec.get("iops")),
                         "auto_delete": False}, spec)   # a new disk is a cloud disk: it stays


def _whole_machine_plan(caller: Caller, uow: UnitOfWork, server, specs: Any, include_local: bool = True) -> list[dict[str, Any]]:
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise Invalid("'data_disks' must be a list of objects")
    attached = {d.device: d for d in server.data_disks}
    if not include_local:   # local data disks only when named
        named = {s.get("device") for s in specs}
        attached = {k: d for k, d in attached.items() if d.category == DiskCategory.CLOUD or k in named}
    # A device may be named twice only to replace it: excluded once, and given once as a new disk.
    by_device: dict[str, dict] = {}
    excluded: set[str] = set()
    for spec in specs:
        device = check_data_device(spec.get("device"))
        if device in (excluded if spec.get("exclude") else by_device):
            raise Invalid(f"Device '{device}' is given twice", field="device", device=device, duplicate=True)
        if spec.get("exclude"):
            excluded.add(device)
        else:
            by_device[device] = spec
    plans = []
    for device in sorted(set(attached) | excluded | set(by_device), key=device_order):
        spec, volume = by_device.get(device, {}), attached.get(device)
        if device in excluded:
            if volume is None:
                raise NotFound(f"No disk {device} to exclude", device=device)
            if device in by_device:     # replaced: a new disk (empty or from a snapshot) in its place
                plans.append(_new_disk_plan(caller, uow, device, spec))
            continue
        if volume is not None:
            if spec.get("snapshot_id") is not None:
                raise Invalid(f"Device {device} is attached: a new disk needs a free device name", field="device")
            plan = _disk_plan(volume, device)
            if volume.category == DiskCategory.LOCAL and server.status == ServerStatus.RUNNING:
                raise MustBeStopped(f"Local disk {device} of a running server cannot be copied")
            if "size_gb" in spec:
                size = check_size_gb(spec["size_gb"], f"{device}.size_gb")
                if size < volume.size_gb:
                    raise OutOfRange(f"Disk {device} cannot shrink below {volume.size_gb} GB", field="size_gb",
                                     device=device, minimum=volume.size_gb)
                plan["resize_gb"] = size
            plan["iops"] = check_iops(volume.type, plan["resize_gb"] or volume.size_gb,
                                      spec.get("iops", plan["iops"]))
            plans.append(_disk_wishes(plan, spec))
            continue
        plans.append(_new_disk_plan(caller, uow, device, spec))
    return plans


def _submit(deps: Deps, caller: Caller, uow: UnitOfWork, name: str, description: str | None, disks: list[dict],
            kind: str, source: dict, busy: list[str], unique_name: bool = False,
            job_project: str | None = None) -> Job:
    """job_project: whose job it is when not the images' project (a copy asked for another
    project of the caller's user: the asker follows the job)."""
    limits = deps.limits_for(uow, caller.project_id)
    uow.images.lock_project(caller.project_id)
    check_image_count(limits, lambda: uow.images.usage(caller.project_id)[0], adding=len(disks))
    now = deps.clock()
    job = Job(new_job_id(), KIND, job_project or caller.project_id, created_at=now)
    image_ids = []
    parent = None
    for i, disk in enumerate(disks):
        system = kind != "volume" and i == 0
        image_name = disk.get("name") or (name if system or kind == "volume" else f"{name}-{disk['device']}")
        if unique_name and (uow.images.ids_named(image_name, caller.project_id, deps.region_of(caller.region))
                            or image_name in [d.get("image_name") for d in disks[:i]]):
            raise NameTaken(f"An image named '{image_name}' already exists", name=image_name)
        disk["image_name"] = image_name
        image = Image(
            id=new_image_id(), owner=caller.project_id, name=image_name, region=deps.region_of(caller.region),
            visibility=Visibility.PRIVATE, disk_format=disk.get("disk_format") or "qcow2", container_format="bare",
            kind=ImageKind(disk["kind"]) if disk.get("kind") else
            (ImageKind.WHOLE_MACHINE if kind == "whole" else ImageKind.SYSTEM_DISK) if system
            else ImageKind.DATA_DISK,
            source=ImageSource.SNAPSHOT if disk["snapshot_id"] else
            (ImageSource.SERVER if kind != "volume" else ImageSource.VOLUME),
            source_ref=disk["snapshot_id"] or disk["volume_id"] if kind == "volume" else source["server_id"],
            description=disk.get("description", description), min_disk=disk["resize_gb"] or disk["size_gb"],
            created_at=now, updated_at=now, tags=_tags(disk.get("tags")),
            min_ram=disk.get("min_ram", 0), properties=dict(disk.get("properties") or {}),
            parent_id=parent, device=disk["device"] if kind == "whole" else None,
            volume_type=disk["type"], iops=disk.get("iops"), auto_delete=disk.get("auto_delete"))
        _give_os(caller, image, _os_origin(uow, disk["volume_id"], disk["snapshot_id"]), disk.get("os"))
        if system and source.get("ref"):
            image.ref = source["ref"]
            if uow.images.get_by_ref(image.ref) is not None:
                raise Duplicate(f"Image ref {image.ref} is taken", field="ref")
        if kind == "whole" and system:
            parent = image.id
        if disk["snapshot_id"] is None and disk["volume_id"] is None and source["server_id"]:
            image.source = ImageSource.SERVER
        if disk.get("source_image_id"):   # a copy keeps where its source came from
            original = uow.images.get(disk["source_image_id"])
            assert original is not None     # images are never removed
            image.source, image.source_ref = original.source, original.source_ref
            inherit_os(image, original)
            image.auto_delete = original.auto_delete
            if system:
                image.kind = original.kind
        uow.images.add(image)
        disk["image_id"] = image.id
        image_ids.append(image.id)
    for volume_id in busy:
        volume = uow.inventory.get_volume(volume_id, for_update=True)
        if volume is None:
            raise NotFound(f"Volume {volume_id} not found", volume_id=volume_id)
        volume.require_idle()
        volume.busy = job.id
        uow.inventory.save_volume(volume)
    job.payload = {**source, "disks": disks, "busy": busy, "scope": kind, "request_id": current_request_id()}
    job.entities = {"image_ids": image_ids}
    if len(image_ids) > 1:    # one part per image, each with a status (and id) of its own
        parts = [new_part(job, image_id) for image_id in image_ids]
        job.entities["parts"] = [p.id for p in parts]
        for disk, part in zip(disks, parts):
            disk["part_id"] = part.id
    queue_jobs(deps, uow, job, *(parts if len(image_ids) > 1 else []))
    return job


class ImageFromDisks:
    """The job handler: copy each disk, stream the copy into its image, free the server."""

    def run(self, deps: Deps, job: Job, progress) -> dict:
        disks = job.payload["disks"]
        work = Path(deps.disks.work_dir(job.id))
        for i, disk in enumerate(disks):
            if disk.get("part_id"):
                advance_part(deps, job, disk["part_id"], JobStatus.RUNNING)
            if disk.get("source_image_id"):
                self._copy_image(deps, disk)
                if disk.get("part_id"):
                    advance_part(deps, job, disk["part_id"], JobStatus.SUCCESS)
                progress(int((i + 1) * 100 / len(disks)))
                continue
            copy = work / f"{i}-{disk['device']}.qcow2"
            self._copy(deps, job, disk, copy)
            if disk["resize_gb"]:
                deps.disks.grow_file(str(copy), disk["resize_gb"] * GiB)
            image = begin_saving(deps, disk["image_id"])
            with copy.open("rb") as f:
                receive_data(deps, image, iter(lambda: f.read(READ_CHUNK), b""))
            copy.unlink()
            if disk.get("part_id"):
                advance_part(deps, job, disk["part_id"], JobStatus.SUCCESS)
            progress(int((i + 1) * 100 / len(disks)))
        deps.disks.discard_work(job.id)
        self._release(deps, job)
        return {"image_ids": [d["image_id"] for d in disks]}

    @staticmethod
    def _copy_image(deps: Deps, disk: dict) -> None:
        """The source's bytes, store to store (the target image's region's home store), through
        the upload's one pass (hashes, format verdict); bytes that hash otherwise than the
        source's are not kept (the job fails, the copy's data goes)."""
        with deps.uow() as uow:
            source = uow.images.get(disk["source_image_id"])
        if source is None or source.status != ImageStatus.ACTIVE or not source.locations:
            raise Gone("The image being copied went away", image_id=disk["source_image_id"])
        loc = source.locations[0]
        image = begin_saving(deps, disk["image_id"])
        copy = receive_data(deps, image, deps.store(loc.store).read(loc.key, chunk_size=READ_CHUNK))
        if ((source.checksum and copy.checksum != source.checksum)
                or (source.os_hash_value and (copy.os_hash_algo, copy.os_hash_value)
                    != (source.os_hash_algo, source.os_hash_value))):
            raise Conflict(f"The copy of image {source.id} does not hash as its source",
                           image_id=source.id, reason="copy_mismatch")

    def _copy(self, deps: Deps, job: Job, disk: dict, target: Path) -> None:
        if disk["volume_id"] is None:   # an inserted disk: from a snapshot, or empty
            scratch = new_id("tmp")
            try:
                if disk["snapshot_id"]:
                    deps.disks.create_from_snapshot(scratch, disk["snapshot_id"], disk["size_gb"] * GiB)
                else:
                    deps.disks.create_empty(scratch, disk["size_gb"] * GiB)
                deps.disks.export(scratch, str(target))
            finally:
                deps.disks.delete(scratch)
            return
        server_id = disk["server_id"] if "server_id" in disk else job.payload.get("server_id")
        running = disk["running"] if "running" in disk else job.payload.get("running")
        if running and server_id and deps.hypervisor.is_running(server_id):
            live = target.with_suffix(".live")
            live.unlink(missing_ok=True)   # a retried job's leftover
            deps.hypervisor.backup_disk(server_id, disk["device"], str(live))
            deps.disks.compact_file(str(live), str(target))
            live.unlink(missing_ok=True)
        else:
            deps.disks.export(disk["volume_id"], str(target))

    def cleanup(self, deps: Deps, job: Job) -> None:
        deps.disks.discard_work(job.id)
        for disk in job.payload.get("disks", []):
            discard_failed(deps, disk["image_id"], keep_record=job.payload.get("keep_failed", False))
        self._release(deps, job)

    @staticmethod
    def _release(deps: Deps, job: Job) -> None:
        with deps.uow(write=True) as uow:
            for volume_id in job.payload.get("busy", []):
                volume = uow.inventory.get_volume(volume_id, for_update=True)
                if volume is not None and volume.busy == job.id:
                    volume.busy = None
                    uow.inventory.save_volume(volume)
            server_id = job.payload.get("server_id")
            server = uow.inventory.get_server(server_id, for_update=True) if server_id else None
            if server is not None and server.task == job.id:
                server.task = None
                uow.inventory.save_server(server)
            uow.commit()
