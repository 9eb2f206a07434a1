"""JD Cloud images:import, :exportImage and imageTasks on the core's bucket use cases."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from vmimage.core.errors import Invalid
from vmimage.core.images import new_image_ref
from vmimage.core.jobs import Job, JobQuery, JobStatus
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import buckets as bsvc
from vmimage.core.services import jobs as jsvc
from vmimage.core.services import machine_images as msvc
from vmimage.core.services.refs import visible_images
from vmimage.faces.contract import deps, face_router
from vmimage.faces.http import int_param, iso_time
from vmimage.faces.jdcloud import translate as t
from vmimage.faces.jdcloud.auth import jd_caller
from vmimage.faces.jdcloud.routes import JD_ID_LENGTH, PREFIX, body, query, region, reply

router = face_router(prefix=PREFIX + "/{region_id}", dependencies=[Depends(region)])
_ACTIONS = {bsvc.IMPORT_KIND: "ImportImage", bsvc.EXPORT_KIND: "ExportImage"}
_TASK_STATUS = {JobStatus.INIT: "pending", JobStatus.RUNNING: "running", JobStatus.SUCCESS: "finished",
                JobStatus.FAIL: "failed"}


@router.post("/images:import")
def import_image(request: Request, who: Caller = Depends(jd_caller), b: dict = Depends(body)) -> JSONResponse:
    bucket, key = t.object_url(b.get("imageUrl"))
    ref = new_image_ref(JD_ID_LENGTH)
    job = bsvc.import_from_bucket(deps(request), who, bsvc.BucketImport(
        name=t.name(b.get("imageName"), "imageName"), bucket=bucket, key=key,
        disk_format=t.choice(b.get("diskFormat"), t.IMPORT_FORMATS, "diskFormat"),
        min_disk=t.system_disk_gb(b.get("systemDiskSizeGB")), ref=ref,
        attributes=t.import_attributes(b), keep_failed=True))
    return reply(request, {"imageId": ref, "importTaskId": job.id, "taskId": job.id})


@router.post("/images/{image_id}:exportImage")
def export_image(request: Request, image_id: str, who: Caller = Depends(jd_caller),
                 b: dict = Depends(body)) -> JSONResponse:
    bucket = t.bucket_url(b.get("ossUrl"))
    prefix = b.get("ossPrefix") or ""
    if not isinstance(prefix, str):
        raise Invalid("Parameter ossPrefix must be a string", field="ossPrefix")
    machine = msvc.find_machine_image(deps(request), who, image_id)
    disks = machine.all if b.get("isAllDisk") is True else [machine.image]
    jobs = [bsvc.export_to_bucket(deps(request), who, d.id, bucket,
                                  f"{prefix}{machine.image.ref}-{d.device or 'vda'}.{d.disk_format}")
            for d in disks]
    return reply(request, {"exportTaskId": jobs[0].id, "taskId": jobs[0].id, "taskIds": [j.id for j in jobs]})


def _task(job: Job, refs: dict[str, Any]) -> dict[str, Any]:
    p = job.payload
    image_ids = job.entities.get("image_ids") or [p.get("image_id")]
    image = refs.get(image_ids[0])
    obj = f"s3://{p.get('bucket')}/{p.get('key')}"
    export = job.kind == bsvc.EXPORT_KIND
    return {"taskId": job.id, "action": _ACTIONS[job.kind], "taskStatus": _TASK_STATUS[job.status],
            "progress": job.progress, "errorInfo": job.fail_reason, "message": job.error_code,
            "createdTime": iso_time(job.created_at), "finishedTime": iso_time(job.end_time),
            "imageId": image.ref if image else None, "imageName": image.name if image else None,
            "ossUrl": f"s3://{p.get('bucket')}" if export else None, "ossObject": p.get("key") if export else None,
            "ossObjects": [p.get("key")] if export else None, "imageUrl": None if export else obj}


@router.get("/imageTasks")
def image_tasks(request: Request, who: Caller = Depends(jd_caller)) -> JSONResponse:
    q = dict(query(request))
    kinds = tuple(k for k, action in _ACTIONS.items() if q.get("taskAction") in (None, action))
    ids = t.indexed(query(request), "taskIds")
    wanted_status = q.get("taskStatus")
    statuses = None if wanted_status is None else [s for s, shown in _TASK_STATUS.items() if shown == wanted_status]
    number = int_param(q.get("pageNumber", "1"), "pageNumber", minimum=1)
    size = int_param(q.get("pageSize", "10"), "pageSize", minimum=1)
    page = jsvc.list_jobs(deps(request), who, JobQuery(
        kinds=kinds, ids=ids or None, statuses=statuses,
        page=PageRequest.numbered(number, min(size, 100), field="pageNumber")))
    refs = visible_images(deps(request), who, [(j.entities.get("image_ids") or [None])[0] for j in page])
    return reply(request, {"taskSet": [_task(j, refs) for j in page], "totalCount": page.total})
