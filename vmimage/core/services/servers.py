"""Servers, volumes and snapshots: create, run, attach, snapshot, delete."""

from __future__ import annotations

import math
from typing import Any

from vmimage.core.errors import Conflict, Invalid, InUse, MustBeStopped, NotFound
from vmimage.core.images import ImageStatus, memory_bounds, require_readable
from vmimage.core.inventory import (DATA_DEVICES, MAX_CPU_COUNT, MAX_DATA_DISKS, MAX_MEMORY_MB, SYSTEM_DEVICE,
                                    DiskCategory, Server, ServerQuery, ServerStatus, Snapshot, SnapshotStatus, Volume,
                                    VolumeStatus, check_count, check_data_device, check_iops, check_size_gb,
                                    check_volume_type, new_id)
from vmimage.core.paging import Page
from vmimage.core.policy import Caller, require_owned, require_writer
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible

GiB = 1 << 30


def gb_for(size_bytes: int) -> int:
    return max(1, math.ceil(size_bytes / GiB))


def _scope(caller: Caller) -> str | None:
    return None if caller.is_admin else caller.project_id


def get_server(deps: Deps, caller: Caller, server_id: str, uow: UnitOfWork | None = None) -> Server:
    if uow is not None:
        return require_owned(caller, uow.inventory.get_server(server_id), "Server", server_id)
    with deps.uow() as u:
        return require_owned(caller, u.inventory.get_server(server_id), "Server", server_id)


def list_servers(deps: Deps, caller: Caller, query: ServerQuery | None = None) -> Page[Server]:
    """The servers the query asks for (without one: every one, oldest first)."""
    query = query if query is not None else ServerQuery()
    query.project_id = _scope(caller)
    query.page.validate()
    with deps.uow() as uow:
        return uow.inventory.list_servers(query)


def _data_disk_specs(specs: Any) -> list[dict]:
    if specs is None:
        return []
    if not isinstance(specs, list) or not all(isinstance(d, dict) for d in specs):
        raise Invalid("'data_disks' must be a list of objects")
    if len(specs) > MAX_DATA_DISKS:
        raise Invalid(f"At most {MAX_DATA_DISKS} data disks", field="data_disks")
    seen: set[str] = set()
    for spec in specs:
        device = check_data_device(spec.get("device"))
        if device in seen:
            raise Invalid(f"Device '{device}' is given twice", field="device")
        seen.add(device)
    return specs


def create_server(deps: Deps, caller: Caller, spec: dict[str, Any]) -> Server:
    require_writer(caller)
    name = spec.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise Invalid("'name' must be a string of 1 to 255 characters", field="name")
    system = spec.get("system_disk") or {}
    if not isinstance(system, dict):
        raise Invalid("'system_disk' must be an object")
    category = DiskCategory(_choice(system.get("category", "local"), ("local", "cloud"), "category"))
    disk_specs = _data_disk_specs(spec.get("data_disks"))
    now = deps.clock()
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, str(spec.get("image_id")))
        if not image.locations and image.status not in (ImageStatus.SAVING, ImageStatus.IMPORTING):
            raise Conflict(f"Image {image.ref} has no data to build a disk on", image_id=image.id, no_data=True)
        if image.status != ImageStatus.ACTIVE or not image.locations:
            raise Conflict(f"Image {image.id} is {image.status}, not active", image_id=image.id)
        require_readable(image.disk_format, "build a disk from this image")
        image_gb = max(image.min_disk, gb_for(image.virtual_size or image.size or 1))
        size_gb = check_size_gb(system.get("size_gb", image_gb), "system_disk.size_gb")
        if size_gb < image_gb:
            raise Invalid(f"The system disk must be at least {image_gb} GB for this image", field="size_gb")
        least, most = memory_bounds(image)
        default = max(128, least) if most is None else min(max(128, least), most)
        memory_mb = check_count(spec.get("memory_mb", default), "memory_mb", MAX_MEMORY_MB)
        if memory_mb < least or (most is not None and memory_mb > most):
            raise Invalid(f"This image's servers have {least} to {most or 'any'} MB of memory", field="memory_mb")
        server = Server(new_id("i"), caller.project_id, name, image.id, created_at=now, memory_mb=memory_mb,
                        cpu_count=check_count(spec.get("cpu_count", 1), "cpu_count", MAX_CPU_COUNT))
        system_disk = Volume(new_id("vol"), caller.project_id, f"{name}-system", size_gb,
                             check_volume_type(system.get("type", "ssd.gp1")), category,
                             status=VolumeStatus.IN_USE, server_id=server.id, device=SYSTEM_DEVICE,
                             image_id=image.id, created_at=now)
        server.disks = [system_disk]
        for d in disk_specs:
            snapshot = None
            if d.get("snapshot_id") is not None:
                snapshot = require_owned(caller, uow.inventory.get_snapshot(d["snapshot_id"]), "Snapshot", d["snapshot_id"])
            gb = check_size_gb(d.get("size_gb", snapshot.size_gb if snapshot else None), f"{d['device']}.size_gb")
            if snapshot and gb < snapshot.size_gb:
                raise Invalid(f"Disk {d['device']} is smaller than its snapshot", field="size_gb")
            volume_type = check_volume_type(d.get("type", "ssd.gp1"))
            server.disks.append(Volume(
                new_id("vol"), caller.project_id, f"{name}-{d['device']}", gb, volume_type,
                DiskCategory(_choice(d.get("category", "cloud"), ("local", "cloud"), "category")),
                encrypted=bool(d.get("encrypted", False)), status=VolumeStatus.IN_USE, server_id=server.id,
                device=d["device"], snapshot_id=snapshot.id if snapshot else None, created_at=now,
                provisioned_iops=check_iops(volume_type, gb, d.get("iops"), default=False)))
        image_path = deps.store(image.locations[0].store).local_path(image.locations[0].key)
        uow.inventory.add_server(server)
        for disk in server.disks:
            uow.inventory.add_volume(disk)
        uow.commit()
    try:
        for disk in server.disks:
            _make_disk(deps, disk, image_path, image.disk_format)
        target = ServerStatus.RUNNING if spec.get("start", True) else ServerStatus.STOPPED
        if target == ServerStatus.RUNNING:
            _boot(deps, server)
    except Exception:
        for disk in server.disks:
            deps.disks.delete(disk.id)
        _set_status(deps, server.id, ServerStatus.ERROR)
        raise
    return _set_status(deps, server.id, target)


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise Invalid(f"'{field}' must be one of {', '.join(allowed)}", field=field)
    return value


