"""Image data use cases: upload (one streaming pass) and download."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vmimage.core.errors import Conflict, Forbidden, Gone, Invalid, VmImageError
from vmimage.core.formats import decide
from vmimage.core.images import Image, ImageStatus, Location, require_formats
from vmimage.core.policy import Caller, require_owner
from vmimage.core.quotas import check_declared_size, check_image_bytes
from vmimage.core.services.cache import through_cache
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.streaming import stream_into_store


def upload_image_data(deps: Deps, caller: Caller, image_id: str, chunks: Iterable[bytes],
                      store: str | None = None, declared_size: int | None = None) -> Image:
    with deps.upload_slots.hold(caller.project_id):     # the excess is refused before any data
        if deps.store(store).read_only:     # an unknown or read-only store changes nothing
            raise Invalid(f"Store '{store}' is read-only", store=store)
        with deps.uow(write=True) as uow:
            image = find_visible(uow, caller, image_id, for_update=True)
            require_owner(caller, image)
            image = _begin_saving(deps, uow, image, declared_size)
        return receive_data(deps, image, chunks, store, declared_size)


def begin_saving(deps: Deps, image_id: str) -> Image:
    """For the service itself (jobs): move a queued image it created to saving."""
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is None or image.status == ImageStatus.DELETED:
            raise Gone("Image was deleted before its data arrived", image_id=image_id)
        return _begin_saving(deps, uow, image, None)


def _begin_saving(deps: Deps, uow, image: Image, declared_size: int | None) -> Image:
    if image.status != ImageStatus.QUEUED:
        raise Conflict(f"Image in status '{image.status}' cannot take data", image_id=image.id)
    require_formats(image)
    limits = deps.limits_for(uow, image.owner)
    check_declared_size(limits, lambda: uow.images.usage(image.owner)[1], declared_size)
    image.move_to(ImageStatus.SAVING)
    image.updated_at = deps.clock()
    uow.images.save(image)
    uow.commit()
    return image


def receive_data(deps: Deps, image: Image, chunks: Iterable[bytes], store: str | None = None,
                 declared_size: int | None = None) -> Image:
    """Stream a saving image's data into a store in one pass; activate it or roll it back."""
    blob_store = deps.store(store)
    image_id = image.id
    with deps.uow() as uow:
        limits = deps.limits_for(uow, image.owner)
    try:
        writer = blob_store.writer(image_id)
    except BaseException:
        _back_to_queued(deps, image_id)
        raise
    try:
        result = stream_into_store(chunks, writer, deps.new_inspector(),
                                   limits.max_image_size, declared_size)
        verdict = decide(image.disk_format, image.container_format, result.report, result.size,
                         deps.enforce_format_match)
        writer.commit()
    except BaseException:
        writer.abort()
        _back_to_queued(deps, image_id)
        raise

    with deps.uow(write=True) as uow:
        uow.images.lock_project(image.owner)
        image = uow.images.get(image_id, for_update=True)
        try:
            if image is None or image.status == ImageStatus.DELETED:
                raise Gone("Image was deleted during the upload", image_id=image_id)
            if image.status != ImageStatus.SAVING:
                raise Conflict(f"Image went to '{image.status}' during the upload")
            check_image_bytes(limits, lambda: uow.images.usage(image.owner)[1], result.size)
        except VmImageError:
            blob_store.delete(image_id)
            if image is not None and image.status == ImageStatus.SAVING:
                image.move_to(ImageStatus.QUEUED)
                uow.images.save(image)
                uow.commit()
            raise
        image.size, image.virtual_size = result.size, verdict.virtual_size
        image.checksum, image.os_hash_algo, image.os_hash_value = result.md5, "sha512", result.sha512
        image.locations = [Location(blob_store.name, image_id)]
        image.move_to(ImageStatus.ACTIVE)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
    return image


def _back_to_queued(deps: Deps, image_id: str) -> None:
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is not None and image.status == ImageStatus.SAVING:
            image.move_to(ImageStatus.QUEUED)
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()


@dataclass
class ImageData:
    image: Image
    size: int
    read: Callable[[int, int | None], Iterator[bytes]]   # (start, end exclusive) -> chunks


def open_image_data(deps: Deps, caller: Caller, image_id: str) -> ImageData | None:
    """The image's data, or None when it has none yet."""
    image = load_image_for_read(deps, caller, image_id)
    if not image.locations or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return None     # no data yet (a location whose import failed is not data)
    loc = image.locations[0]
    store = deps.store(loc.store)
    size = image.size if image.size is not None else store.size(loc.key)
    # This node's cached copy when it holds exactly these bytes; a full read fills it.
    size, read = through_cache(deps, image, size, lambda start, end: store.read(loc.key, start, end))
    return ImageData(image, size, read)


def load_image_for_read(deps: Deps, caller: Caller, image_id: str) -> Image:
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
    if image.status == ImageStatus.DEACTIVATED and not caller.is_admin:
        raise Forbidden("Image is deactivated", image_id=image_id)
    return image
