"""Servers, volumes and snapshots: the compute-side entities images are made from.

A server's disks are volumes: its system disk (device vda) and data disks (vdb, vdc, ...).
A disk's category is `local` (lives with the server, deleted with it) or `cloud` (a block
volume that can be detached, snapshotted and kept).
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from vmimage.core.errors import Busy, Conflict, InUse, Invalid, InvalidTransition, OutOfRange
from vmimage.core.paging import PageRequest


class ServerStatus(enum.StrEnum):
    BUILDING = "building"
    STOPPED = "stopped"
    RUNNING = "running"
    ERROR = "error"
    DELETED = "deleted"


SS = ServerStatus
SERVER_TRANSITIONS: dict[ServerStatus, frozenset[ServerStatus]] = {
    SS.BUILDING: frozenset({SS.STOPPED, SS.RUNNING, SS.ERROR, SS.DELETED}),
    SS.STOPPED: frozenset({SS.RUNNING, SS.ERROR, SS.DELETED}),
    SS.RUNNING: frozenset({SS.STOPPED, SS.ERROR, SS.DELETED}),
    SS.ERROR: frozenset({SS.STOPPED, SS.DELETED}),
    SS.DELETED: frozenset(),
}


class VolumeStatus(enum.StrEnum):
    AVAILABLE = "available"
    IN_USE = "in-use"
    ERROR = "error"
    DELETED = "deleted"


class DiskCategory(enum.StrEnum):
    LOCAL = "local"
    CLOUD = "cloud"


class SnapshotStatus(enum.StrEnum):
    AVAILABLE = "available"
    DELETED = "deleted"


# Volume types and their IOPS rule (per GB, floor and ceiling), after the clouds' tables.
VOLUME_TYPES: dict[str, tuple[int, int, int]] = {
    "ssd.gp1": (50, 1800, 25000),
    "ssd.io1": (50, 1800, 50000),
    "hdd.std1": (0, 500, 500),
}
SYSTEM_DEVICE = "vda"
# Data disk devices, after JD Cloud's [vdb~vdbm]: vdb..vdz, vdaa..vdaz, vdba..vdbm.
_DEVICE = re.compile(r"^vd(?:[b-z]|a[a-z]|b[a-m])$")
DATA_DEVICES = tuple(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz") + tuple(
    f"vd{a}{b}" for a in "ab" for b in "abcdefghijklmnopqrstuvwxyz" if a == "a" or b <= "m")
MAX_DATA_DISKS = 25          # disks a server is created with
MAX_DISK_GB = 16384
MAX_CPU_COUNT = 64
MAX_MEMORY_MB = 1 << 20


# Types whose IOPS the caller provisions: (floor, ceiling, most per GB, default per GB, step).
PROVISIONED_IOPS: dict[str, tuple[int, int, int, int, int]] = {
    "ssd.io1": (200, 32000, 50, 30, 10),
}


def iops_for(volume_type: str, size_gb: int) -> int:
    per_gb, floor, ceiling = VOLUME_TYPES[volume_type]
    return min(max(per_gb * size_gb, floor), ceiling)


def check_iops(volume_type: str, size_gb: int, iops: object = None, default: bool = True) -> int | None:
    """The provisioned IOPS of a disk: only types in PROVISIONED_IOPS take one; other types
    ignore it and get theirs from their size (iops_for). None given: the rule's default, or
    with default=False none (a volume made without one keeps the type's table, iops_for)."""
    rule = PROVISIONED_IOPS.get(volume_type)
    if rule is None:
        return None
    floor, ceiling, most_per_gb, default_per_gb, step = rule
    top = min(ceiling, most_per_gb * size_gb)
    if iops is None:
        return max(floor, min(top, default_per_gb * size_gb) // step * step) if default else None
    if isinstance(iops, bool) or not isinstance(iops, int) or not floor <= iops <= top or iops % step:
        raise OutOfRange(f"IOPS of a {volume_type} disk of {size_gb} GB must be a multiple of {step} "
                         f"from {floor} to {top}", field="iops", value=iops)
    return iops


def check_volume_type(volume_type: str) -> str:
    if not isinstance(volume_type, str) or volume_type not in VOLUME_TYPES:
        raise Invalid(f"Volume type must be one of {', '.join(VOLUME_TYPES)}", field="type", value=volume_type)
    return volume_type


def check_size_gb(size_gb: object, what: str = "size_gb") -> int:
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or not 1 <= size_gb <= MAX_DISK_GB:
        raise OutOfRange(f"'{what}' must be an integer from 1 to {MAX_DISK_GB}", field=what, value=size_gb)
    return size_gb


def check_count(value: object, what: str, ceiling: int) -> int:
    """A positive integer no larger than ceiling (CPU cores, memory in MB)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        raise Invalid(f"'{what}' must be an integer from 1 to {ceiling}", field=what)
    return value


def check_data_device(device: object) -> str:
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise Invalid(f"Invalid data disk device '{device}': expected vdb to vdbm", field="device")
    return device


def device_order(device: str) -> tuple[int, str]:
    """Devices in the order the guest sees them: vdz before vdaa."""
    return len(device), device


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@dataclass
class Volume:
    id: str
    project_id: str
    name: str | None
    size_gb: int
    type: str = "ssd.gp1"
    category: DiskCategory = DiskCategory.CLOUD
    encrypted: bool = False
    status: VolumeStatus = VolumeStatus.AVAILABLE
    server_id: str | None = None
    device: str | None = None
    image_id: str | None = None       # built from this image (system disks)
    snapshot_id: str | None = None    # built from this snapshot
    busy: str | None = None           # a job using the disk right now
    created_at: datetime | None = None
    seq: int | None = None            # a small integer id, given by the repository on add
    provisioned_iops: int | None = None   # types in PROVISIONED_IOPS (check_iops)

    @property
    def iops(self) -> int:
        return self.provisioned_iops or iops_for(self.type, self.size_gb)

    def attach(self, server_id: str, device: str) -> None:
        if self.status != VolumeStatus.AVAILABLE:
            raise Conflict(f"Volume {self.id} is {self.status}, not available", volume_id=self.id)
        self.status, self.server_id, self.device = VolumeStatus.IN_USE, server_id, device

    def detach(self) -> None:
        if self.status != VolumeStatus.IN_USE:
            raise Conflict(f"Volume {self.id} is not attached", volume_id=self.id)
        if self.device == SYSTEM_DEVICE:
            raise Conflict("A system disk cannot be detached", volume_id=self.id)
        self.require_idle()
        self.status, self.server_id, self.device = VolumeStatus.AVAILABLE, None, None

    def require_idle(self) -> None:
        if self.busy:
            raise Busy(f"Volume {self.id} is busy with job {self.busy}", volume_id=self.id, task=self.busy)

    def require_deletable(self) -> None:
        if self.status == VolumeStatus.IN_USE:
            raise InUse(f"Volume {self.id} is in use by server {self.server_id}", volume_id=self.id)
        self.require_idle()


@dataclass
class Snapshot:
    id: str
    project_id: str
    volume_id: str
    size_gb: int
    name: str | None = None
    status: SnapshotStatus = SnapshotStatus.AVAILABLE
    created_at: datetime | None = None


@dataclass
class Server:
    id: str
    project_id: str
    name: str
    image_id: str | None
    status: ServerStatus = ServerStatus.BUILDING
    task: str | None = None            # the job in progress, if any
    memory_mb: int = 128
    disks: list[Volume] = field(default_factory=list)   # system disk first, then by device
    created_at: datetime | None = None
    seq: int | None = None             # a small integer id, given by the repository on add
    cpu_count: int = 1

    def move_to(self, target: ServerStatus) -> None:
        if target not in SERVER_TRANSITIONS[self.status]:
            raise InvalidTransition("server", self.status.value, target.value)
        self.status = target

    def begin_task(self, task: str) -> None:
        """A server runs one task at a time."""
        if self.task:
            raise Busy(f"Server {self.id} is busy with {self.task}", server_id=self.id, task=self.task)
        self.task = task

    @property
    def system_disk(self) -> Volume:
        return next(d for d in self.disks if d.device == SYSTEM_DEVICE)

    @property
    def data_disks(self) -> list[Volume]:
        return sorted((d for d in self.disks if d.device != SYSTEM_DEVICE), key=lambda d: device_order(d.device or ""))

    def disk(self, device: str) -> Volume | None:
        return next((d for d in self.disks if d.device == device), None)

    def disk_by_id(self, volume_id: str) -> Volume | None:
        return next((d for d in self.disks if d.id == volume_id), None)


@dataclass
class ServerQuery:
    """Which live servers a list shows, oldest first (or newest), and which page of them."""
    project_id: str | None = None            # None: every project's (the use case sets it)
    status: ServerStatus | None = None
    name_contains: str | None = None         # a part of the name, in any case
    newest_first: bool = False
    page: PageRequest = field(default_factory=PageRequest.everything)