def _make_disk(deps: Deps, disk: Volume, image_path: str | None, image_format: str | None) -> None:
    size = disk.size_gb * GiB
    if disk.image_id:
        if image_path is None:
            raise Conflict("The image's store keeps no local file to build a disk on")
        if image_format is None:     # active images have one
            raise Conflict("The image has no disk format to build a disk on")
        deps.disks.create_from_image(disk.id, image_path, image_format, size)
    elif disk.snapshot_id:
        deps.disks.create_from_snapshot(disk.id, disk.snapshot_id, size)
    else:
        deps.disks.create_empty(disk.id, size)


def _boot(deps: Deps, server: Server) -> None:
    disks = []
    for d in [server.system_disk, *server.data_disks]:
        assert d.device is not None      # a server's disks are attached at a device
        disks.append((d.device, deps.disks.path(d.id)))
    deps.hypervisor.start(server.id, disks, server.memory_mb)


def _locked_server(uow: UnitOfWork, server_id: str) -> Server:
    """The server, locked for this transaction; NotFound when it was deleted meanwhile."""
    server = uow.inventory.get_server(server_id, for_update=True)
    if server is None:
        raise NotFound(f"Server {server_id} not found", id=server_id, server_id=server_id)
    return server


def _set_status(deps: Deps, server_id: str, status: ServerStatus) -> Server:
    with deps.uow(write=True) as uow:
        server = _locked_server(uow, server_id)
        server.move_to(status)
        uow.inventory.save_server(server)
        uow.commit()
    return server


def server_action(deps: Deps, caller: Caller, server_id: str, action: str) -> Server:
    require_writer(caller)
    server = get_server(deps, caller, server_id)
    if server.task:
        server.begin_task(action)   # raises Busy
    if action == "start":
        if server.status == ServerStatus.RUNNING and deps.hypervisor.is_running(server.id):
            return server
        if server.status not in (ServerStatus.STOPPED, ServerStatus.RUNNING):
            raise Conflict(f"Server is {server.status}", server_id=server_id)
        _boot(deps, server)
        if server.status != ServerStatus.RUNNING:
            server = _set_status(deps, server_id, ServerStatus.RUNNING)
        return server
    if action == "stop":
        deps.hypervisor.stop(server.id)
        return server if server.status == ServerStatus.STOPPED else _set_status(deps, server_id, ServerStatus.STOPPED)
    if action == "reboot":
        if server.status != ServerStatus.RUNNING:
            raise Conflict("Only a running server can be rebooted", server_id=server_id)
        deps.hypervisor.reboot(server.id)
        return server
    raise Invalid(f"Unknown action '{action}'")


