"""IMS's own routes: /v2/cloudimages..., /v1/cloudimages..., jobs, quota, the os_version
catalogue and the version documents. Handlers parse, call a core use case, render."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from vmimage.core import os_catalogue
from vmimage.core.errors import Invalid
from vmimage.core.images import CLOUD_DESCRIPTION, CLOUD_IMAGE_NAME
from vmimage.core.jobs import Job
from vmimage.core.policy import Caller
from vmimage.core.services import buckets as bsvc
from vmimage.core.services import images as svc
from vmimage.core.services import jobs as jsvc
from vmimage.core.services import refs
from vmimage.core.services import server_images as isvc
from vmimage.faces.contract import deps, face_context, face_router
from vmimage.faces.huawei_ims import translate as t
from vmimage.faces.huawei_ims.auth import body_object, body_value, ims_caller, same_project

router = face_router()


def job_id_of(job: Job) -> dict:
    return {"job_id": job.id}


def render_job(request: Request, who: Caller, job: Job) -> dict:
    """The job with its parts and the jobs submitted with it, as IMS's sub-jobs."""
    parts = [jsvc.get_job(deps(request), who, part_id)
             for part_id in [*job.entities.get("parts", []), *job.entities.get("sub_jobs", [])]]
    ids = [i for j in [job, *parts] for i in j.entities.get("image_ids", [])]
    return t.job_body(job, refs.visible_images(deps(request), who, ids), parts)


def create_image_job(request: Request, who: Caller, body: dict) -> Job:
    """One of the scenarios of POST /v2/cloudimages/action, chosen by the fields given."""
    t.tags_of(body)      # tags and image_tags are exclusive, whatever the scenario
    t.cloud_fields(body)     # cmk_id refused, memory and enterprise project checked, whatever the scenario
    for key in ("is_config", "is_quick_import"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise Invalid(f"'{key}' must be true or false", field=key)
    if body.get("instance_id") is not None:
        instance_id = t.text(body, "instance_id", required=True)
        return isvc.create_server_image(deps(request), who, instance_id, t.server_image_spec(body),
                                        names=CLOUD_IMAGE_NAME, unique_name=True)
    if body.get("volume_id") is not None or (body.get("image_url") is None and body.get("data_images")):
        t.no_image_fields(body, "from volumes")
    if body.get("volume_id") is not None:
        volume_id = t.text(body, "volume_id", required=True)
        return isvc.create_volume_image(deps(request), who, volume_id, t.volume_image_spec(body),
                                        names=CLOUD_IMAGE_NAME, unique_name=True)
    if body.get("image_url") is not None:
        return import_from_bucket(request, who, body)
    if body.get("data_images"):      # data-disk images only, of the listed volumes
        return isvc.create_volumes_image(deps(request), who, t.data_volume_specs(body),
                                         names=CLOUD_IMAGE_NAME, unique_name=True)
    raise Invalid("One of instance_id, image_url or volume_id is required", field="instance_id")


def import_from_bucket(request: Request, who: Caller, body: dict) -> Job:
    """From an object ("bucket:object" in a bucket granted to the project), with up to three
    data images from objects of their own."""
    return bsvc.import_set_from_bucket(deps(request), who, t.bucket_import(body, "system", t.MIN_DISK_FILE),
                                       t.data_image_imports(body))


@router.post("/v2/cloudimages/action")
@router.post("/v2.1/cloudimages/action")
def create_image(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)) -> dict:
    return job_id_of(create_image_job(request, who, body))


@router.post("/v1/cloudimages/wholeimages/action")
def create_whole_image(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)) -> dict:
    t.tags_of(body)
    if body.get("backup_id") is not None:
        raise Invalid("Whole images from backups are not available", field="backup_id")
    if body.get("vault_id") is not None:             # the whole image is made without a backup
        raise Invalid("vmimage keeps no backup vaults", field="vault_id")
    if body.get("whole_image_type") is not None:     # the backup service's name: backups only
        raise Invalid("'whole_image_type' is for whole images from backups", field="whole_image_type")
    instance_id = t.text(body, "instance_id", required=True)
    spec = {**t.server_image_spec({k: v for k, v in body.items() if k != "data_images"}), "kind": "whole"}
    del spec["data_volumes"]
    return job_id_of(isvc.create_server_image(deps(request), who, instance_id, spec, names=CLOUD_IMAGE_NAME,
                                              unique_name=True))


@router.post("/v1/cloudimages/{image_id}/copy")
@router.post("/v2.1/cloudimages/{image_id}/copy")
def copy_image_in_region(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                         body: dict = Depends(body_object)) -> dict:
    """A copy of one of the project's images in its region (v2.1: the "safe mode", which
    differs in how Huawei runs it, not in what it makes)."""
    _, properties = t.cloud_fields({k: body.get(k) for k in ("cmk_id", "enterprise_project_id")})
    name = t.text(body, "name", required=True)
    return job_id_of(isvc.create_image_copy(
        deps(request), who, image_id, {"name": name, "properties": properties,
                                       "description": CLOUD_DESCRIPTION.check(body.get("description"), "description")},
        own_only=True, unique_name=True, names=CLOUD_IMAGE_NAME))


