"""Image metadata use cases: create, show, list, update, delete, (de)activate, tags."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmimage.core import audit, os_catalogue
from vmimage.core.backends import Backend
from vmimage.core.errors import Conflict, Duplicate, Forbidden, InUse, Invalid, NameTaken, NotFound, Protected
from vmimage.core.images import (CONTAINER_FORMATS, KNOWN_DISK_FORMATS, MAX_NAME, OS_IDENTITY, BootMode, Location, TagSet,
                                 staging_key, Image, ImageKind, ImageSource, ImageStatus, OsFamily, Visibility,
                                 check_ref, check_writable_key, new_image_id, validate_property,
                                 validate_tag)
from vmimage.core.listing import ImageQuery
from vmimage.core.log_context import current_request_id
from vmimage.core.paging import Page
from vmimage.core.policy import Caller, check_visible, require_admin, require_owner, require_writer
from vmimage.core.ports import UnitOfWork
from vmimage.core.quotas import check_image_count, check_per_image
from vmimage.core.services import locations
from vmimage.core.services.deps import Deps
from vmimage.core.services.insight_queue import queue_inspection
from vmimage.core.services.reaper import reap_later

# Typed attributes a caller may set; everything else is an extra property.
BASE_ATTRIBUTES = ("name", "visibility", "protected", "os_hidden", "disk_format",
                   "container_format", "min_disk", "min_ram", "owner", "tags",
                   "os_version", "architecture", "boot_mode", "kind", "source", "source_ref",
                   "description", "os_family", "os_distribution", "os_release")
# Typed attributes that behave like optional properties: they may be removed.
OPTIONAL_ATTRIBUTES = ("os_version", "architecture", "boot_mode", "description", "os_family", "os_distribution",
                       "os_release")
LOCATIONS = "locations"
_FORMAT_EDITABLE = {ImageStatus.QUEUED, ImageStatus.IMPORTING}


@dataclass(frozen=True)
class Change:
    op: str            # add | replace | remove
    key: str
    value: Any = None
    property: bool = False   # an extra property, even where a typed attribute has the name
    index: str | None = None  # /locations/<index> ("-": the end)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"'{key}' must be a boolean")
    return value


MAX_MIN_SIZE = (1 << 31) - 1     # min_disk (GB) and min_ram (MB) are 32-bit, as in Glance's database


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MIN_SIZE:
        raise Invalid(f"'{key}' must be an integer from 0 to {MAX_MIN_SIZE}", field=key)
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"Invalid value '{value}' for '{key}': expected one of {', '.join(allowed)}", field=key)
    return value


def _set_attribute(caller: Caller, image: Image, key: str, value: Any, creating: bool) -> None:
    filled = (image.insight or {}).get("filled")
    if filled and key in filled:      # now the user's: a later inspection leaves it alone
        image.insight = {**(image.insight or {}), "filled": [k for k in filled if k != key]}
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME):
            raise Invalid(f"'name' must be a string of at most {MAX_NAME} characters")
        image.name = value
    elif key == "visibility":
        vis = Visibility(_choice(key, value, tuple(v.value for v in Visibility)))
        if vis == Visibility.PUBLIC and not caller.is_admin:
            raise Forbidden("Only an administrator may publicize an image")
        image.visibility = vis
    elif key in ("protected", "os_hidden"):
        setattr(image, key, _bool(key, value))
    elif key in ("disk_format", "container_format"):
        if not creating and image.status not in _FORMAT_EDITABLE:
            raise Forbidden(f"'{key}' may change only while the image is queued")
        allowed = KNOWN_DISK_FORMATS if key == "disk_format" else CONTAINER_FORMATS
        setattr(image, key, None if value is None else _choice(key, value, allowed))
    elif key in ("min_disk", "min_ram"):
        setattr(image, key, _int(key, value))
    elif key == "owner":
        if value != image.owner:
            require_admin(caller, "set an image's owner")
        if not isinstance(value, str) or not value or len(value) > MAX_NAME:
            raise Invalid("'owner' must be a project id")
        image.owner = value
    elif key == "tags":
        if not isinstance(value, list):
            raise Invalid("'tags' must be a list")
        image.tags = TagSet(validate_tag(t) for t in value)
    elif key == "os_version":
        if value is not None:
            os_catalogue.require(value)
        image.os_version = value
    elif key == "os_family":   # exact, lowercase: "Linux" is refused, not folded
        image.os_family = None if value is None else OsFamily(_choice(key, value, tuple(OsFamily)))
    elif key == "os_distribution":
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_NAME):
            raise Invalid(f"'os_distribution' must be a string of 1 to {MAX_NAME} characters", field=key)
        image.os_distribution = value
    elif key == "os_release":
        image.os_release = os_catalogue.check_release(value)
    elif key == "architecture":
        if value is not None and (not isinstance(value, str) or not value or len(value) > 30):
            raise Invalid("'architecture' must be a string of 1 to 30 characters")
        image.architecture = value
    elif key == "boot_mode":
        image.boot_mode = None if value is None else BootMode(_choice(key, value, ("bios", "uefi")))
    elif key == "kind":
        image.kind = ImageKind(_choice(key, value, tuple(k.value for k in ImageKind)))
    elif key == "source":
        image.source = ImageSource(_choice(key, value, tuple(s.value for s in ImageSource)))
    elif key in ("description", "source_ref"):
        if value is not None and (not isinstance(value, str) or len(value) > 1024):
            raise Invalid(f"'{key}' must be a string of at most 1024 characters")
        setattr(image, key, value)
    else:  # pragma: no cover - callers route only BASE_ATTRIBUTES here
        raise Invalid(f"Unknown attribute '{key}'")


def set_os_attribute(caller: Caller, image: Image, key: str, value: Any) -> None:
    """One attribute of an image's OS identity (OS_IDENTITY), checked as on create."""
    if key not in OS_IDENTITY:
        raise Invalid(f"Unknown attribute '{key}'", field=key)
    _set_attribute(caller, image, key, value, creating=True)


