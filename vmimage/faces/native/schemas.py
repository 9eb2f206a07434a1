"""The native API's request bodies as typed models (bounds in faces/bodies.py).

The core still checks what is a rule (sizes, devices, volume types, the image's state); a
model only makes sure every value has the type and bounds it must have before it gets there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from vmimage.faces.bodies import Body, Bool, Ident, Int63, Name, Text

MAX_DATA_DISKS = 25


class SystemDisk(Body):
    size_gb: Int63 | None = None
    category: Name | None = None
    type: Name | None = None


class DataDisk(Body):
    device: Name | None = None
    size_gb: Int63 | None = None
    type: Name | None = None
    category: Name | None = None
    snapshot_id: Ident | None = None
    encrypted: Bool | None = None
    iops: Int63 | None = None          # provisioned IOPS (ssd.io1)


class CreateServer(Body):
    name: Name | None = None
    image_id: Ident | None = None
    system_disk: SystemDisk | None = None
    data_disks: Annotated[list[DataDisk], Field(max_length=MAX_DATA_DISKS)] | None = None
    start: Bool = True
    memory_mb: Int63 | None = None
    cpu_count: Int63 | None = None


class ImageDisk(Body):
    device: Name | None = None
    exclude: Bool | None = None
    size_gb: Int63 | None = None
    snapshot_id: Ident | None = None
    type: Name | None = None
    iops: Int63 | None = None


class CreateServerImage(Body):
    name: Name | None = None
    kind: Name | None = None
    description: Text | None = None
    data_disks: Annotated[list[ImageDisk], Field(max_length=MAX_DATA_DISKS)] | None = None


class CreateVolume(Body):
    name: Name | None = None
    size_gb: Int63 | None = None
    type: Name | None = None
    snapshot_id: Ident | None = None
    encrypted: Bool | None = None
    iops: Int63 | None = None


class AttachVolume(Body):
    server_id: Ident
    device: Name | None = None


class CreateVolumeImage(Body):
    name: Name | None = None
    description: Text | None = None


class CreateSnapshot(Body):
    volume_id: Ident
    name: Name | None = None


class _Closed(Body):
    model_config = ConfigDict(strict=True, extra="forbid")   # unknown fields are refused


class BucketImport(_Closed):
    name: Name | None = None
    bucket: Name | None = None
    key: Text | None = None
    disk_format: Name | None = None
    os_version: Name | None = None
    min_disk: Int63 | None = None
    store: Name | None = None


class BucketExport(_Closed):
    bucket: Name | None = None
    key: Text | None = None
    disk_format: Name | None = None


# --- administration (admins only; unknown fields refused) ---------------------------------------

class CreateProject(_Closed):
    name: Name
    region: Name | None = None       # IMS acts in it; unset: the default region


class SetQuotas(_Closed):
    images: Int63 | None = None      # image count, -1 unlimited
    bytes: Int63 | None = None       # bytes of image data, -1 unlimited


class CreateUser(_Closed):
    name: Name
    password: Text
    project: Name
    role: Name = "member"


class GrantRole(_Closed):
    project: Name
    role: Name


class CreateAccessKey(_Closed):
    user: Name


class GrantBucket(_Closed):
    bucket: Name
    project: Name