def delete_server(deps: Deps, caller: Caller, server_id: str) -> None:
    """Stops the server; deletes its system disk and local disks; cloud data disks stay."""
    require_writer(caller)
    with deps.uow(write=True) as uow:
        server = get_server(deps, caller, server_id, uow)
        if server.task:
            server.begin_task("delete")
    deps.hypervisor.stop(server.id)
    with deps.uow(write=True) as uow:
        server = _locked_server(uow, server_id)
        gone = []
        for disk in server.disks:
            if disk.device == SYSTEM_DEVICE or disk.category == DiskCategory.LOCAL:
                disk.status = VolumeStatus.DELETED
                gone.append(disk.id)
            else:
                disk.status, disk.server_id, disk.device = VolumeStatus.AVAILABLE, None, None
            uow.inventory.save_volume(disk)
        server.move_to(ServerStatus.DELETED)
        uow.inventory.save_server(server)
        uow.commit()
    for volume_id in gone:
        deps.disks.delete(volume_id)


# --- volumes ------------------------------------------------------------------------------

def get_volume(deps: Deps, caller: Caller, volume_id: str) -> Volume:
    with deps.uow() as uow:
        return require_owned(caller, uow.inventory.get_volume(volume_id), "Volume", volume_id)


def list_volumes(deps: Deps, caller: Caller) -> list[Volume]:
    with deps.uow() as uow:
        return uow.inventory.list_volumes(_scope(caller))


def create_volume(deps: Deps, caller: Caller, spec: dict[str, Any]) -> Volume:
    require_writer(caller)
    with deps.uow() as uow:
        snapshot = None
        if spec.get("snapshot_id") is not None:
            snapshot = require_owned(caller, uow.inventory.get_snapshot(spec["snapshot_id"]), "Snapshot", spec["snapshot_id"])
    size_gb = check_size_gb(spec.get("size_gb", snapshot.size_gb if snapshot else None))
    if snapshot and size_gb < snapshot.size_gb:
        raise Invalid("A volume cannot be smaller than its snapshot", field="size_gb")
    volume_type = check_volume_type(spec.get("type", "ssd.gp1"))
    volume = Volume(new_id("vol"), caller.project_id, spec.get("name"), size_gb, volume_type, DiskCategory.CLOUD,
                    encrypted=bool(spec.get("encrypted", False)),
                    snapshot_id=snapshot.id if snapshot else None, created_at=deps.clock(),
                    provisioned_iops=check_iops(volume_type, size_gb, spec.get("iops"), default=False))
    _make_disk(deps, volume, None, None)
    try:
        with deps.uow(write=True) as uow:
            uow.inventory.add_volume(volume)
            uow.commit()
    except Exception:
        deps.disks.delete(volume.id)
        raise
    return volume


def attach_volume(deps: Deps, caller: Caller, volume_id: str, server_id: str, device: str | None) -> Volume:
    require_writer(caller)
    with deps.uow(write=True) as uow:
        volume = require_owned(caller, uow.inventory.get_volume(volume_id, for_update=True), "Volume", volume_id)
        server = require_owned(caller, uow.inventory.get_server(server_id, for_update=True), "Server", server_id)
        if server.status != ServerStatus.STOPPED:
            raise MustBeStopped("Disks are attached to stopped servers", server_id=server_id)
        if server.task:
            server.begin_task("attach")
        used = {d.device for d in server.disks}
        if device is None:
            device = next((d for d in DATA_DEVICES if d not in used), None)
            if device is None:
                raise Conflict(f"Server {server_id} has no free device", server_id=server_id)
        if check_data_device(device) in used:
            raise Conflict(f"Device {device} is already in use on server {server_id}", field="device")
        volume.attach(server.id, device)
        uow.inventory.save_volume(volume)
        uow.commit()
    return volume


def detach_volume(deps: Deps, caller: Caller, volume_id: str) -> Volume:
    require_writer(caller)
    with deps.uow(write=True) as uow:
        volume = require_owned(caller, uow.inventory.get_volume(volume_id, for_update=True), "Volume", volume_id)
        if volume.server_id:
            server = uow.inventory.get_server(volume.server_id)
            if server is not None and server.status != ServerStatus.STOPPED:
                raise MustBeStopped("Disks are detached from stopped servers", server_id=server.id)
        volume.detach()
        uow.inventory.save_volume(volume)
        uow.commit()
    return volume


def delete_volume(deps: Deps, caller: Caller, volume_id: str) -> None:
    require_writer(caller)
    with deps.uow(write=True) as uow:
        volume = require_owned(caller, uow.inventory.get_volume(volume_id, for_update=True), "Volume", volume_id)
        volume.require_deletable()
        volume.status = VolumeStatus.DELETED
        uow.inventory.save_volume(volume)
        uow.commit()
    deps.disks.delete(volume_id)


# --- snapshots ----------------------------------------------------------------------------

def get_snapshot(deps: Deps, caller: Caller, snapshot_id: str) -> Snapshot:
    with deps.uow() as uow:
        return require_owned(caller, uow.inventory.get_snapshot(snapshot_id), "Snapshot", snapshot_id)