def find_visible(uow: UnitOfWork, caller: Caller, image_id: str, for_update: bool = False) -> Image:
    """The image if the caller may see it; NotFound otherwise (never reveal what exists)."""
    image = uow.images.get(image_id, for_update=for_update)
    if image is None or image.status == ImageStatus.DELETED:
        raise NotFound("Image not found", image_id=image_id)
    member = uow.images.get_member(image_id, caller.project_id) if image.owner != caller.project_id else None
    return check_visible(caller, image, member.status if member else None)


def load_visible(deps: Deps, caller: Caller, image_id: str) -> Image:
    with deps.uow() as uow:
        return find_visible(uow, caller, image_id)


def _require_unique_name(uow: UnitOfWork, image: Image) -> None:
    """Within the image's project; the caller holds the project lock. An image without a name
    (IMS makes such) clashes with none."""
    if image.name is None:
        return
    if not isinstance(image.name, str) or not image.name:
        raise Invalid("'name' is required", field="name")
    if any(other != image.id for other in uow.images.ids_named(image.name, image.owner, image.region or None)):
        raise NameTaken(f"An image named '{image.name}' already exists", name=image.name)


def create_image(deps: Deps, caller: Caller, attributes: dict[str, Any],
                 properties: dict[str, Any], unique_name: bool = False) -> Image:
    """unique_name: refuse a name another live image of the project has (Glance allows it)."""
    require_writer(caller)
    ref = attributes.pop("ref", None)
    image_id = attributes.pop("id", None)
    if image_id is not None:
        try:
            image_id = str(uuid.UUID(str(image_id)))
        except ValueError:
            raise Invalid("Image id must be a UUID") from None
    now = deps.clock()
    image = Image(id=image_id or new_image_id(), owner=caller.project_id, created_at=now, updated_at=now,
                  region=deps.region_of(caller.region))
    if ref is not None:
        image.ref = check_ref(ref)
    for key, value in attributes.items():
        if key not in BASE_ATTRIBUTES:
            raise Invalid(f"Unknown attribute '{key}'")
        _set_attribute(caller, image, key, value, creating=True)
    os_catalogue.settle(image)
    for key, value in properties.items():
        image.properties[key] = validate_property(key, value)
    limits = deps.limits
    check_per_image(limits, len(image.properties), len(image.tags))
    with deps.uow(write=True) as uow:
        # The common create has nothing to look up first (no caller-chosen id or ref, names
        # may repeat): when its project has no image-count limit, the image goes in at once,
        # the limit checked in the same step; with a limit, nothing is written yet, and the
        # create below counts under the project lock.
        if (image_id is None and ref is None and not unique_name
                and uow.images.add_unless_limited(image, "image_count", limits.image_count)):
            uow.commit()
            return image
        limits = deps.limits_for(uow, image.owner)
        # The project lock serialises what a create counts or compares within the project:
        # its image count (under a count limit) and its names (unique_name). Without either,
        # creates in one project do not wait for each other. A count limit set while creates
        # are in flight applies to the creates that start after it.
        if unique_name or limits.image_count >= 0:
            uow.images.lock_project(image.owner)
        # A caller-chosen id or ref is checked here for a clear error; generated ones are
        # random UUIDs, and the table's unique keys refuse a collision anyway (Duplicate).
        if image_id is not None and uow.images.get(image.id) is not None:
            raise Duplicate("An image with this id already exists", image_id=image.id)
        if ref is not None and uow.images.get_by_ref(image.ref) is not None:
            raise Duplicate("An image with this ref already exists", field="ref")
        if unique_name:
            _require_unique_name(uow, image)
        check_image_count(limits, lambda: uow.images.usage(image.owner)[0])
        uow.images.add(image)
        uow.commit()
    return image


