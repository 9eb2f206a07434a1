"""Adding a location by URL (Glance API 2.17): the image points at data on a web server and
a job reads it once to compute and verify its hashes before the image becomes active."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from vmimage.core.errors import Conflict, Invalid, InvalidSource
from vmimage.core.formats import decide
from vmimage.core.images import Image, ImageStatus, Location
from vmimage.core.jobs import Job, new_job_id
from vmimage.core.policy import Caller, require_owner
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.services.intake import activate_from_stream
from vmimage.core.services.imports import LOCK, claim_import_lock, hand_to_job, locked_image, project_limits
from vmimage.core.services.locations import check_validation_data
from vmimage.core.streaming import DiscardWriter, stream_into_store

KIND = "location_import"
DEFAULT_ALGO = "sha512"


def add_location(deps: Deps, caller: Caller, image_id: str, url: Any, validation: Any,
                 request_id: str | None) -> Job:
    if not isinstance(url, str) or not url:
        raise Invalid("Body must carry a location 'url'")
    validation = check_validation_data(validation if validation is not None else {})
    store = deps.store_for_url(url)
    if store is None:
        raise Invalid(f"Locations with the scheme of '{url}' are not accepted")
    with deps.uow() as uow:
        find_visible(uow, caller, image_id)
    deps.fetcher.check(url)
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        if image.status != ImageStatus.QUEUED:
            raise Conflict(f"Image in status '{image.status}' cannot take a location", image_id=image_id)
        claim_import_lock(deps, uow, image)
        now = deps.clock()
        job = Job(id=new_job_id(), kind=KIND, project_id=image.owner, image_id=image.id, created_at=now,
                  payload={"image_id": image.id, "url": url, "validation_data": validation,
                           "request_id": request_id, "user_id": caller.user_id,
                           "task_input": {"image_id": image.id, "loc_url": url, "validation_data": validation}})
        image.locations = [Location(store.name, url)]
        hand_to_job(deps, uow, image, job, to_importing=True)
    return job


def _also_hash(chunks: Iterable[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


class LocationImportHandler:
    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        image = self._image(deps, job)
        validation = p["validation_data"]
        algo = validation.get("os_hash_algo", DEFAULT_ALGO)
        extra = hashlib.new(algo) if algo not in ("sha512", "md5") else None
        limits = project_limits(deps, image.owner)
        fetched = deps.fetcher.open(p["url"])
        chunks = _also_hash(fetched, extra) if extra is not None else fetched
        result = stream_into_store(chunks, DiscardWriter(), deps.new_inspector(), limits.max_image_size, None)
        verdict = decide(image.disk_format, image.container_format, result.report, result.size,
                         deps.enforce_format_match)
        value = extra.hexdigest() if extra is not None else {"sha512": result.sha512, "md5": result.md5}[algo]
        if validation.get("os_hash_value") not in (None, value):
            raise InvalidSource(f"The data at {p['url']} does not match the given {algo} hash")
        with deps.uow(write=True) as uow:
            image = self._image(deps, job, uow)
            activate_from_stream(deps, uow, image, result, verdict, hash_algo=algo, hash_value=value)
            image.properties.pop(LOCK, None)
            uow.images.save(image)
            uow.commit()
        return {"image_id": image.id}

    def cleanup(self, deps: Deps, job: Job) -> None:
        """Back to queued for another try; the location stays (the web server owns the data)."""
        with deps.uow(write=True) as uow:
            image = uow.images.get(job.payload["image_id"], for_update=True)
            if image is None or image.properties.get(LOCK) != job.id:
                return
            if image.status == ImageStatus.IMPORTING:
                image.move_to(ImageStatus.QUEUED)
            image.properties.pop(LOCK, None)
            image.updated_at = deps.clock()
            uow.images.save(image)
            uow.commit()

    def _image(self, deps: Deps, job: Job, uow: UnitOfWork | None = None) -> Image:
        return locked_image(deps, job, uow)