def list_snapshots(deps: Deps, caller: Caller) -> list[Snapshot]:
    with deps.uow() as uow:
        return uow.inventory.list_snapshots(_scope(caller))


def create_snapshot(deps: Deps, caller: Caller, volume_id: str, name: str | None) -> Snapshot:
    """A point-in-time copy: of the file when nobody writes, live through QEMU otherwise."""
    require_writer(caller)
    snapshot_id = new_id("snap")
    with deps.uow(write=True) as uow:
        volume = require_owned(caller, uow.inventory.get_volume(volume_id, for_update=True), "Volume", volume_id)
        volume.require_idle()
        server = uow.inventory.get_server(volume.server_id) if volume.server_id else None
        volume.busy = snapshot_id
        uow.inventory.save_volume(volume)
        uow.commit()
    try:
        if server is not None and deps.hypervisor.is_running(server.id):
            work = deps.disks.work_dir(snapshot_id)
            copy = f"{work}/live.qcow2"
            assert volume.device is not None     # attached to the server
            deps.hypervisor.backup_disk(server.id, volume.device, copy)
            deps.disks.adopt_snapshot(snapshot_id, copy)
        else:
            deps.disks.snapshot(volume_id, snapshot_id)
        snapshot = Snapshot(snapshot_id, volume.project_id, volume_id, volume.size_gb, name, created_at=deps.clock())
        with deps.uow(write=True) as uow:
            uow.inventory.add_snapshot(snapshot)
            uow.commit()
    except Exception:
        deps.disks.delete_snapshot(snapshot_id)
        raise
    finally:
        deps.disks.discard_work(snapshot_id)
        _release_volume(deps, volume_id, snapshot_id)
    return snapshot


def _release_volume(deps: Deps, volume_id: str, task: str) -> None:
    with deps.uow(write=True) as uow:
        volume = uow.inventory.get_volume(volume_id, for_update=True)
        if volume is not None and volume.busy == task:
            volume.busy = None
            uow.inventory.save_volume(volume)
            uow.commit()


def delete_snapshot(deps: Deps, caller: Caller, snapshot_id: str) -> None:
    require_writer(caller)
    with deps.uow(write=True) as uow:
        snapshot = require_owned(caller, uow.inventory.get_snapshot(snapshot_id), "Snapshot", snapshot_id)
        if uow.inventory.snapshot_in_use(snapshot_id):
            raise InUse(f"Snapshot {snapshot_id} backs a volume", snapshot_id=snapshot_id)
        snapshot.status = SnapshotStatus.DELETED
        uow.inventory.save_snapshot(snapshot)
        uow.commit()
    deps.disks.delete_snapshot(snapshot_id)


def stop_all_servers(deps: Deps) -> list[str]:
    """Stops every guest of this data directory, as an operator does before retiring it (guests
    outlive `vmimage serve` by design): each QEMU is stopped, a running server is recorded as
    stopped, and a process no server owns is stopped too. Returns the ids whose QEMU was stopped
    or whose record said running."""
    alive = set(deps.hypervisor.running())
    with deps.uow() as uow:
        servers = list(uow.inventory.list_servers(ServerQuery()))
    stopped = []
    for server in servers:
        if server.id not in alive and server.status != ServerStatus.RUNNING:
            continue
        deps.hypervisor.stop(server.id)
        _record_stopped(deps, server.id)
        stopped.append(server.id)
    orphans = sorted(alive - {s.id for s in servers})
    for orphan in orphans:
        deps.hypervisor.stop(orphan)
    return stopped + orphans


def _record_stopped(deps: Deps, server_id: str) -> None:
    """RUNNING becomes STOPPED; a server building, in error or deleted meanwhile keeps its status."""
    with deps.uow(write=True) as uow:
        server = uow.inventory.get_server(server_id, for_update=True)
        if server is not None and server.status == ServerStatus.RUNNING:
            server.move_to(ServerStatus.STOPPED)
            uow.inventory.save_server(server)
            uow.commit()


def reconcile_servers(deps: Deps) -> None:
    """After a restart: re-attach to QEMU processes that still run, fix what the records say
    about those that do not, and stop processes no live server owns."""
    alive = set(deps.hypervisor.running())
    with deps.uow(write=True) as uow:
        known = set()
        for server in uow.inventory.list_servers(ServerQuery()):
            known.add(server.id)
            running = server.id in alive
            if server.status == ServerStatus.BUILDING:
                server.move_to(ServerStatus.ERROR)
            elif server.status == ServerStatus.RUNNING and not running:
                server.move_to(ServerStatus.STOPPED)
            elif server.status == ServerStatus.STOPPED and running:
                server.move_to(ServerStatus.RUNNING)
            else:
                continue
            uow.inventory.save_server(server)
        uow.commit()
    for orphan in alive - known:
        deps.hypervisor.stop(orphan)
