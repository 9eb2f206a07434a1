"""Buckets for users: the operator grants buckets of the object storage to projects; a project
makes images from objects in its buckets and exports images into them, as jobs.

The use cases take plain values (bucket, key, disk_format, os_version, min_disk, store), so
every face (native, Huawei IMS, JD Cloud) calls the same ones. A bucket that is not granted
to the caller's project is refused before anything is created or read, with one message
whatever exists in the object storage.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmimage.core import audit
from vmimage.core.buckets import BucketGrant, check_bucket, check_key, not_granted
from vmimage.core.errors import BackendUnavailable, Conflict, Gone, Invalid, NotFound
from vmimage.core.formats import decide
from vmimage.core.images import DISK_FORMATS, KNOWN_DISK_FORMATS, Image, ImageSource, ImageStatus, require_readable
from vmimage.core.jobs import Job, new_job_id
from vmimage.core.log_context import current_request_id
from vmimage.core.policy import Caller, require_owner, require_writer
from vmimage.core.ports import READ_CHUNK, BlobStore
from vmimage.core.services.deps import Deps
from vmimage.core.services.image_data import begin_saving, receive_data
from vmimage.core.services.images import create_image, find_visible
from vmimage.core.services.intake import discard_failed
from vmimage.core.services.jobs import queue_jobs, require_queue_room

IMPORT_KIND = "image_import_from_bucket"
EXPORT_KIND = "image_export_to_bucket"
_PROBE = 1 << 20          # enough of an object's head to tell its format


# --- grants (the operator's) --------------------------------------------------------------

def grant_bucket(deps: Deps, bucket: str, project_id: str) -> BucketGrant:
    bucket = check_bucket(bucket)
    stores = deps.store_buckets.get(bucket)
    if stores:
        raise Conflict(f"Bucket '{bucket}' holds the images of store {_named(stores)} (VMIMAGE_STORES): a "
                       f"project it were granted to could read and overwrite every project's image data; "
                       f"grant another bucket", bucket=bucket)
    with deps.uow(write=True) as uow:
        for grant in uow.buckets.list(project_id=project_id, bucket=bucket):
            return grant                       # granted already
        grant = BucketGrant(bucket, project_id, deps.clock())
        uow.buckets.add(grant)
        uow.audit.add(audit.event(audit.BUCKET_GRANT, bucket, target_project_id=project_id))
        uow.commit()
    return grant


def refuse_granted_store_buckets(deps: Deps) -> None:
    """At start: a bucket the stores keep images in must not be granted to any project (it
    was granted before a store was configured on it)."""
    with deps.uow() as uow:
        granted = [g for bucket in sorted(deps.store_buckets) for g in uow.buckets.list(bucket=bucket)]
    if granted:
        clash = "; ".join(f"bucket '{g.bucket}' of store {_named(deps.store_buckets[g.bucket])} is granted to "
                          f"project {g.project_id}" for g in granted)
        revoke = "; ".join(f"vmimage admin bucket revoke {g.bucket} --project {g.project_id}" for g in granted)
        raise Conflict(f"Refusing to start: {clash}. Its project could read and overwrite every project's "
                       f"image data. Revoke the grant first ({revoke}) or keep the store in another bucket",
                       bucket=granted[0].bucket)


def _named(stores: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in stores)


def revoke_bucket(deps: Deps, bucket: str, project_id: str) -> None:
    with deps.uow(write=True) as uow:
        if not uow.buckets.remove(bucket, project_id):
            raise NotFound(f"Bucket '{bucket}' is not granted to project {project_id}", bucket=bucket)
        uow.audit.add(audit.event(audit.BUCKET_REVOKE, bucket, target_project_id=project_id))
        uow.commit()


def list_bucket_grants(deps: Deps, project_id: str | None = None) -> list[BucketGrant]:
    with deps.uow() as uow:
        return uow.buckets.list(project_id=project_id)


def _bucket_store(deps: Deps, bucket: str) -> BlobStore:
    if deps.buckets is None:
        raise BackendUnavailable("This service has no object storage configured")
    return deps.buckets.store(bucket)


def _granted_store(deps: Deps, caller: Caller, bucket: object) -> str:
    """The bucket's name once the caller's project may use it; the same refusal otherwise."""
    if not isinstance(bucket, str) or not bucket:
        raise Invalid("'bucket' is required", field="bucket")
    with deps.uow() as uow:
        granted = uow.buckets.is_granted(bucket, caller.project_id)
    if not granted or deps.buckets is None:
        raise not_granted(bucket)
    return bucket


# --- import from a bucket -----------------------------------------------------------------

@dataclass
class BucketImport:
    name: str | None       # name, bucket and key as the caller sent them: checked here
    bucket: str | None
    key: str | None
    disk_format: str | None = None     # None: the format the content has
    os_version: str | None = None
    min_disk: int | None = None
    store: str | None = None           # None: the default store
    ref: str | None = None             # the image's ref, when the face chooses it
    attributes: dict[str, Any] = field(default_factory=dict)   # further core attributes (os_family, description, kind, tags...)
    properties: dict[str, str] = field(default_factory=dict)   # extra properties of the new image
    formats: tuple[str, ...] = ()      # the formats the content may have (none: any)
    unique_name: bool = False          # no other live image of the project may have the name
    image_id: str | None = None        # register the data into this queued image of the caller's
    keep_failed: bool = False          # a failure leaves the new image `killed` (no data) instead of deleting it


def import_set_from_bucket(deps: Deps, caller: Caller, main: BucketImport,
                           companions: list[BucketImport]) -> Job:
    """An image with companion images (data disks) from objects: one job each, the main job
    naming the others as its sub-jobs. Every request is checked, then the main image is made
    first and the companions after it; only when every image exists are the jobs queued, so
    a refusal on the way (a name taken, a quota) leaves no image and no job behind."""
    require_writer(caller)
    requests = [main, *companions]
    checked = [_checked_import(deps, caller, req) for req in requests]
    require_queue_room(deps, caller.project_id, len(requests))
    made: list[Image] = []
    try:
        for req, (bucket, key, _store) in zip(requests, checked):
            made.append(_import_target(deps, caller, req, bucket, key))
        jobs = [_import_job(deps, caller, req, image, *where)
                for req, image, where in zip(companions, made[1:], checked[1:])]
        main_job = _import_job(deps, caller, main, made[0], *checked[0], sub_jobs=[j.id for j in jobs])
        _queue(deps, [*jobs, main_job])
    except BaseException:
        for image, req in zip(made, requests):
            if req.image_id is None:        # a registered image was the caller's before
                discard_failed(deps, image.id)
        raise
    return main_job


def import_from_bucket(deps: Deps, caller: Caller, req: BucketImport) -> Job:
    """A new image made from an object by a job; its id is in the job's entities at once."""
    return import_set_from_bucket(deps, caller, req, [])


