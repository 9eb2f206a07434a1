"""Interoperable import: stage data, then import it (glance-direct), fetch it from a URL
(web-download) or copy an active image's data to more stores (copy-image) — as jobs
(the job itself: import_job.py).

The image carries the import's progress for every reader to see, in reserved properties:
the lock (the id of the job that holds it), the stores still to do, the stores that failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vmimage.core.errors import Conflict, Gone, Invalid
from vmimage.core.images import Image, ImageStatus, require_formats, staging_key
from vmimage.core.jobs import SIDE_LANE_KINDS, Job, JobStatus, new_job_id
from vmimage.core.policy import Caller, require_admin, require_owner
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps
from vmimage.core.services.glance_download import RemoteSource, caller_payload
from vmimage.core.services.images import find_visible
from vmimage.core.services.intake import back_to_queued, gone_if_deleted, start_upload, write_inspected
from vmimage.core.services.jobs import queue_jobs
from vmimage.core.services.reaper import reap_later
from vmimage.core.services.uploads import end_upload

KIND = "image_import"
GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE = "glance-direct", "web-download", "copy-image"
GLANCE_DOWNLOAD = "glance-download"
METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE, GLANCE_DOWNLOAD)
LOCK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
# The status each method starts from.
_NEEDS = {GLANCE_DIRECT: ImageStatus.UPLOADING, WEB_DOWNLOAD: ImageStatus.QUEUED,
          COPY_IMAGE: ImageStatus.ACTIVE, GLANCE_DOWNLOAD: ImageStatus.QUEUED}


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
    remote: RemoteSource | None = None                     # glance-download's source


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
        limits = start_upload(deps, uow, image, ImageStatus.UPLOADING, declared_size)
    staging = deps.store(None)
    try:
        # Sizes and safety now (unsafe content is refused before anyone asks to import it);
        # the hashes come from the import's own pass over this data.
        write_inspected(deps, staging, staging_key(image_id), chunks, image, limits.max_image_size,
                        declared_size, digests=False)
    except BaseException as exc:
        back_to_queued(deps, image_id, ImageStatus.UPLOADING)
        gone_if_deleted(deps, image_id, exc)
        raise
    finally:
        end_upload(deps, image_id)
    with deps.uow() as uow:
        current = uow.images.get(image_id)
    if current is None or current.status != ImageStatus.UPLOADING:
        with deps.uow(write=True) as uow:
            reap_later(deps, uow, staging.name, staging_key(image_id), image_id=image_id)
            uow.commit()
        deps.wake_reaper()
        raise Gone("Image was deleted while its data was staged", image_id=image_id)


# --- import request -----------------------------------------------------------------------

def _target_stores(deps: Deps, req: ImportRequest, image: Image) -> list[str]:
    writable = deps.stores_of_region(deps.region_of(image.region))   # an image's data stays in its region
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
            if name not in deps.stores or (not deps.stores[name].read_only and name not in writable):
                raise Conflict(f"Unknown store '{name}'", store=name)
            if deps.stores[name].read_only:
                raise Conflict(f"Store '{name}' is read-only", store=name)
        targets = list(dict.fromkeys(req.stores))
    elif req.all_stores or (deps.multi_store and deps.import_to_all_stores):
        targets = list(writable)
    else:
        targets = [deps.home_store(image.region)]
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


def claim_import_lock(deps: Deps, uow: UnitOfWork, image: Image) -> None:
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
    if req.method == GLANCE_DOWNLOAD and req.remote is None:
        raise Invalid("glance-download needs 'method.glance_image_id' and 'method.glance_region'")
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        if req.method == COPY_IMAGE:
            require_admin(caller, "copy an image to more stores")
        else:
            require_owner(caller, image)
        try:
            if req.method != GLANCE_DOWNLOAD:       # glance-download takes the source's formats
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
        if req.remote is not None:      # the source is read with the rights of the caller who asked
            job.payload.update({"remote": req.remote.to_payload(), "caller": caller_payload(caller)})
        image.properties.update({IMPORTING: ",".join(targets), FAILED: ""})
        hand_to_job(deps, uow, image, job, to_importing=req.method != COPY_IMAGE)
    return job


def hand_to_job(deps: Deps, uow: UnitOfWork, image: Image, job: Job, to_importing: bool) -> None:
    """Lock the image for the job, persist both, commit and wake the engine."""
    image.properties[LOCK] = job.id
    if to_importing:
        image.move_to(ImageStatus.IMPORTING)
    image.updated_at = job.created_at
    uow.images.save(image)
    queue_jobs(deps, uow, job)
    uow.commit()
    deps.submit_job()


def locked_image(deps: Deps, job: Job, uow: UnitOfWork | None = None) -> Image:
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


def project_limits(deps: Deps, owner: str):
    with deps.uow() as uow:
        return deps.limits_for(uow, owner)


def image_tasks(deps: Deps, caller: Caller, image_id: str) -> list[Job]:
    with deps.uow() as uow:
        find_visible(uow, caller, image_id)
        # Glance's tasks of an image are its imports: not the inspections of the side lane.
        return [job for job in uow.jobs.for_image(image_id) if job.kind not in SIDE_LANE_KINDS]
