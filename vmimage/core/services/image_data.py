"""Image data use cases: upload (one streaming pass) and download."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from vmimage.core.backends import Backend
from vmimage.core.errors import Conflict, Forbidden, Gone, Invalid, VmImageError
from vmimage.core.images import Image, ImageStatus, Location
from vmimage.core.policy import Caller, require_owner
from vmimage.core.services.cache import through_cache
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.services.reaper import reap_later
from vmimage.core.services.intake import (activate_from_stream, back_to_queued, gone_if_deleted, start_upload,
                                          write_inspected)
from vmimage.core.services.uploads import end_upload


def upload_image_data(deps: Deps, caller: Caller, image_id: str, chunks: Iterable[bytes],
                      store: str | None = None, declared_size: int | None = None) -> Image:
    with deps.upload_slots.hold(caller.project_id):     # the excess is refused before any data
        if deps.store(store).read_only:     # an unknown or read-only store changes nothing
            raise Invalid(f"Store '{store}' is read-only", store=store)
        with deps.uow(write=True) as uow:
            image = find_visible(uow, caller, image_id, for_update=True)
            require_owner(caller, image)
            store = _store_in_region(deps, image, store)
            start_upload(deps, uow, image, ImageStatus.SAVING, declared_size, store)
        return receive_data(deps, image, chunks, store, declared_size)


def _store_in_region(deps: Deps, image: Image, store: str | None) -> str:
    """The store an image's data goes to: the one named, which must serve the image's region,
    else the region's home store."""
    if store is None:
        return deps.home_store(image.region)
    if store not in deps.stores_of_region(deps.region_of(image.region)):
        raise Invalid(f"Store '{store}' does not serve region '{image.region}'", store=store)
    return store


def begin_saving(deps: Deps, image_id: str) -> Image:
    """For the service itself (jobs): move a queued image it created to saving."""
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is None or image.status == ImageStatus.DELETED:
            raise Gone("Image was deleted before its data arrived", image_id=image_id)
        start_upload(deps, uow, image, ImageStatus.SAVING)
        return image


def receive_data(deps: Deps, image: Image, chunks: Iterable[bytes], store: str | None = None,
                 declared_size: int | None = None) -> Image:
    """Stream a saving image's data into a store in one pass; activate it or roll it back."""
    try:
        return _receive(deps, image, chunks, store, declared_size)
    finally:
        end_upload(deps, image.id)


def _receive(deps: Deps, image: Image, chunks: Iterable[bytes], store: str | None,
             declared_size: int | None) -> Image:
    blob_store = deps.store(store or deps.home_store(image.region))
    image_id = image.id
    with deps.uow() as uow:
        limits = deps.limits_for(uow, image.owner)
    try:
        result, verdict = write_inspected(deps, blob_store, image_id, chunks, image, limits.max_image_size,
                                          declared_size)
    except BaseException as exc:
        back_to_queued(deps, image_id, ImageStatus.SAVING)
        gone_if_deleted(deps, image_id, exc)
        raise

    with deps.uow(write=True) as uow:
        uow.images.lock_project(image.owner)
        current = uow.images.get(image_id, for_update=True)
        try:
            if current is None or current.status == ImageStatus.DELETED:
                raise Gone("Image was deleted during the upload", image_id=image_id)
            if current.status != ImageStatus.SAVING:
                raise Conflict(f"Image went to '{current.status}' during the upload")
            activate_from_stream(deps, uow, current, result, verdict, limits=limits,
                                 locations=[Location(blob_store.name, image_id)])
        except VmImageError:
            # The written data is no image's: the reaper deletes it (the request does not wait on the store).
            reap_later(deps, uow, blob_store.name, image_id, image_id=image_id)
            if current is not None and current.status == ImageStatus.SAVING:
                current.move_to(ImageStatus.QUEUED)
                uow.images.save(current)
            uow.commit()
            deps.wake_reaper()
            raise
        uow.images.save(current)
        uow.commit()
    return current


@dataclass
class ImageData:
    image: Image
    size: int
    # (start, end exclusive) -> chunks. It may open the data at once (a GET) and each chunk
    # may wait on the backend: call it, and iterate, on the backend's own threads.
    read: Callable[[int, int | None], Iterator[bytes]]
    backend: Backend | None = None      # what the reads go to (None: this node's own files)
    # The data as an open file of this node's, when a file store keeps it (a face may have the
    # kernel send it: sendfile); None when it is not one. Blocking (opens the file).
    open_file: Callable[[], BinaryIO | None] | None = None


def open_image_data(deps: Deps, caller: Caller, image_id: str) -> ImageData | None:
    """The image's data, or None when it has none yet. Nothing is read yet (but the size of
    data whose image does not tell it)."""
    image = load_image_for_read(deps, caller, image_id)
    if not image.locations or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return None     # no data yet (a location whose import failed is not data)
    loc = deps.by_weight(image.locations)[0]     # the heaviest store's copy
    store = deps.store(loc.store)
    size = image.size if image.size is not None else store.size(loc.key)
    # This node's cached copy when it holds exactly these bytes; a full read fills it when
    # the data is not in this node's own files (S3, http).
    size, read, cached = through_cache(deps, image, size, lambda start, end: store.read(loc.key, start, end),
                                       fill=store.local_path(loc.key) is None)
    if cached:
        return ImageData(image, size, read, None)
    return ImageData(image, size, read, store.backend, open_file=lambda: store.open_file(loc.key))


def load_image_for_read(deps: Deps, caller: Caller, image_id: str) -> Image:
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
    if image.status == ImageStatus.DEACTIVATED and not caller.is_admin:
        raise Forbidden("Image is deactivated", image_id=image_id)
    return image