def list_images(deps: Deps, caller: Caller, query: ImageQuery) -> Page[Image]:
    query.project_id, query.is_admin = caller.project_id, caller.is_admin
    query.region = caller.region
    query.validate()
    marker_id = query.page.marker
    with deps.uow() as uow:
        if marker_id is not None:
            marker = uow.images.get(marker_id)
            if marker is None or marker.status == ImageStatus.DELETED:
                raise Invalid("Marker not found", marker=marker_id)
            find_visible(uow, caller, marker_id)
        return uow.images.list(query)


def update_waits_on(deps: Deps, changes: list[Change]) -> Backend | None:
    """The backend an update may wait on (run it on that backend's threads): the web, when it
    adds or replaces locations (each new URL is reached first); None otherwise."""
    if not any(c.key == LOCATIONS and not c.property and c.op in ("add", "replace") for c in changes):
        return None
    web = next((s for s in deps.stores.values() if s.read_only and s.kind == "http"), None)
    return web.backend if web is not None else None


def update_image(deps: Deps, caller: Caller, image_id: str, changes: list[Change],
                 unique_name: bool = False) -> Image:
    location_changes = [c for c in changes if c.key == LOCATIONS and not c.property]
    sizes = {}
    if location_changes:
        with deps.uow() as uow:
            require_owner(caller, find_visible(uow, caller, image_id))
        new = [v for c in location_changes if c.op in ("add", "replace")
               for v in (c.value if isinstance(c.value, list) else [c.value])]
        sizes = locations.location_sizes(deps, new)
    dropped: list[Location] = []
    with deps.uow(write=True) as uow:
        if unique_name:   # the project lock first, in the same order as creates and uploads
            uow.images.lock_project(find_visible(uow, caller, image_id).owner)
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        name, visibility, status = image.name, image.visibility, image.status
        for change in changes:
            if change.key == LOCATIONS and not change.property:
                locations.apply_location_change(deps, caller, image, change.op, change.index, change.value,
                                                sizes, dropped)
            else:
                _apply(caller, image, change)
        if unique_name and image.name != name:
            _require_unique_name(uow, image)
        check_per_image(deps.limits_for(uow, image.owner),
                        len(image.properties), len(image.tags))
        image.updated_at = deps.clock()
        for loc in dropped:   # a removed location in one of our stores takes its data with it
            if loc.store in deps.stores:
                reap_later(deps, uow, loc.store, loc.key, image_id=image.id)
        # an image made active by a location (Glance's add-location): read what is inside it
        inspecting = status == ImageStatus.QUEUED and image.status == ImageStatus.ACTIVE \
            and queue_inspection(deps, uow, image, current_request_id()) is not None
        uow.images.save(image)
        if image.visibility != visibility:
            uow.audit.add(audit.event(audit.IMAGE_VISIBILITY, image.id, target_project_id=image.owner,
                                      detail=f"{visibility.value} -> {image.visibility.value}",
                                      user_id=caller.user_id, project_id=caller.project_id))
        uow.commit()
    if dropped:
        deps.wake_reaper()
    if inspecting:
        deps.submit_job()
    return image


