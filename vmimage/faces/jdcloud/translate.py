"""JD Cloud names <-> core names: request bodies in, Image objects out (reference §6, §7)."""

from __future__ import annotations

import re
from urllib.parse import unquote
from typing import Any

from vmimage.core import os_catalogue
from vmimage.core.errors import Invalid, OutOfRange
from vmimage.core.images import (DEFAULT_ARCHITECTURE, DEFAULT_BOOT_MODE, Image, ImageRelation, ImageSource,
                                 ImageStatus, Visibility, relation)
from vmimage.core.inventory import SYSTEM_DEVICE
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services.machine_images import MachineImage, machine_progress, machine_status
from vmimage.faces.http import iso_time

_NAME = re.compile(r"^[\w\-.\u4e00-\u9fff]{2,32}$", re.ASCII)
_STATUS = {ImageStatus.ACTIVE: "ready", ImageStatus.KILLED: "error", ImageStatus.PENDING_DELETE: "deleting",
           ImageStatus.DEACTIVATED: "deactivated"}
_PENDING = "pending"        # every other status
# Core platforms JD names otherwise (core/os_catalogue.py platform_of).
_PLATFORM_NAMES = {"Windows": "Windows Server"}
_IMAGE_SOURCES = {ImageRelation.OWN: "private", ImageRelation.SHARED: "shared", ImageRelation.PUBLIC: "public",
                  ImageRelation.COMMUNITY: "community"}
_LAUNCH_PERMISSIONS = {Visibility.PRIVATE: "ownerOnly", Visibility.SHARED: "specifiedUsers",
                       Visibility.PUBLIC: "all", Visibility.COMMUNITY: "all"}
ROOT_DEVICE_TYPE = "cloudDisk"
SOURCES = ("public", "thirdparty", "private", "shared", "community")


def clean(value: Any) -> Any:
    """The SDK sends every unset optional as null: nulls are absent. Keys are matched with
    their first letter in lower case (the docs write `CloudDiskSpec`, the SDK `cloudDiskSpec`)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise Invalid(f"Parameter {what} must be 2 to 32 characters: CJK, letters, digits, '_', '-' or '.'",
                      field=what)
    return value


def description(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise Invalid("Parameter description must be at most 256 characters", field="description")
    return value


def data_disks(items: Any) -> list[dict[str, Any]]:
    """createImage's dataDisks as the core's whole-machine plan entries."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise Invalid("Parameter dataDisks must be a list of objects", field="dataDisks")
    out = []
    for d in items:
        if d.get("deviceName") == SYSTEM_DEVICE:    # the page: for the system disk, ignored
            continue
        entry: dict[str, Any] = {"device": d.get("deviceName")}
        if d.get("noDevice") is True:
            entry["exclude"] = True
            out.append(entry)
            continue
        if d.get("diskCategory", "cloud") != "cloud":
            raise Invalid("Parameter dataDisks.diskCategory must be cloud: data disks are cloud disks only",
                          field="diskCategory")
        if "autoDelete" in d:
            entry["auto_delete"] = d["autoDelete"]
        spec = d.get("cloudDiskSpec") or {}
        if not isinstance(spec, dict):
            raise Invalid("Parameter dataDisks.cloudDiskSpec must be an object", field="cloudDiskSpec")
        for jd_key, key in (("diskSizeGB", "size_gb"), ("iops", "iops"), ("snapshotId", "snapshot_id"),
                            ("encrypt", "encrypted")):
            if jd_key in spec:
                entry[key] = spec[jd_key]
        if "size_gb" in entry:
            disk_size_gb(entry["size_gb"], system=False)
        if "diskType" in spec or "snapshotId" not in spec:
            entry["type"] = spec.get("diskType")   # a new empty disk must name its type
        out.append(entry)
    return out


def snapshot_disks(items: Any) -> list[dict[str, Any]]:
    """createImageFromSnapshots' cloudDisks (CloudDiskSpec) as core disk entries."""
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items) or not items:
        raise Invalid("Parameter cloudDisks must be a non-empty list of objects", field="cloudDisks")
    out = []
    for d in items:
        entry = {"device": d.get("deviceName"), "snapshot_id": d.get("snapshotId")}
        for jd_key, key in (("diskSizeGB", "size_gb"), ("diskType", "type"), ("iops", "iops")):
            if jd_key in d:
                entry[key] = d[jd_key]
        if "size_gb" in entry:
            disk_size_gb(entry["size_gb"], system=entry["device"] == "vda")
        out.append(entry)
    return out


def status(image: Image | MachineImage) -> str:
    s = machine_status(image) if isinstance(image, MachineImage) else image.status
    return _STATUS.get(s, _PENDING)


