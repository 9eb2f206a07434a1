"""Image insight as use cases: an inspection job queued whenever an image becomes active (and
on request), the job that reads the image and records its report, and reading the report.

The report lives on the image (Image.insight): {"status": pending (until read) | done | failed,
"job_id", "inspected_at", "error", "report", "filled"}. A failed inspection changes nothing
else: the image stays active and usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vmimage.core import insight
from vmimage.core.errors import Conflict, InspectionFailed, NotFound, VmImageError
from vmimage.core.images import Image, ImageStatus
from vmimage.core.jobs import Job
from vmimage.core.policy import Caller, require_owner
from vmimage.core.ports import BlobStore, RangedSource
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.services.insight_queue import DONE, FAILED, PENDING, RUNNING, queue_inspection, wants_inspection

log = logging.getLogger("vmimage.insight")


def _ranged_reader(store: BlobStore, key: str) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        chunks = store.read(key, offset, offset + length)
        out, got = [], 0
        try:
            for chunk in chunks:      # never more than asked, whatever the store sends
                out.append(chunk[:length - got])
                got += len(out[-1])
                if got >= length:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return b"".join(out)
    return read


def request_inspection(deps: Deps, caller: Caller, image_id: str) -> Job:
    """Inspect again (the image's project, or an admin)."""
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if image.status != ImageStatus.ACTIVE:
            raise Conflict(f"Image in status '{image.status}' cannot be inspected", image_id=image_id)
        if deps.guest_reader is None:
            raise Conflict("Image inspection is off in this deployment", image_id=image_id)
        if not wants_inspection(deps, image):
            raise Conflict(f"A {image.kind.value} image in {image.disk_format} has no system to inspect",
                           image_id=image_id)
        job = queue_inspection(deps, uow, image)
        assert job is not None
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
    deps.submit_job()
    return job


def get_insight(deps: Deps, caller: Caller, image_id: str) -> dict[str, Any]:
    """What the last inspection found (status none when the image was never inspected)."""
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
    return view(image)


def view(image: Image) -> dict[str, Any]:
    found = image.insight or {}
    return {"image_id": image.id, "status": found.get("status", "none"), "job_id": found.get("job_id"),
            "inspected_at": found.get("inspected_at"), "error": found.get("error"),
            "filled": found.get("filled") or [], "report": found.get("report")}


class InspectHandler:
    """The job: read the image's data (a local file, or ranges of an S3 object or a web
    location) in the reader's child process, make the report, fill what the user left unset."""

    def run(self, deps: Deps, job: Job, progress: Any) -> dict:
        image_id = job.image_id or ""
        with deps.uow() as uow:
            image = uow.images.get(image_id)
        if image is None or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
            raise NotFound("The image to inspect is gone or not active", image_id=image_id)
        # No "running" write of its own (the job's status says so): each inspection costs the
        # database three commits (claim, report, job end), beside the creates it must not slow.
        try:
            facts = self._read(deps, image)
            if not facts.get("root"):
                errors = "; ".join(facts.get("errors") or [])
                raise InspectionFailed("no root filesystem with an operating system was found"
                                       + (f" ({errors})" if errors else ""))
        except InspectionFailed as exc:
            reason = insight.failed_reason(exc.message)
            self._record(deps, job, image_id, {"status": FAILED, "error": reason,
                                                "inspected_at": deps.clock().isoformat()})
            raise InspectionFailed(reason, image_id=image_id) from exc
        self._finish(deps, job, image_id, facts)
        return {"image_ids": [image_id]}

    def _read(self, deps: Deps, image: Image) -> dict[str, Any]:
        """A local file when one holds the data (read directly, fastest); else the first
        location whose store can be read by ranges (S3, a web location under the URL policy):
        the reader asks only for the bytes it needs."""
        assert deps.guest_reader is not None
        disk_format = image.disk_format or "raw"
        stores = [(loc, deps.stores.get(loc.store)) for loc in deps.by_weight(image.locations)]
        for loc, store in stores:
            path = store.local_path(loc.key) if store is not None else None
            if path is not None:
                return deps.guest_reader.read(path, disk_format)
        last: str | None = None
        for loc, store in stores:
            if store is None:
                last = f"the image's store '{loc.store}' is not configured"
                continue
            try:
                size = store.size(loc.key)
            except VmImageError as exc:
                last = f"the image's data in store '{store.name}' cannot be read ({exc.message})"
                continue
            return deps.guest_reader.read(RangedSource(size, _ranged_reader(store, loc.key), store.name),
                                          disk_format)
        raise InspectionFailed(last or "the image has no data to read")

    def _record(self, deps: Deps, job: Job, image_id: str, values: dict[str, Any]) -> None:
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is None or (image.insight or {}).get("job_id") != job.id:
                return          # a newer inspection was asked for meanwhile: it records its own
            image.insight = {**image.insight, **values}   # type: ignore[dict-item]
            uow.images.save(image)
            uow.commit()

    def _finish(self, deps: Deps, job: Job, image_id: str, facts: dict[str, Any]) -> None:
        with deps.uow(write=True) as uow:
            image = uow.images.get(image_id, for_update=True)
            if image is None or (image.insight or {}).get("job_id") != job.id:
                return
            report = insight.make_report(facts, insight.declared_of(image))
            filled = insight.fill(image, report)
            image.insight = {"status": DONE, "job_id": job.id, "inspected_at": deps.clock().isoformat(),
                             "error": None, "report": report, "filled": filled}
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()
        log.info("image %s inspected: %s %s, filled %s", image_id, report["os"]["distribution"],
                 report["os"]["version"], filled or "nothing")

    def cleanup(self, deps: Deps, job: Job) -> None:
        """An interrupted reading: the report says so (nothing else was changed)."""
        try:
            self._record_interrupted(deps, job)
        except VmImageError:
            log.exception("recording the end of inspection %s failed", job.id)

    def _record_interrupted(self, deps: Deps, job: Job) -> None:
        with deps.uow(write=True) as uow:
            image = uow.images.get(job.image_id or "", for_update=True)
            if image is None or (image.insight or {}).get("job_id") != job.id:
                return
            if (image.insight or {}).get("status") in (PENDING, RUNNING):
                image.insight = {**(image.insight or {}), "status": FAILED,
                                 "error": "inspection failed: the service stopped before it finished"}
                uow.images.save(image)
                uow.commit()