def _checked_import(deps: Deps, caller: Caller, req: BucketImport) -> tuple[str, str, str]:
    """(bucket, key, store name) of an import the caller may ask for; nothing is made yet."""
    bucket = _granted_store(deps, caller, req.bucket)
    key = check_key(req.key)
    target = deps.store(req.store or deps.home_store(caller.region))
    if target.read_only:
        raise Invalid(f"Store '{req.store}' is read-only", store=req.store)
    if req.disk_format is not None and req.disk_format not in KNOWN_DISK_FORMATS:
        raise Invalid(f"'disk_format' must be one of {', '.join(KNOWN_DISK_FORMATS)}", field="disk_format")
    if req.image_id is None and (not isinstance(req.name, str) or not req.name):
        raise Invalid("'name' is required", field="name")
    return bucket, key, target.name


def _import_target(deps: Deps, caller: Caller, req: BucketImport, bucket: str, key: str) -> Image:
    """The image the object's data goes into: a new one, or the caller's queued one."""
    if req.image_id is not None:
        return _queued_own_image(deps, caller, req.image_id)
    attributes: dict[str, Any] = {"name": req.name, "container_format": "bare",
                                  "source": ImageSource.OBJECT.value,
                  "source_ref": f"{bucket}:{key}"}
    if req.disk_format is not None:
        attributes["disk_format"] = req.disk_format
    if req.os_version is not None:
        attributes["os_version"] = req.os_version
    if req.min_disk is not None:
        attributes["min_disk"] = req.min_disk
    if req.ref is not None:
        attributes["ref"] = req.ref
    return create_image(deps, caller, {**req.attributes, **attributes}, dict(req.properties),
                        unique_name=req.unique_name)


