"""The import job: glance-direct, web-download and glance-download (staged data into the
target stores, then active) and copy-image (an active image's data into more stores). Every
image write re-checks that the job still holds the image's import lock."""

from __future__ import annotations

import os

from vmimage.core.errors import BackendUnavailable, Conflict, Forbidden, Gone, Invalid
from vmimage.core.formats import FormatVerdict, decide
from vmimage.core.images import DISK_FORMATS, Image, ImageStatus, Location, require_readable, staging_key
from vmimage.core.jobs import Job
from vmimage.core.ports import READ_CHUNK, UnitOfWork
from vmimage.core.quotas import Limits, check_size_cap
from vmimage.core.services.deps import Deps
from vmimage.core.services import glance_download as gd
from vmimage.core.services.imports import (COPY_IMAGE, FAILED, GLANCE_DOWNLOAD, IMPORTING, LOCK, WEB_DOWNLOAD,
                                          locked_image, project_limits)
from vmimage.core.services.intake import activate_from_stream, write_inspected
from vmimage.core.services.reaper import reap_later
from vmimage.core.streaming import StreamResult, stream_into_store


class ImportHandler:
    """Runs one import; every image write re-checks that this job still holds the lock."""

    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        if p["method"] == COPY_IMAGE:
            return self._copy(deps, job, progress)
        return self._import(deps, job, progress)

    def resumable_at(self, job: Job, pct: int) -> bool:
        """A glance-direct or web-download import stopped at its first progress report has its
        data staged whole and nothing converted or written to a store: run again from its start
        (still holding the image's lock), it does the same. Later, or a copy-image, it is not."""
        return job.payload["method"] != COPY_IMAGE and pct <= 20

    def cleanup(self, deps: Deps, job: Job) -> None:
        """A failed or interrupted import: no staged or half-imported data, image retryable."""
        p = job.payload
        image_id = p["image_id"]
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is None or image.properties.get(LOCK) != job.id:
                return
            if p["method"] != COPY_IMAGE and image.status == ImageStatus.IMPORTING:
                image.move_to(ImageStatus.QUEUED)
                for loc in image.locations:
                    reap_later(deps, uow, loc.store, loc.key, image_id=image_id)
                image.locations = []
            if p["method"] != COPY_IMAGE:    # the staged data, and a write of it the process never ended
                reap_later(deps, uow, None, staging_key(image_id), partial=True, image_id=image_id)
            for name in p["stores"]:         # a target's data no location points at: an interrupted write
                store = deps.stores.get(name)
                if store is not None and not store.read_only and not any(loc.store == name
                                                                         for loc in image.locations):
                    reap_later(deps, uow, name, image_id, partial=True, image_id=image_id)
            left = [s for s in image.properties.get(IMPORTING, "").split(",") if s]
            failed = [s for s in image.properties.get(FAILED, "").split(",") if s]
            image.properties.pop(LOCK, None)
            image.properties[IMPORTING] = ""
            image.properties[FAILED] = ",".join(dict.fromkeys(failed + left))
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        deps.wake_reaper()

    # glance-direct and web-download --------------------------------------------------------

    def _import(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        image_id = p["image_id"]
        image = self._image(deps, job)
        staging = deps.store(None)
        key = staging_key(image_id)
        limits = project_limits(deps, image.owner)
        source = None
        if p["method"] == WEB_DOWNLOAD:
            _download_to_staging(deps, p["uri"], staging, key, limits)
        elif p["method"] == GLANCE_DOWNLOAD:
            source = gd.find_source(deps, gd.caller_from_payload(p["caller"]),
                                    gd.RemoteSource.from_payload(p["remote"]))
            gd.download_to_staging(deps, image.owner, source, staging, key, limits)
            gd.take_source_metadata(image, source)      # the formats the import pass checks against
        elif not staging.exists(key):
            raise Gone("The staged data is gone", image_id=image_id)
        progress(20)
        disk_format = image.disk_format
        if deps.import_convert_to and disk_format != deps.import_convert_to:
            disk_format = _convert_staged(deps, job, image)
        progress(40)
        done, result, verdict = self._into_stores(deps, job, image, disk_format, limits, progress)

        with deps.uow(write=True) as uow:
            uow.images.lock_project(image.owner)
            image = self._image(deps, job, uow)
            if source is not None:
                gd.take_source_metadata(image, source)
            activate_from_stream(deps, uow, image, result, verdict, limits=limits,
                                 locations=[Location(name, image_id) for name in done])
            image.disk_format = disk_format
            image.properties.pop(LOCK, None)
            image.properties[IMPORTING] = ""
            uow.images.save(image)
            reap_later(deps, uow, staging.name, key, image_id=image_id)    # staged data done with
            uow.commit()
        deps.wake_reaper()
        return {"image_id": image_id, "stores": done}

    def _into_stores(self, deps: Deps, job: Job, image: Image, disk_format: str | None, limits: Limits,
                     progress) -> tuple[list[str], StreamResult, FormatVerdict]:
        """The staged data into each target store; the stores that took it, and what the pass saw."""
        p = job.payload
        image_id, targets = p["image_id"], p["stores"]
        staging, key = deps.store(None), staging_key(image_id)
        done: list[str] = []
        result: StreamResult | None = None
        verdict: FormatVerdict | None = None
        for name in targets:
            try:
                if result is None:
                    # The first store gets the data through the full pipeline: sizes, hashes
                    # and the format verdict come from this pass.
                    result, verdict = write_inspected(deps, deps.store(name), image_id, staging.read(key), image,
                                                      limits.max_image_size, disk_format=disk_format)
                else:
                    _copy_blob(deps, staging, key, name, image_id)
                done.append(name)
                self._progress_props(deps, job, done=name)
            except BackendUnavailable:
                # A store that fails; the data itself was fine.
                self._progress_props(deps, job, failed=name)
                if p["all_stores_must_succeed"]:
                    raise BackendUnavailable(f"Store '{name}' failed and all stores must succeed",
                                             store=name) from None
            progress(40 + 60 * (len(done) + 1) // (len(targets) + 1))
        if not done:
            raise BackendUnavailable("No store took the image's data", image_id=image_id)
        assert result is not None and verdict is not None    # the first store that took it made them
        return done, result, verdict

    # copy-image ----------------------------------------------------------------------------

    def _copy(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        image_id = p["image_id"]
        image = self._image(deps, job)
        source = next((loc for loc in deps.by_weight(image.locations)
                       if loc.store in deps.stores and not deps.stores[loc.store].read_only), None)
        if source is None:
            raise Conflict("Image has no data in a store to copy from", image_id=image_id)
        copied: list[str] = []
        try:
            for i, name in enumerate(p["stores"]):
                try:
                    _copy_blob(deps, deps.store(source.store), source.key, name, image_id)
                except BackendUnavailable:
                    self._progress_props(deps, job, failed=name)
                    if p["all_stores_must_succeed"]:
                        raise
                    continue
                with deps.uow(write=True) as uow:
                    image = self._image(deps, job, uow)
                    if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
                        raise Gone("Image left active during the copy", image_id=image_id)
                    image.locations.append(Location(name, image_id))
                    _drop_from(image, IMPORTING, name)
                    image.updated_at = deps.clock()
                    uow.images.save(image)
                    uow.commit()
                copied.append(name)
                progress(100 * (i + 1) // (len(p["stores"]) + 1))
        except BaseException:
            # All or nothing: the copies this job made go again.
            self._remove_copies(deps, job, copied)
            raise
        with deps.uow(write=True) as uow:
            image = self._image(deps, job, uow)
            image.properties.pop(LOCK, None)
            image.properties[IMPORTING] = ""
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        return {"image_id": image_id, "stores": copied}

    def _remove_copies(self, deps: Deps, job: Job, copied: list[str]) -> None:
        if not copied:
            return
        image_id = job.payload["image_id"]
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is not None and image.properties.get(LOCK) == job.id:
                image.locations = [loc for loc in image.locations if loc.store not in copied]
                uow.images.save(image)
            for name in copied:
                reap_later(deps, uow, name, image_id, image_id=image_id)
            uow.commit()
        deps.wake_reaper()

    # helpers -------------------------------------------------------------------------------

    def _image(self, deps: Deps, job: Job, uow: UnitOfWork | None = None) -> Image:
        return locked_image(deps, job, uow)

    def _progress_props(self, deps: Deps, job: Job, done: str | None = None, failed: str | None = None) -> None:
        with deps.uow(write=True) as uow:
            image = self._image(deps, job, uow)
            for name in filter(None, (done, failed)):
                _drop_from(image, IMPORTING, name)
            if failed:
                failures = [s for s in image.properties.get(FAILED, "").split(",") if s]
                image.properties[FAILED] = ",".join(dict.fromkeys(failures + [failed]))
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()


def _drop_from(image: Image, key: str, name: str) -> None:
    image.properties[key] = ",".join(s for s in image.properties.get(key, "").split(",") if s and s != name)


def _download_to_staging(deps: Deps, uri: str, staging, key: str, limits: Limits) -> None:
    """web-download: the URL's data into the staging area (the import's pass inspects it)."""
    fetched = deps.fetcher.open(uri)
    if fetched.size is not None:
        check_size_cap(limits, fetched.size)
    writer = staging.writer(key)
    try:
        stream_into_store(fetched, writer, deps.new_inspector(), limits.max_image_size, None, digests=False)
        writer.commit()
    except BaseException:
        writer.abort()
        fetched.close()
        raise


def _copy_blob(deps: Deps, source_store, key: str, target: str, target_key: str) -> None:
    store = deps.store(target)
    if store.read_only:
        raise Forbidden(f"Store '{target}' is read-only", store=target)
    writer = store.writer(target_key)
    try:
        for chunk in source_store.read(key):
            writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def _convert_staged(deps: Deps, job: Job, image: Image) -> str:
    """Convert the staged data to the operator's format; returns the new disk format.

    The data is inspected first (qemu-img never sees content the inspector refused) and
    the conversion is told the inspected format.
    """
    target = deps.import_convert_to
    if target not in DISK_FORMATS:
        raise Invalid(f"Conversion target '{target}' is not a disk format")
    require_readable(image.disk_format, f"convert this image to {target}")
    staging = deps.store(None)
    key = staging_key(image.id)
    path = staging.local_path(key)
    if path is None:
        raise BackendUnavailable("The staging store has no local files to convert")
    inspector = deps.new_inspector()
    size = 0
    for chunk in staging.read(key):
        inspector.feed(chunk)
        size += len(chunk)
    verdict = decide(image.disk_format, image.container_format, inspector.report(), size,
                     deps.enforce_format_match)
    if verdict.detected == target:
        return target
    work = deps.disks.work_dir(job.id)
    try:
        out = os.path.join(work, "converted")
        deps.disks.convert_file(path, verdict.detected, out, target)
        writer = staging.writer(key)
        try:
            with open(out, "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    writer.write(chunk)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    finally:
        deps.disks.discard_work(job.id)
    return target
