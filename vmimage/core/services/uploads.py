"""Uploads in flight belong to the process that took them; survivors recover the dead's.

Moving an image to `saving` (an upload) or `uploading` (a stage) records an upload owned by
this process (deps.worker_id) in the same transaction; the record goes when the data is
committed or refused. A watch thread heartbeats this process's records and, like the job
engine, takes over the records of processes that are gone (core/liveness.py): it removes
their partial data through the store's cleanup_partial (what this node can reach: a shared
store, or its own files) and puts the image back to `queued`, so it can be uploaded again
(a stage whose data was committed stays `uploading`). Nothing else is touched: a live
upload's record is heartbeated, and a record is taken over only if unchanged since read.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from vmimage.core.errors import VmImageError
from vmimage.core.images import Image, ImageStatus
from vmimage.core.liveness import abandoned
from vmimage.core.ports import UnitOfWork, Upload
from vmimage.core.services.deps import Deps

log = logging.getLogger("vmimage.uploads")


def begin_upload(deps: Deps, uow: UnitOfWork, image: Image, store: str, key: str) -> None:
    """Within the transaction that moves the image to saving/uploading."""
    now = deps.clock()
    uow.uploads.begin(Upload(image.id, image.status.value, store, key, deps.worker_id, now, now))


def end_upload(deps: Deps, image_id: str) -> None:
    """The upload ended (either way); a record left by a failure here is recovered later."""
    try:
        with deps.uow(write=True) as uow:
            uow.uploads.end(image_id, deps.worker_id)
            uow.commit()
    except VmImageError:
        log.exception("could not end the upload record of image %s", image_id)


def recover_uploads(deps: Deps, stale_after: timedelta) -> list[str]:
    """Take over and undo the uploads of processes that are gone; the images reset."""
    with deps.uow() as uow:
        uploads = uow.uploads.list()
    recovered = []
    for upload in uploads:
        now = deps.clock()
        if not abandoned(upload.worker, deps.worker_id, upload.heartbeat_at, now, stale_after):
            continue
        with deps.uow(write=True) as uow:
            if not uow.uploads.take_over(upload, deps.worker_id, now):
                continue    # another survivor got it, or its owner showed a sign of life
            uow.commit()
        _undo(deps, upload)
        recovered.append(upload.image_id)
    return recovered


def release_uploads(deps: Deps, wait_seconds: float) -> list[str]:
    """A clean stop: this process's uploads still unfinished (their requests were cut at the
    end of the shutdown grace) are undone as a dead process's would be: partial data removed,
    the images back to `queued`. Their threads are given wait_seconds to undo their own first."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with deps.uow() as uow:
            ours = [upload for upload in uow.uploads.list() if upload.worker == deps.worker_id]
        if not ours or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for upload in ours:
        _undo(deps, upload)
    return [upload.image_id for upload in ours]


def _undo(deps: Deps, upload: Upload) -> None:
    store = deps.stores.get(upload.store)
    committed = False
    if store is not None and not store.read_only:
        try:
            store.cleanup_partial(upload.key)
            committed = upload.status == ImageStatus.UPLOADING.value and store.exists(upload.key)
        except VmImageError:      # not reachable from here: the owner's node cleans at its start
            log.warning("partial data of image %s in store %s not reachable", upload.image_id, upload.store)
    with deps.uow(write=True) as uow:
        image = uow.images.get(upload.image_id, for_update=True)
        if image is not None and image.status.value == upload.status and not committed:
            image.move_to(ImageStatus.QUEUED)
            if upload.status == ImageStatus.SAVING.value:
                image.size = image.virtual_size = image.checksum = None
                image.os_hash_algo = image.os_hash_value = None
            image.updated_at = deps.clock()
            uow.images.save(image)
        uow.uploads.end(upload.image_id, deps.worker_id)
        uow.commit()
    log.warning("upload of image %s by %s ended with its process; image reset", upload.image_id, upload.worker,
                extra={"image_id": upload.image_id})


class UploadWatch:
    """Heartbeats this process's uploads and recovers those of dead processes, periodically."""

    def __init__(self, deps: Deps, heartbeat_seconds: float, stale_after: timedelta) -> None:
        self.deps, self.heartbeat_seconds, self.stale_after = deps, heartbeat_seconds, stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="upload-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                with self.deps.uow(write=True) as uow:
                    uow.uploads.heartbeat(self.deps.worker_id, self.deps.clock())
                    uow.commit()
                recover_uploads(self.deps, self.stale_after)
            except Exception:  # noqa: BLE001 - the database may be briefly unavailable
                log.exception("upload watch failed")