def _import_job(deps: Deps, caller: Caller, req: BucketImport, image: Image, bucket: str, key: str,
                store: str, sub_jobs: list[str] | None = None) -> Job:
    return Job(new_job_id(), IMPORT_KIND, caller.project_id, created_at=deps.clock(),
               payload={"request_id": current_request_id(), "image_id": image.id, "bucket": bucket,
                        "key": key, "store": store,
                        "registered": req.image_id is not None, "keep_failed": req.keep_failed,
                        "formats": list(req.formats)},
               entities={"image_ids": [image.id], **({"sub_jobs": list(sub_jobs)} if sub_jobs else {})})


def _queue(deps: Deps, jobs: list[Job]) -> None:
    """The jobs in one transaction, then the engine woken once."""
    with deps.uow(write=True) as uow:
        queue_jobs(deps, uow, *jobs)
        uow.commit()
    deps.submit_job()


def _queued_own_image(deps: Deps, caller: Caller, image_id: str) -> Image:
    """An image of the caller's, with no data yet, to register an object's data into."""
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
    require_owner(caller, image)
    if image.status != ImageStatus.QUEUED:
        raise Conflict(f"Image in status '{image.status}' cannot take data", image_id=image_id)
    return image


class BucketImportHandler:
    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        source = _bucket_store(deps, p["bucket"])
        size = source.size(p["key"])
        image = self._with_format(deps, p["image_id"], source, p["key"])
        if p.get("formats") and image.disk_format not in p["formats"]:
            raise Invalid(f"The object is {image.disk_format}; this import takes {', '.join(p['formats'])} only",
                          field="disk_format")
        image = begin_saving(deps, image.id)
        progress(5)
        receive_data(deps, image, _counted(source.read(p["key"], chunk_size=READ_CHUNK), size, progress),
                     store=p["store"])
        return {"image_ids": [p["image_id"]]}

    @staticmethod
    def _with_format(deps: Deps, image_id: str, source: BlobStore, key: str) -> Image:
        """An image created without a disk_format gets the one its content's head shows; the
        full pass then holds the whole content to it."""
        with deps.uow() as uow:
            image = uow.images.get(image_id)
        if image is None or image.status != ImageStatus.QUEUED:
            raise Gone("Image was deleted before its data arrived", image_id=image_id)
        if image.disk_format is not None:
            return image
        inspector = deps.new_inspector()
        probed = 0
        for chunk in source.read(key, 0, _PROBE):
            inspector.feed(chunk)
            probed += len(chunk)
        detected = decide(None, "bare", inspector.report(), probed, enforce_match=False).detected
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is None or image.status != ImageStatus.QUEUED:
                raise Gone("Image was deleted before its data arrived", image_id=image_id)
            image.disk_format = detected
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        return image

    def cleanup(self, deps: Deps, job: Job) -> None:
        """A failed import leaves no image and no data (a registered image stays, queued;
        with keep_failed the new image stays, killed)."""
        p = job.payload
        if not p.get("registered"):      # else receive_data put it back to queued; it keeps no data
            discard_failed(deps, p["image_id"], keep_record=p.get("keep_failed", False))
        if p["store"] in deps.stores:
            try:
                deps.store(p["store"]).cleanup_partial(p["image_id"])    # a write cut short by a crash
            except BackendUnavailable:
                pass