@router.post("/v1/cloudimages/{image_id}/cross_region_copy")
def copy_image_cross_region(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                            body: dict = Depends(body_object)) -> dict:
    """A copy in another region, for the project `project_name` names there (a project of the
    key's user; Huawei names a region's project after the region). agency_name (the IAM
    agency Huawei copies under) is accepted: vmimage copies under the caller's own rights."""
    if body.get("vault_id") is not None:
        raise Invalid("vmimage keeps no backup vaults", field="vault_id")
    t.text(body, "agency_name", required=True)
    region = t.text(body, "region", required=True)
    project = t.text(body, "project_name", required=True)
    name = t.text(body, "name", required=True)
    target = face_context(request).identity.caller_in_project(who, project)
    if target.region is not None and target.region != region:
        raise Invalid(f"Project '{project}' is not in region '{region}'", field="project_name")
    return job_id_of(isvc.create_image_copy(
        deps(request), who, image_id,
        {"name": name, "description": CLOUD_DESCRIPTION.check(body.get("description"), "description")},
        target=target, region=region, cross_region=True, own_only=True, unique_name=True, names=CLOUD_IMAGE_NAME))


@router.get("/v1/{project_id}/jobs/{job_id}")
def show_job(request: Request, project_id: str, job_id: str, who: Caller = Depends(ims_caller)) -> dict:
    same_project(who, project_id)
    return render_job(request, who, jsvc.get_job(deps(request), who, job_id))


@router.get("/v1/cloudimages/job/{job_id}")
def show_job_progress(request: Request, job_id: str, who: Caller = Depends(ims_caller)) -> dict:
    return render_job(request, who, jsvc.get_job(deps(request), who, job_id))


@router.get("/v2/cloudimages")
def list_images(request: Request, who: Caller = Depends(ims_caller)) -> dict:
    query = t.list_query(dict(request.query_params), who.project_id)
    return {"images": [t.image_info(i, who.project_id) for i in svc.list_images(deps(request), who, query).items]}


@router.patch("/v2/cloudimages/{image_id}")
def update_image(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                 body: Any = Depends(body_value)) -> dict:
    changes = t.patch_changes(body)
    return t.image_info(svc.update_image(deps(request), who, image_id, changes, unique_name=True), who.project_id)


@router.get("/v1/cloudimages/quota")
def show_quota(request: Request, who: Caller = Depends(ims_caller)) -> dict:
    usage = svc.project_usage(deps(request), who)
    limit, used = usage["image_count_total"]
    return {"quotas": {"resources": [
        {"type": "image", "used": used, "quota": limit, "min": 1, "max": limit}]}}


@router.get("/v1/cloudimages/os_version")
def list_os_versions(request: Request, tag: str | None = None, who: Caller = Depends(ims_caller)) -> list:
    return [{"platform": platform, "version_list": [
        {"platform": i.platform, "os_version_key": i.os_version, "os_version": i.os_version,
         "os_bit": i.os_bit, "os_type": i.os_type} for i in infos]}
        for platform, infos in os_catalogue.platforms().items()]


VERSIONS = [{"id": "v2", "status": "CURRENT", "version": "", "min_version": "",
             "links": [{"href": "/v2/", "rel": "self"}], "updated": "2024-01-01T00:00:00Z"},
            {"id": "v1", "status": "SUPPORTED", "version": "", "min_version": "",
             "links": [{"href": "/v1/", "rel": "self"}], "updated": "2024-01-01T00:00:00Z"}]


@router.get("/")
def list_versions(request: Request, who: Caller = Depends(ims_caller)) -> dict:
    return {"versions": VERSIONS}


@router.get("/{version}")
def show_version(request: Request, version: str, who: Caller = Depends(ims_caller)) -> dict:
    found = [v for v in VERSIONS if v["id"] == version]
    if not found:
        raise Invalid(f"Unknown version '{version}'", field="version")
    # Huawei's page shows the document as "version"; the SDK's ShowVersionResponse reads a
    # "versions" list: both, so either reader gets it.
    return {"version": found[0], "versions": found}


def bucket_import(request: Request, who: Caller, body: dict, kind: str, min_disk_range: tuple[int, int],
                  quick: bool = False) -> Job:
    """image_url "bucket:object" -> the core's import from a granted bucket."""
    t.tags_of(body)
    return bsvc.import_from_bucket(deps(request), who, t.bucket_import(body, kind, min_disk_range, quick))


@router.post("/v2/cloudimages/quickimport/action")
@router.post("/v2.1/cloudimages/quickimport/action")
def import_image_quick(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)) -> dict:
    return job_id_of(bucket_import(request, who, body, "system", t.MIN_DISK_QUICK, quick=True))


@router.post("/v1/cloudimages/dataimages/action")
@router.post("/v2.1/cloudimages/dataimages/action")
def create_data_image(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)) -> dict:
    return job_id_of(bucket_import(request, who, body, "data", t.MIN_DISK_DATA))


@router.put("/v1/cloudimages/{image_id}/upload")
def register_image(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                   body: dict = Depends(body_object)) -> dict:
    bucket, key = t.bucket_object(body.get("image_url"), "image_url")
    return job_id_of(bsvc.import_from_bucket(deps(request), who, bsvc.BucketImport(
        name="", bucket=bucket, key=key, image_id=image_id)))


@router.post("/v1/cloudimages/{image_id}/file")
@router.post("/v2.1/cloudimages/{image_id}/file")
def export_image(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                 body: dict = Depends(body_object)) -> dict:
    bucket, key = t.bucket_object(body.get("bucket_url"), "bucket_url")
    return job_id_of(bsvc.export_to_bucket(deps(request), who, image_id, bucket, key,
                                           t.file_format(body.get("file_format"))))
