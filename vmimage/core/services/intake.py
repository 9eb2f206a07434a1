"""How data comes into an image, once for every way in (upload, stage, import, host files,
images of servers): the door (queued -> saving or uploading), the one inspected write into
a store, the way back to queued, and activation from what that pass saw."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vmimage.core.errors import Conflict, Gone, VmImageError
from vmimage.core.formats import FormatVerdict, decide
from vmimage.core.images import Image, ImageStatus, Location, require_formats, staging_key
from vmimage.core.ports import BlobStore, UnitOfWork
from vmimage.core.quotas import Limits, check_declared_size, check_image_bytes
from vmimage.core.services.deps import Deps
from vmimage.core.services.insight_queue import on_active
from vmimage.core.services.reaper import reap_later
from vmimage.core.services.uploads import begin_upload
from vmimage.core.streaming import StreamResult, stream_into_store

log = logging.getLogger("vmimage.uploads")


def start_upload(deps: Deps, uow: UnitOfWork, image: Image, to: ImageStatus, declared_size: int | None = None,
                 store: str | None = None) -> Limits:
    """queued -> saving (data for the image itself) or uploading (data staged for an import),
    within the project's limits; commits. Returns the limits the data must keep to.

    The upload is this process's (core/services/uploads.py) until end_upload: store is where
    the data goes (the default store when staging)."""
    if image.status != ImageStatus.QUEUED:
        raise Conflict(f"Image in status '{image.status}' cannot take data", image_id=image.id)
    if to == ImageStatus.SAVING:
        require_formats(image)
    limits = deps.limits_for(uow, image.owner)
    check_declared_size(limits, lambda: uow.images.usage(image.owner)[1], declared_size)
    image.move_to(to)
    image.updated_at = deps.clock()
    uow.images.save(image)
    key = image.id if to == ImageStatus.SAVING else staging_key(image.id)
    begin_upload(deps, uow, image, deps.store((store or deps.home_store(image.region))
                                              if to == ImageStatus.SAVING else None).name, key)
    uow.commit()
    return limits


def back_to_queued(deps: Deps, image_id: str, from_status: ImageStatus) -> None:
    """Data that did not arrive: the image takes data again (if nothing else moved it)."""
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is not None and image.status == from_status:
            image.move_to(ImageStatus.QUEUED)
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()


def discard_failed(deps: Deps, image_id: str, keep_record: bool = False) -> None:
    """A failed job's image loses its data. keep_record: it stays, `killed`, for its owner
    to see and delete (clouds that show a failed image as such); otherwise it is deleted."""
    target = ImageStatus.KILLED if keep_record else ImageStatus.DELETED
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is None or image.status in (ImageStatus.DELETED, target):
            return
        for loc in image.locations:
            reap_later(deps, uow, loc.store, loc.key, image_id=image_id)
        image.locations = []
        image.move_to(target)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
    deps.wake_reaper()
    if deps.cache is not None:    # a disk that was active before the job failed may be cached
        deps.cache.delete(image_id)


def gone_if_deleted(deps: Deps, image_id: str, exc: BaseException) -> None:
    """A delete during the upload removes its partial data, so the write then fails: tell
    the caller the image is gone rather than that the store failed."""
    if not isinstance(exc, VmImageError) or isinstance(exc, Gone):
        return
    with deps.uow() as uow:
        image = uow.images.get(image_id)
    if image is None or image.status == ImageStatus.DELETED:
        raise Gone("Image was deleted while its data arrived", image_id=image_id) from exc


def write_inspected(deps: Deps, store: BlobStore, key: str, chunks: Iterable[bytes], image: Image,
                    max_size: int, declared_size: int | None = None, *, disk_format: str | None = None,
                    digests: bool = True) -> tuple[StreamResult, FormatVerdict]:
    """One pass of the data into the store under key: sizes, hashes (unless digests=False)
    and the format verdict; content the verdict refuses is not kept. Leaves nothing behind
    when it fails."""
    writer = store.writer(key)
    try:
        result = stream_into_store(chunks, writer, deps.new_inspector(), max_size, declared_size,
                                   digests=digests)
        verdict = decide(disk_format or image.disk_format, image.container_format, result.report, result.size,
                         deps.enforce_format_match)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return result, verdict


def activate_from_stream(deps: Deps, uow: UnitOfWork, image: Image, result: StreamResult, verdict: FormatVerdict, *,
                         limits: Limits | None = None, locations: list[Location] | None = None,
                         hash_algo: str = "sha512", hash_value: str | None = None) -> None:
    """-> active, with the sizes, checksum and hash of the pass over its data (the caller saves,
    in the same transaction as the inspection job this queues).

    limits: the data counts against the project's quota (lock the project first); checked
    before anything changes. locations: where the data now is (None: unchanged)."""
    if limits is not None:
        check_image_bytes(limits, lambda: uow.images.usage(image.owner)[1], result.size)
    image.size, image.virtual_size = result.size, verdict.virtual_size
    image.checksum, image.os_hash_algo = result.md5, hash_algo
    image.os_hash_value = hash_value if hash_value is not None else result.sha512
    if locations is not None:
        image.locations = locations
    image.move_to(ImageStatus.ACTIVE)
    image.updated_at = deps.clock()
    # Every image with data becomes active here: what is inside it is read next (side lane).
    on_active(deps, uow, image)


def reset_lost_uploads(deps: Deps) -> None:
    """After a restart of the one process that owned every upload: what was in flight is gone.

    Unfinished writes and job scratch files go; an image saving its data is queued again with
    no data; an image whose staged data did not survive is queued again (it can be staged anew).
    """
    for store in deps.stores.values():
        try:
            store.cleanup_partial()
        except VmImageError as exc:     # a store that does not answer now (S3) sweeps once it does
            log.warning("unfinished writes in store %s not removed yet: %s", store.name, exc.message)
    deps.disks.discard_all_work()
    staging = deps.store(None)
    with deps.uow(write=True) as uow:
        for image_id in uow.images.ids_in_status(ImageStatus.SAVING):
            image = uow.images.get(image_id, for_update=True)
            assert image is not None    # listed just now; images are never removed
            image.size = image.virtual_size = image.checksum = image.os_hash_algo = image.os_hash_value = None
            _requeue(deps, uow, image)
        for image_id in uow.images.ids_in_status(ImageStatus.UPLOADING):
            image = uow.images.get(image_id, for_update=True)
            assert image is not None
            try:
                staged = staging.exists(staging_key(image_id))
            except VmImageError:        # the store does not answer: the stage stays (an import finds out)
                continue
            if not staged:
                _requeue(deps, uow, image)
        uow.commit()


def _requeue(deps: Deps, uow: UnitOfWork, image: Image) -> None:
    image.move_to(ImageStatus.QUEUED)
    image.updated_at = deps.clock()
    uow.images.save(image)