def _apply(caller: Caller, image: Image, change: Change) -> None:
    key, op = change.key, change.op
    if op not in ("add", "replace", "remove"):
        raise Invalid(f"Unknown operation '{op}'")
    check_writable_key(key)
    if key in BASE_ATTRIBUTES and not change.property:
        if op == "remove":
            if key not in OPTIONAL_ATTRIBUTES:
                raise Forbidden(f"Attribute '{key}' may not be removed")
            if getattr(image, key) is None:
                raise Conflict(f"Attribute '{key}' is not set", key=key)
            value = None
        else:
            value = change.value
        _set_attribute(caller, image, key, value, creating=False)
    elif op == "remove" or (op == "replace" and key not in image.properties):
        if key not in image.properties:
            raise Conflict(f"Property '{key}' does not exist", key=key)
        del image.properties[key]
    else:
        image.properties[key] = validate_property(key, change.value)


def add_tag(deps: Deps, caller: Caller, image_id: str, tag: str) -> None:
    validate_tag(tag)
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if tag not in image.tags:
            image.tags.add(tag)
            check_per_image(deps.limits, len(image.properties), len(image.tags))
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()


def delete_tag(deps: Deps, caller: Caller, image_id: str, tag: str) -> None:
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if tag not in image.tags:
            raise NotFound(f"Tag '{tag}' not found", tag=tag)
        image.tags.discard(tag)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()


def delete_image(deps: Deps, caller: Caller, image_id: str) -> None:
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if image.protected:
            raise Protected("Image is protected and cannot be deleted", image_id=image_id)
        if uow.inventory.image_in_use(image_id):
            raise InUse("Image is in use by a server's disk", image_id=image_id)
        # The data goes with the row, by the reaper: the request does not wait on a store,
        # and a crash after the commit leaves the records, not orphaned bytes.
        for loc in image.locations:
            reap_later(deps, uow, loc.store, loc.key, image_id=image_id)
        if image.status in (ImageStatus.UPLOADING, ImageStatus.IMPORTING):   # a running import stops
            reap_later(deps, uow, None, staging_key(image_id), image_id=image_id)
        # Data on its way in (here or in another process, alive or dead) goes too.
        upload = uow.uploads.get(image_id) if image.status in (ImageStatus.SAVING, ImageStatus.UPLOADING) else None
        if upload is not None:
            reap_later(deps, uow, upload.store, upload.key, partial=True, image_id=image_id)
        image.move_to(ImageStatus.DELETED)
        image.locations = []
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.audit.add(audit.event(audit.IMAGE_DELETE, image_id, target_project_id=image.owner,
                                  user_id=caller.user_id, project_id=caller.project_id))
        uow.commit()
    deps.wake_reaper()
    if deps.cache is not None:    # this node's cached copy (local files) goes with the image at once
        deps.cache.delete(image_id)


def set_active(deps: Deps, caller: Caller, image_id: str, active: bool) -> None:
    """Deactivate or reactivate; both are idempotent."""
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)   # upstream default: admin, or a member of the owning project
        target = ImageStatus.ACTIVE if active else ImageStatus.DEACTIVATED
        if image.status == target:
            return
        if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
            raise Forbidden(f"Image in status '{image.status}' cannot be {target}")
        image.move_to(target)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()


def project_usage(deps: Deps, caller: Caller) -> dict[str, tuple[int, int]]:
    """resource -> (limit, usage) for the caller's project; -1 is unlimited."""
    with deps.uow() as uow:
        count, used = uow.images.usage(caller.project_id)
        uploading = uow.images.count_in_status(caller.project_id, (ImageStatus.SAVING, ImageStatus.UPLOADING))
        limits = deps.limits_for(uow, caller.project_id)
    return {"image_size_total": (limits.image_bytes, used), "image_count_total": (limits.image_count, count),
            "image_stage_total": (limits.image_bytes, 0), "image_count_uploading": (limits.image_count, uploading)}


def edit_tags(deps: Deps, caller: Caller, image_id: str, edit: Callable[[list[str]], list[str]]) -> Image:
    """The image's tags replaced by edit(its tags), read and written in one transaction (so no
    other writer's tags are lost in between); the owner's, under the per-image limits."""
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        _apply(caller, image, Change("replace", "tags", edit(list(image.tags))))
        check_per_image(deps.limits_for(uow, image.owner), len(image.properties), len(image.tags))
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
    return image
