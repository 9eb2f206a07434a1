"""Queueing an image's inspection (core/services/insight.py runs it), apart from the use cases
so that every way an image becomes active can call it without importing them."""

from __future__ import annotations

from vmimage.core.images import Image, ImageKind
from vmimage.core.jobs import INSPECT_KIND, Job, new_job_id
from vmimage.core.log_context import current_request_id
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps
from vmimage.core.services.jobs import queue_jobs

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


def wants_inspection(deps: Deps, image: Image) -> bool:
    """Images with a system to read: not data disks, not ISOs, not opaque formats."""
    return (deps.guest_reader is not None and image.kind in (ImageKind.SYSTEM_DISK, ImageKind.WHOLE_MACHINE)
            and image.disk_format not in ("iso", "zvhd", "zvhd2", "aki", "ari"))


def queue_inspection(deps: Deps, uow: UnitOfWork, image: Image, request_id: str | None = None) -> Job | None:
    """An inspection of the image, in the caller's write transaction (the caller saves the
    image and commits). The side lane's jobs take no place in the project's queue, so an image
    becoming active is never refused for want of one."""
    if not wants_inspection(deps, image):
        return None
    job = Job(new_job_id(), INSPECT_KIND, image.owner, payload={"request_id": request_id} if request_id else {},
              created_at=deps.clock(), image_id=image.id, entities={"image_ids": [image.id]})
    queue_jobs(deps, uow, job)
    image.insight = {**(image.insight or {}), "status": PENDING, "job_id": job.id}
    return job


def on_active(deps: Deps, uow: UnitOfWork, image: Image) -> None:
    """The hook of every way an image becomes active with data (core/services/intake.py); the
    inspection's log lines carry the id of the request (or job's request) that made it active."""
    queue_inspection(deps, uow, image, current_request_id())
