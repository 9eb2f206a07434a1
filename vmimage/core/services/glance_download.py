"""glance-download: fill a queued image from an image of the Glance endpoint of a region in
the catalog, as Glance's own import method does (the job part runs in import_job.py).

Every image endpoint the catalog lists is served by this core, so "the remote Glance" of a
region is the core itself, read with the rights of the caller who asked (Glance sends the
caller's token to the remote endpoint): the source must be visible to the caller and active.
Its data is staged and verified against the source's size, checksum and hash before the
usual import pass writes it to the target stores; its disk and container formats and the
properties named by the copy prefixes come along when the image turns active, so a failure
leaves the image as it was (queued, its own properties untouched).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from typing import Any

from vmimage.core.errors import Conflict, Invalid, NotFound
from vmimage.core.images import Image, ImageStatus
from vmimage.core.policy import Caller
from vmimage.core.ports import BlobStore
from vmimage.core.quotas import Limits, check_declared_size, check_size_cap
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible

# The catalog's interfaces of an endpoint.
INTERFACES = ("public", "internal", "admin")
# Glance's default [glance_download_properties] extra_properties: the prefixes of the source's
# properties copied to the target (what an instance needs to boot the image).
COPIED_PREFIXES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
_RESERVED = "os_glance"


@dataclass(frozen=True)
class RemoteSource:
    image_id: str
    region: str
    interface: str = "public"

    def to_payload(self) -> dict[str, str]:
        return {"image_id": self.image_id, "region": self.region, "interface": self.interface}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> "RemoteSource":
        return cls(data["image_id"], data["region"], data["interface"])


def remote_source(image_id: Any, region: Any, interface: Any) -> RemoteSource:
    """The request's checks, at the call (Glance answers 400 for these before any task)."""
    if region is None or region == "":
        raise Invalid("'glance_region' needs to be set for glance-download import method")
    if image_id is None or image_id == "":
        raise Invalid("'glance_image_id' needs to be set for glance-download import method")
    if not isinstance(region, str) or not isinstance(image_id, str):
        raise Invalid("'glance_region' and 'glance_image_id' must be strings")
    try:
        uuid.UUID(image_id)
    except ValueError:
        raise Invalid(f"Remote image id does not look like a UUID: {image_id}") from None
    if interface is None:
        interface = "public"
    if not isinstance(interface, str):
        raise Invalid("'glance_service_interface' must be a string")
    return RemoteSource(image_id, region, interface)


def caller_payload(caller: Caller) -> dict[str, Any]:
    return {"user_id": caller.user_id, "project_id": caller.project_id, "roles": sorted(caller.roles)}


def caller_from_payload(data: dict[str, Any]) -> Caller:
    return Caller(data["user_id"], data["project_id"], frozenset(data["roles"]))


def find_source(deps: Deps, caller: Caller, source: RemoteSource) -> Image:
    """The source image through the catalog's endpoint of its region and interface (in the job:
    an unknown region or interface, a missing or inactive image fail the task)."""
    if source.region not in deps.regions:
        raise NotFound(f"The catalog has no image endpoint in region '{source.region}'", region=source.region)
    if source.interface not in INTERFACES:
        raise NotFound(f"The catalog has no '{source.interface}' image endpoint in region '{source.region}'",
                       region=source.region)
    with deps.uow() as uow:
        # Read as through that region's endpoint: the source is one of its images.
        image = find_visible(uow, replace(caller, region=source.region), source.image_id)
    if image.status != ImageStatus.ACTIVE:
        raise Conflict(f"Source image status should be active instead of {image.status}", image_id=image.id)
    if not image.locations or not image.os_hash_value:
        raise Conflict("Source image has no data to download", image_id=image.id)
    return image


def copied_properties(source: Image) -> dict[str, str]:
    """The source's properties the target takes (Glance's default glance_download_properties)."""
    shown = dict(source.properties)
    if "os_distro" not in shown and source.os_distribution:
        shown["os_distro"] = source.os_distribution     # the Glance face shows it as os_distro
    return {k: v for k, v in shown.items()
            if k.startswith(COPIED_PREFIXES) and not k.startswith(_RESERVED)}


def take_source_metadata(target: Image, source: Image) -> None:
    """What the target takes from the source when it turns active (in memory; the caller saves)."""
    target.disk_format, target.container_format = source.disk_format, source.container_format
    target.properties.update(copied_properties(source))


def download_to_staging(deps: Deps, owner: str, source: Image, staging: BlobStore, key: str,
                        limits: Limits) -> None:
    """The source's bytes (its heaviest store's copy) into the staging area, verified against
    its size, checksum and hash: a mismatch leaves nothing staged. The target project's size
    cap and quota are checked before a byte moves."""
    if source.size is not None:
        with deps.uow() as uow:
            check_declared_size(limits, lambda: uow.images.usage(owner)[1], source.size)
    loc = deps.by_weight([loc for loc in source.locations if loc.store in deps.stores])[0]
    try:
        hasher = hashlib.new(source.os_hash_algo or "sha512")
    except ValueError:
        raise Invalid(f"Source image hash algorithm '{source.os_hash_algo}' is not supported",
                      image_id=source.id) from None
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    writer = staging.writer(key)
    try:
        for chunk in deps.store(loc.store).read(loc.key):
            size += len(chunk)
            check_size_cap(limits, size)
            hasher.update(chunk)
            md5.update(chunk)
            writer.write(chunk)
        if ((source.size is not None and size != source.size) or hasher.hexdigest() != source.os_hash_value
                or (source.checksum is not None and md5.hexdigest() != source.checksum)):
            raise Invalid("The source image's data does not match its size, checksum and hash",
                          image_id=source.id)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
