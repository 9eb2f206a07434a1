"""Interoperable import: stage data, then import it (glance-direct), fetch it from a URL
(web-download) or copy an active image's data to more stores (copy-image) — as jobs.

The image carries the import's progress for every reader to see, in reserved properties:
the lock (the id of the job that holds it), the stores still to do, the stores that failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vmimage.core.errors import BackendUnavailable, Conflict, Forbidden, Gone, Invalid
from vmimage.core.formats import FormatVerdict, decide
from vmimage.core.images import DISK_FORMATS, Image, ImageStatus, Location, require_formats, staging_key
from vmimage.core.jobs import Job, JobStatus, new_job_id
from vmimage.core.policy import Caller, require_admin, require_owner
from vmimage.core.quotas import check_declared_size, check_image_bytes, check_size_cap
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.streaming import StreamResult, stream_into_store

KIND = "image_import"
GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE = "glance-direct", "web-download", "copy-image"
METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE)
LOCK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
# The status each method starts from.
_NEEDS = {GLANCE_DIRECT: ImageStatus.UPLOADING, WEB_DOWNLOAD: ImageStatus.QUEUED,
          COPY_IMAGE: ImageStatus.ACTIVE}


@dataclass
class ImportRequest:
    method: str
    uri: str | None = None
    stores: list[str] | None = None
    all_stores: bool = False
    all_stores_must_succeed: bool = True
    body: dict[str, Any] = field(default_factory=dict)     # as the caller sent it (task input)
    request_id: str | None = None
    kind: str = KIND                                       # the legacy Tasks API's import has its own
    task_input: dict[str, Any] | None = None


# --- stage --------------------------------------------------------------------------------

def stage_image_data(deps: Deps, caller: Caller, image_id: str, chunks: Iterable[bytes],
                     declared_size: int | None = None) -> None:
    """queued -> uploading, with the data kept in the staging area until an import."""
    with deps.upload_slots.hold(caller.project_id):     # the excess is refused before any data
        _stage(deps, caller, image_id, chunks, declared_size)


def _stage(deps: Deps, caller: Caller, image_id: str, chunks: Iterable[bytes], declared_size: int | None) -> None:
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if image.status != ImageStatus.QUEUED:
            raise Conflict(f"Image in status '{image.status}' cannot be staged", image_id=image_id)
        limits = deps.limits_for(uow, image.owner)
        check_declared_size(limits, lambda: uow.images.usage(image.owner)[1], declared_size)
        image.move_to(ImageStatus.UPLOADING)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
    staging = deps.store(None)
    writer = staging.writer(staging_key(image_id))
    try:
        # Sizes and safety now; the hashes come from the import's own pass over this data.
        result = stream_into_store(chunks, writer, deps.new_inspector(), limits.max_image_size, declared_size,
                                   digests=False)
        # Unsafe content is refused now, not after the caller asked to import it.
        decide(image.disk_format, image.container_format, result.report, result.size,
               deps.enforce_format_match)
        writer.commit()
    except BaseException:
        writer.abort()
        _back_to_queued(deps, image_id, ImageStatus.UPLOADING)
        raise
    with deps.uow() as uow:
        current = uow.images.get(image_id)
    if current is None or current.status != ImageStatus.UPLOADING:
        staging.delete(staging_key(image_id))
        raise Gone("Image was deleted while its data was staged", image_id=image_id)


def _back_to_queued(deps: Deps, image_id: str, from_status: ImageStatus) -> None:
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is not None and image.status == from_status:
            image.move_to(ImageStatus.QUEUED)
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()


# --- import request -----------------------------------------------------------------------

def _target_stores(deps: Deps, req: ImportRequest, image: Image) -> list[str]:
    writable = deps.writable_stores
    if req.all_stores and req.stores is not None:
        raise Invalid("'all_stores' cannot be used together with 'stores'")
    if not req.all_stores_must_succeed and not deps.multi_store:
        raise Invalid("'all_stores_must_succeed' can only be false with several stores")
    if req.stores is not None:
        if not deps.multi_store:
            raise Invalid("This service has a single store; do not name stores")
        if not req.stores:
            raise Invalid("'stores' must name at least one store")
        for name in req.stores:
            if name not in deps.stores:
                raise Conflict(f"Unknown store '{name}'", store=name)
            if deps.stores[name].read_only:
                raise Conflict(f"Store '{name}' is read-only", store=name)
        targets = list(dict.fromkeys(req.stores))
    elif req.all_stores or (deps.multi_store and deps.import_to_all_stores):
        targets = list(writable)
    else:
        targets = [deps.default_store]
    if req.method == COPY_IMAGE:
        held = {loc.store for loc in image.locations}
        if req.stores is not None and held & set(targets):
            raise Invalid(f"Image is already in store(s) {', '.join(sorted(held & set(targets)))}")
        targets = [t for t in targets if t not in held]
        if not targets:
            raise Conflict("Image is already in every store asked for", image_id=image.id)
    return targets


def _lock_is_stale(deps: Deps, holder: Job | None) -> bool:
    if holder is None or holder.status in (JobStatus.SUCCESS, JobStatus.FAIL):
        return True
    last = holder.heartbeat_at or holder.begin_time or holder.created_at
    return last is None or deps.clock() - last > deps.import_lock_stale


def claim_import_lock(deps: Deps, uow, image: Image) -> None:
    """Refuse while a live import holds the image; a stale holder is failed and replaced."""
    holder_id = image.properties.get(LOCK)
    if not holder_id:
        return
    holder = uow.jobs.get(holder_id, for_update=True)
    if not _lock_is_stale(deps, holder):
        raise Conflict(f"Image is being imported by task {holder_id}", image_id=image.id)
    if holder is not None and holder.status in (JobStatus.INIT, JobStatus.RUNNING):
        holder.move_to(JobStatus.FAIL)
        holder.error_code, holder.fail_reason = "lock_taken_over", "Another import took the image over"
        holder.end_time = deps.clock()
        uow.jobs.save(holder)


def start_import(deps: Deps, caller: Caller, image_id: str, req: ImportRequest) -> Job:
    if req.method not in METHODS:
        raise Invalid(f"Import method '{req.method}' is not supported; use one of {', '.join(METHODS)}")
    if req.method == WEB_DOWNLOAD:
        if not isinstance(req.uri, str) or not req.uri:
            raise Invalid("web-download needs 'method.uri'")
        with deps.uow() as uow:
            find_visible(uow, caller, image_id)     # an unknown image is a 404 before any URL check
        deps.fetcher.check(req.uri)
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        if req.method == COPY_IMAGE:
            require_admin(caller, "copy an image to more stores")
        else:
            require_owner(caller, image)
        try:
            require_formats(image)
        except Invalid as exc:
            raise Conflict(exc.message, image_id=image_id) from None
        if image.status != _NEEDS[req.method]:
            raise Conflict(f"Image in status '{image.status}' cannot be imported with {req.method} "
                           f"(it must be '{_NEEDS[req.method]}')", image_id=image_id)
        claim_import_lock(deps, uow, image)
        targets = _target_stores(deps, req, image)
        now = deps.clock()
        job = Job(id=new_job_id(), kind=req.kind, project_id=image.owner, image_id=image.id, created_at=now,
                  payload={"method": req.method, "uri": req.uri, "stores": targets,
                           "all_stores_must_succeed": req.all_stores_must_succeed,
                           "import_req": req.body, "request_id": req.request_id,
                           "user_id": caller.user_id, "image_id": image.id, "task_input": req.task_input})
        image.properties.update({IMPORTING: ",".join(targets), FAILED: ""})
        hand_to_job(deps, uow, image, job, to_importing=req.method != COPY_IMAGE)
    return job


def hand_to_job(deps: Deps, uow, image: Image, job: Job, to_importing: bool) -> None:
    """Lock the image for the job, persist both, commit and wake the engine."""
    image.properties[LOCK] = job.id
    if to_importing:
        image.move_to(ImageStatus.IMPORTING)
    image.updated_at = job.created_at
    uow.images.save(image)
    uow.jobs.add(job)
    uow.commit()
    deps.submit_job()


def image_tasks(deps: Deps, caller: Caller, image_id: str) -> list[Job]:
    with deps.uow() as uow:
        find_visible(uow, caller, image_id)
        return uow.jobs.for_image(image_id)


# --- the job ------------------------------------------------------------------------------

class ImportHandler:
    """Runs one import; every image write re-checks that this job still holds the lock."""

    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        if p["method"] == COPY_IMAGE:
            return self._copy(deps, job, progress)
        return self._import(deps, job, progress)

    def cleanup(self, deps: Deps, job: Job) -> None:
        """A failed or interrupted import: no staged or half-imported data, image retryable."""
        p = job.payload
        image_id = p["image_id"]
        written = []
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is None or image.properties.get(LOCK) != job.id:
                return
            if p["method"] != COPY_IMAGE and image.status == ImageStatus.IMPORTING:
                image.move_to(ImageStatus.QUEUED)
                written = [loc for loc in image.locations]
                image.locations = []
            left = [s for s in image.properties.get(IMPORTING, "").split(",") if s]
            failed = [s for s in image.properties.get(FAILED, "").split(",") if s]
            image.properties.pop(LOCK, None)
            image.properties[IMPORTING] = ""
            image.properties[FAILED] = ",".join(dict.fromkeys(failed + left))
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        for loc in written:
            deps.store(loc.store).delete(loc.key)
        if p["method"] != COPY_IMAGE:
            deps.store(None).delete(staging_key(image_id))
            deps.store(None).cleanup_partial(staging_key(image_id))   # a write the process never ended
        for name in p["stores"]:
            if name in deps.stores and not deps.stores[name].read_only:
                _discard_partial(deps, name, image_id)

    # glance-direct and web-download --------------------------------------------------------

    def _import(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        image_id, targets = p["image_id"], p["stores"]
        image = self._image(deps, job)
        staging = deps.store(None)
        key = staging_key(image_id)
        limits = project_limits(deps, image.owner)
        if p["method"] == WEB_DOWNLOAD:
            fetched = deps.fetcher.open(p["uri"])
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
        elif not staging.exists(key):
            raise Gone("The staged data is gone", image_id=image_id)
        progress(20)
        disk_format = image.disk_format
        if deps.import_convert_to and disk_format != deps.import_convert_to:
            disk_format = _convert_staged(deps, job, image)
        progress(40)

        done: list[str] = []
        result: StreamResult | None = None
        verdict: FormatVerdict | None = None
        for name in targets:
            try:
                if result is None:
                    # The first store gets the data through the full pipeline: sizes, hashes
                    # and the format verdict come from this pass.
                    writer = deps.store(name).writer(image_id)
                    try:
                        result = stream_into_store(staging.read(key), writer, deps.new_inspector(),
                                                   limits.max_image_size, None)
                        verdict = decide(disk_format, image.container_format, result.report, result.size,
                                         deps.enforce_format_match)
                        writer.commit()
                    except BaseException:
                        writer.abort()
                        result = None
                        raise
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

        with deps.uow(write=True) as uow:
            uow.images.lock_project(image.owner)
            image = self._image(deps, job, uow)
            check_image_bytes(limits, lambda: uow.images.usage(image.owner)[1], result.size)
            image.size, image.virtual_size = result.size, verdict.virtual_size
            image.checksum, image.os_hash_algo, image.os_hash_value = result.md5, "sha512", result.sha512
            image.disk_format = disk_format
            image.locations = [Location(name, image_id) for name in done]
            image.move_to(ImageStatus.ACTIVE)
            image.properties.pop(LOCK, None)
            image.properties[IMPORTING] = ""
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        staging.delete(key)
        return {"image_id": image_id, "stores": done}

    # copy-image ----------------------------------------------------------------------------

    def _copy(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        image_id = p["image_id"]
        image = self._image(deps, job)
        source = next((loc for loc in image.locations
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
                uow.commit()
        for name in copied:
            deps.store(name).delete(image_id)

    # helpers -------------------------------------------------------------------------------

    def _image(self, deps: Deps, job: Job, uow=None) -> Image:
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


def locked_image(deps: Deps, job: Job, uow=None) -> Image:
    """The job's image, still alive and still locked by this job (for update when in a uow)."""
    image_id = job.payload["image_id"]
    if uow is None:
        with deps.uow() as read:
            image = read.images.get(image_id)
    else:
        image = uow.images.get(image_id, for_update=True)
    if image is None or image.status == ImageStatus.DELETED:
        raise Gone("Image was deleted during the import", image_id=image_id)
    if image.properties.get(LOCK) != job.id:
        raise Conflict("Another import took this image over", image_id=image_id)
    return image


def _drop_from(image: Image, key: str, name: str) -> None:
    image.properties[key] = ",".join(s for s in image.properties.get(key, "").split(",") if s and s != name)


def project_limits(deps: Deps, owner: str):
    with deps.uow() as uow:
        return deps.limits_for(uow, owner)


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


def _discard_partial(deps: Deps, name: str, image_id: str) -> None:
    """An interrupted import may have committed data no location points at."""
    with deps.uow() as uow:
        image = uow.images.get(image_id)
    if image is None or not any(loc.store == name for loc in image.locations):
        try:
            deps.store(name).delete(image_id)
            deps.store(name).cleanup_partial(image_id)
        except BackendUnavailable:
            pass


def _convert_staged(deps: Deps, job: Job, image: Image) -> str:
    """Convert the staged data to the operator's format; returns the new disk format.

    The data is inspected first (qemu-img never sees content the inspector refused) and
    the conversion is told the inspected format.
    """
    target = deps.import_convert_to
    if target not in DISK_FORMATS:
        raise Invalid(f"Conversion target '{target}' is not a disk format")
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
                while chunk := f.read(4 << 20):
                    writer.write(chunk)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    finally:
        deps.disks.discard_work(job.id)
    return target