def platform(image: Image) -> str:
    core = os_catalogue.platform_of(image)
    return _PLATFORM_NAMES.get(core, core)


def image_source(image: Image, caller: Caller) -> str:
    return _IMAGE_SOURCES[relation(image, caller.project_id)]


def _gb(image: Image) -> int:
    return image.min_disk or -(-(image.virtual_size or image.size or 0) // (1 << 30))


def _disk(image: Image) -> dict[str, Any]:
    # Unset (an image made before it was kept): as delete_server does, the system disk goes with its server.
    auto_delete = image.auto_delete if image.auto_delete is not None else image.device is None
    return {"diskCategory": "cloud", "autoDelete": auto_delete, "deviceName": image.device, "status": "attached",
            "localDisk": None,
            "cloudDisk": {"diskId": None, "diskName": image.name, "diskType": image.volume_type,
                          "diskSizeGB": _gb(image), "iops": image.iops, "snapshotId": image.ref,
                          "status": status(image), "encrypted": False}}


# vmimage charges nothing: no image has a charge configuration.
NO_CHARGE = {"serviceCode": None, "formula": None}


def image(machine: MachineImage, caller: Caller, login_names: dict[str, str]) -> dict[str, Any]:
    """login_names: project id -> name (JD's loginName is the owner's account, here its project)."""
    i = machine.image
    size = sum(d.size or 0 for d in machine.all)
    return {
        "imageId": i.ref, "name": i.name, "platform": platform(i), "osVersion": os_catalogue.release_of(i),
        "architecture": i.architecture or DEFAULT_ARCHITECTURE, "systemDiskSizeGB": _gb(i),
        "imageSource": image_source(i, caller), "osType": i.os_family.value if i.os_family else "linux",
        "status": status(machine), "createTime": iso_time(i.created_at), "sizeMB": size >> 20,
        "desc": i.description, "ownerPin": i.owner, "loginName": login_names.get(i.owner),
        "launchPermission": _LAUNCH_PERMISSIONS[i.visibility],
        "systemDisk": {**_disk(i), "deviceName": "vda"}, "dataDisks": [_disk(d) for d in machine.disks],
        "snapshotId": None, "rootDeviceType": ROOT_DEVICE_TYPE, "progress": machine_progress(machine),
        "offline": False, "serviceCode": None, "imported": i.source in (ImageSource.OBJECT, ImageSource.FILE),
        "expiredTime": None, "instanceId": i.source_ref if i.source == ImageSource.SERVER else None,
        "bootMode": (i.boot_mode or DEFAULT_BOOT_MODE).value, "chargeInfo": NO_CHARGE,
    }


def indexed(pairs: list[tuple[str, str]], prefix: str) -> list[str]:
    """`ids.1=a&ids.2=b` -> [a, b] in index order."""
    found = []
    for key, value in pairs:
        head, _, index = key.partition(".")
        if head == prefix and index.isdigit():
            found.append((int(index), value))
    return [v for _, v in sorted(found)]


def filters(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """`filters.1.name=n&filters.1.values.1=v` -> {n: [v, ...]}."""
    names: dict[str, str] = {}
    values: dict[str, list[tuple[int, str]]] = {}
    for key, value in pairs:
        parts = key.split(".")
        if parts[0] != "filters" or len(parts) < 3 or not parts[1].isdigit():
            continue
        if parts[2] == "name":
            names[parts[1]] = value
        elif parts[2] == "values" and len(parts) == 4 and parts[3].isdigit():
            values.setdefault(parts[1], []).append((int(parts[3]), value))
    return {names[k]: [v for _, v in sorted(values.get(k, []))] for k in names}


# describeImages' imageSource: where the list starts, and only the caller's own images or only others'.
_SCOPES = {"private": (ListScope.ALL, True), "shared": (ListScope.SHARED, False),
           "public": (ListScope.PUBLIC, None), "community": (ListScope.COMMUNITY, None)}


def _core_platform(value: str) -> str | None:
    """The core platform JD shows as `value`; None when no image shows it."""
    for core, shown in _PLATFORM_NAMES.items():
        if value == shown:
            return core
    return None if value in _PLATFORM_NAMES else value


def images_query(params: dict[str, str], ids: list[str] | None, instance_ids: list[str],
                 page: PageRequest) -> ImageQuery | None:
    """describeImages' filters as a core query (None: no image can match them). Each filter
    matches an image whose Image object shows that value."""
    source = params.get("imageSource")
    if source == "thirdparty":
        return None
    scope, owned = _SCOPES.get(source or "", (ListScope.ALL, None))
    query = ImageQuery(project_id="", scope=scope, owned=owned, page=page)
    if ids is not None:
        query.any_of["ref"] = ids
    if params.get("imageName"):
        query.contains["name"] = params["imageName"]
    if "platform" in params:
        query.platform = _core_platform(params["platform"])
        if query.platform is None:
            return None
    if "status" in params:
        wanted = params["status"]
        query.machine_statuses = ([s for s in ImageStatus if s not in _STATUS] if wanted == _PENDING else
                                  [s for s, shown in _STATUS.items() if shown == wanted])
        if not query.machine_statuses:
            return None
    if "architecture" in params:
        query.architecture = params["architecture"]
    if "bootMode" in params:
        query.boot_mode = params["bootMode"]
    if "rootDeviceType" in params and params["rootDeviceType"] != ROOT_DEVICE_TYPE:
        return None
    if "launchPermission" in params:
        visibilities = [v.value for v, shown in _LAUNCH_PERMISSIONS.items() if shown == params["launchPermission"]]
        if not visibilities:
            return None
        query.any_of["visibility"] = visibilities
    if instance_ids:
        query.equals["source"] = ImageSource.SERVER.value
        query.any_of["source_ref"] = instance_ids
    return query


IMPORT_FORMATS = ("qcow2", "vhd", "vmdk", "raw")
# JD's platforms (the SDK's Image model); a named one is the image's os_distribution
# (core/os_catalogue.py DISTRIBUTION_PLATFORMS), the Other ones a family only.
_DISTRIBUTIONS = {_PLATFORM_NAMES.get(p, p): d for d, p in os_catalogue.DISTRIBUTION_PLATFORMS.items()}
PLATFORMS = ("Ubuntu", "CentOS", "Windows Server", "Other Linux", "Other Windows")


def choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise Invalid(f"Parameter {what} must be one of {', '.join(allowed)}", field=what)
    return value


def _split_object_url(url: Any, what: str) -> tuple[str, str]:
    """`s3://bucket/key` or path-style `http(s)://endpoint/bucket/key` -> (bucket, key)."""
    if not isinstance(url, str):
        raise Invalid(f"Parameter {what} is required", field=what)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("s3", "http", "https"):
        raise Invalid(f"Parameter {what} must be s3://bucket/... or http://<object storage>/bucket/...", field=what)
    if scheme.lower() != "s3":
        rest = rest.partition("/")[2]        # drop the endpoint: path-style addressing
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise Invalid(f"Parameter {what} names no bucket", field=what)
    return bucket, unquote(key)


def object_url(url: Any) -> tuple[str, str]:
    bucket, key = _split_object_url(url, "imageUrl")
    if not key:
        raise Invalid("Parameter imageUrl names no object", field="imageUrl")
    return bucket, key


def bucket_url(url: Any) -> str:
    return _split_object_url(url, "ossUrl")[0]


def disk_size_gb(value: Any, system: bool) -> int:
    """JD's disk sizes: steps of 10 GB, 40-500 for a system disk, 20-16000 for a data disk."""
    low, high = (40, 500) if system else (20, 16000)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or value % 10:
        raise OutOfRange("DataDisks.CloudDiskSpec.DiskSizeGB out of range", field="size_gb", value=value)
    return value


def system_disk_gb(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 40 <= value <= 500 or value % 10:
        raise Invalid("Parameter systemDiskSizeGB must be 40 to 500, a multiple of 10", field="systemDiskSizeGB")
    return value


def os_attributes(b: dict[str, Any], os_type: str | None) -> dict[str, Any]:
    """platform, osVersion (the distribution's version as JD writes it, kept as given),
    architecture and bootMode as core attributes; os_type: the osType given, else the
    platform's. The core finds the catalogue entry a platform and version name."""
    platform_name = choice(b.get("platform"), PLATFORMS, "platform")
    out: dict[str, Any] = {"architecture": choice(b.get("architecture"), ("x86_64", "arm64"), "architecture"),
                           "os_family": os_type or ("windows" if "Windows" in platform_name else "linux")}
    out["os_distribution"] = _DISTRIBUTIONS.get(platform_name)     # None: an Other platform
    if b.get("osVersion") is not None:
        out["os_release"] = b["osVersion"]
    if b.get("bootMode") is not None:
        out["boot_mode"] = choice(b.get("bootMode"), ("bios", "uefi"), "bootMode")
    return out


def import_attributes(b: dict[str, Any]) -> dict[str, Any]:
    """The Image attributes importImage sets, in the core's names."""
    out = os_attributes(b, choice(b.get("osType"), ("windows", "linux"), "osType"))
    if b.get("description") is not None:
        out["description"] = description(b["description"])
    return out