def _counted(chunks: Iterable[bytes], size: int, progress) -> Iterator[bytes]:
    done, step, reported = 0, max(size // 20, 1), 0
    for chunk in chunks:
        done += len(chunk)
        if done - reported >= step:
            reported = done
            progress(5 + 90 * done // max(size, 1))
        yield chunk


# --- export to a bucket -------------------------------------------------------------------

def export_to_bucket(deps: Deps, caller: Caller, image_id: str, bucket: str | None, key: str | None,
                     disk_format: str | None = None) -> Job:
    """The image's bytes (converted with qemu-img when disk_format differs) as an object."""
    require_writer(caller)
    bucket = _granted_store(deps, caller, bucket)
    key = check_key(key)
    if disk_format is not None and disk_format not in DISK_FORMATS:
        raise Invalid(f"'disk_format' must be one of {', '.join(DISK_FORMATS)}", field="disk_format")
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id)
        if image.status != ImageStatus.ACTIVE or not image.locations:
            raise Conflict(f"Image in status '{image.status}' has no data to export", image_id=image_id)
        if disk_format not in (None, image.disk_format):
            require_readable(image.disk_format, f"convert this image to {disk_format}")
        job = Job(new_job_id(), EXPORT_KIND, caller.project_id, created_at=deps.clock(),
                  payload={"request_id": current_request_id(), "image_id": image.id, "bucket": bucket,
                           "key": key, "disk_format": disk_format or image.disk_format},
                  entities={"image_ids": [image.id]})
        queue_jobs(deps, uow, job)
        uow.commit()
    deps.submit_job()
    return job


class BucketExportHandler:
    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        with deps.uow() as uow:
            image = uow.images.get(p["image_id"])
        if image is None or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
            raise Gone("Image is gone or has no data any more", image_id=p["image_id"])
        loc = next((loc for loc in image.locations if loc.store in deps.stores), None)
        if loc is None:
            raise Conflict("Image has no data in a configured store", image_id=image.id)
        target = _bucket_store(deps, p["bucket"])
        source = deps.store(loc.store)
        if p["disk_format"] == image.disk_format:
            self._copy(source.read(loc.key, chunk_size=READ_CHUNK), image, target, p["key"])
        else:
            self._convert(deps, job, image, source, loc.key, target, p["key"], p["disk_format"], progress)
        return {"image_ids": [image.id], "bucket": p["bucket"], "key": p["key"]}

    @staticmethod
    def _copy(chunks: Iterable[bytes], image: Image, target: BlobStore, key: str) -> None:
        """The stored bytes, checked against the image's checksum before the object appears."""
        md5 = hashlib.md5(usedforsecurity=False)
        writer = target.writer(key)
        try:
            for chunk in chunks:
                md5.update(chunk)
                writer.write(chunk)
            if image.checksum and md5.hexdigest() != image.checksum:
                raise Invalid("The stored data does not match the image's checksum", image_id=image.id)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    @staticmethod
    def _convert(deps: Deps, job: Job, image: Image, source: BlobStore, source_key: str,
                 target: BlobStore, key: str, disk_format: str, progress) -> None:
        """Inspect while copying to a scratch file; qemu-img is told the inspected format."""
        work = deps.disks.work_dir(job.id)
        try:
            original, converted = os.path.join(work, "original"), os.path.join(work, "converted")
            inspector, size = deps.new_inspector(), 0
            with open(original, "wb") as f:
                for chunk in source.read(source_key, chunk_size=READ_CHUNK):
                    inspector.feed(chunk)
                    f.write(chunk)
                    size += len(chunk)
            verdict = decide(image.disk_format, image.container_format, inspector.report(), size,
                             deps.enforce_format_match)
            progress(40)
            deps.disks.convert_file(original, verdict.detected, converted, disk_format)
            os.unlink(original)
            progress(70)
            writer = target.writer(key)
            try:
                with open(converted, "rb") as f:
                    while chunk := f.read(READ_CHUNK):
                        writer.write(chunk)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
        finally:
            deps.disks.discard_work(job.id)

    def cleanup(self, deps: Deps, job: Job) -> None:
        deps.disks.discard_work(job.id)
        if deps.buckets is not None:
            try:     # an upload cut short by a crash: only the one to this job's key
                deps.buckets.store(job.payload["bucket"]).cleanup_partial(job.payload["key"])
            except (BackendUnavailable, NotFound):
                pass
