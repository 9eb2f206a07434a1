"""The Glance-shaped routes as IMS serves them to signed requests: /v2/images (create with
__os_version, show, list, update, delete with a body, data upload), tags and members."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.members import Member
from vmimage.core.policy import Caller
from vmimage.core.services import images as svc
from vmimage.core.services import key_value_tags as kv
from vmimage.core.services import members as msvc
from vmimage.core.services.image_data import upload_image_data
from vmimage.faces.contract import deps, face_router
from vmimage.faces.http import int_param, iso_time, stream_into
from vmimage.faces.huawei_ims import translate as t
from vmimage.faces.limits import streams_body
from vmimage.faces.schemas import IMAGE_SCHEMAS
from vmimage.faces.huawei_ims.auth import body_object, body_value, ims_caller, same_project

router = face_router()


@router.post("/v2/images", status_code=201)
def create_image(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)):
    attributes, properties = t.glance_create(body)
    image = svc.create_image(deps(request), who, attributes, properties, unique_name=True)
    return JSONResponse(t.image_info(image, who.project_id), status_code=201)


@router.get("/v2/images")
def list_images(request: Request, who: Caller = Depends(ims_caller)) -> dict:
    query = t.list_query(dict(request.query_params), who.project_id)
    return {"images": [t.image_info(i, who.project_id) for i in svc.list_images(deps(request), who, query).items],
            "schema": "/v2/schemas/images", "first": "/v2/images"}


@router.get("/v2/images/{image_id}")
def show_image(request: Request, image_id: str, who: Caller = Depends(ims_caller)) -> dict:
    return t.image_info(svc.load_visible(deps(request), who, image_id), who.project_id)


# The SDK sends Glance's v2.1 patch media type (signed as an unsigned payload, like every body
# that is not JSON); plain JSON and v2.0's patch are read alike.
PATCH_MEDIA_TYPES = ("application/json", "application/openstack-images-v2.1-json-patch",
                     "application/openstack-images-v2.0-json-patch")


@router.patch("/v2/images/{image_id}")
def update_image(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                 body: Any = Depends(body_value)) -> dict:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in PATCH_MEDIA_TYPES:
        raise Invalid(f"A patch must be sent as one of {', '.join(PATCH_MEDIA_TYPES)}")
    changes = t.patch_changes(body, glance=True)
    return t.image_info(svc.update_image(deps(request), who, image_id, changes, unique_name=True), who.project_id)


@router.delete("/v2/images/{image_id}", status_code=204)
def delete_image(request: Request, image_id: str, who: Caller = Depends(ims_caller),
                 body: Any = Depends(body_value)) -> Response:
    # {"delete_backup": false}: there are no backups to keep
    if body is not None and not isinstance(body, dict):
        raise Invalid("The body must be a JSON object")
    svc.delete_image(deps(request), who, image_id)
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/file", status_code=204)
@streams_body
async def upload(request: Request, image_id: str, who: Caller = Depends(ims_caller)) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip()
    if media != "application/octet-stream":
        raise Invalid("Image data must be sent as application/octet-stream")
    raw = request.headers.get("content-length")
    declared = None if raw is None else int_param(raw, "content-length")
    await stream_into(request, lambda chunks: upload_image_data(deps(request), who, image_id, chunks, None, declared))
    return Response(status_code=204)


# --- tags --------------------------------------------------------------------------------------

@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(request: Request, image_id: str, tag: str, who: Caller = Depends(ims_caller)) -> Response:
    svc.add_tag(deps(request), who, image_id, tag)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
def delete_tag(request: Request, image_id: str, tag: str, who: Caller = Depends(ims_caller)) -> Response:
    svc.delete_tag(deps(request), who, image_id, tag)
    return Response(status_code=204)


def _key_value_tags(tags: Iterable[str]) -> list[dict]:
    return [{"key": k, "value": v} for k, _, v in sorted(tag.partition("=") for tag in tags)]


@router.get("/v2/{project_id}/images/{image_id}/tags")
def list_image_tags(request: Request, project_id: str, image_id: str, who: Caller = Depends(ims_caller)) -> dict:
    same_project(who, project_id)
    return {"tags": _key_value_tags(svc.load_visible(deps(request), who, image_id).tags)}


@router.post("/v2/{project_id}/images/{image_id}/tags", status_code=204)
def add_image_tag(request: Request, project_id: str, image_id: str, who: Caller = Depends(ims_caller),
                  body: dict = Depends(body_object)) -> Response:
    same_project(who, project_id)
    tag = body.get("tag")
    if not isinstance(tag, dict):
        raise Invalid("'tag' must be {key, value}", field="tags")
    kv.set_tags(deps(request), who, image_id, [(tag.get("key"), "" if tag.get("value") is None else tag["value"])])
    return Response(status_code=204)


@router.delete("/v2/{project_id}/images/{image_id}/tags/{key}", status_code=204)
def delete_image_tag(request: Request, project_id: str, image_id: str, key: str,
                     who: Caller = Depends(ims_caller)) -> Response:
    same_project(who, project_id)
    kv.delete_tags(deps(request), who, image_id, [(key, None)], must_exist=True)
    return Response(status_code=204)


# --- members -----------------------------------------------------------------------------------

def member_body(m: Member) -> dict:
    return {"image_id": m.image_id, "member_id": m.member_id, "status": m.status.value,
            "created_at": iso_time(m.created_at), "updated_at": iso_time(m.updated_at),
            "schema": "/v2/schemas/member"}


@router.post("/v2/images/{image_id}/members")
def add_member(request: Request, image_id: str, who: Caller = Depends(ims_caller),
               body: dict = Depends(body_object)) -> dict:
    member = t.text(body, "member", required=True)
    return member_body(msvc.add_member(deps(request), who, image_id, member))


@router.get("/v2/images/{image_id}/members")
def list_members(request: Request, image_id: str, who: Caller = Depends(ims_caller)) -> dict:
    return {"members": [member_body(m) for m in msvc.list_members(deps(request), who, image_id)],
            "schema": "/v2/schemas/members"}


@router.get("/v2/images/{image_id}/members/{member_id}")
def show_member(request: Request, image_id: str, member_id: str, who: Caller = Depends(ims_caller)) -> dict:
    return member_body(msvc.get_member(deps(request), who, image_id, member_id))


@router.put("/v2/images/{image_id}/members/{member_id}")
def update_member(request: Request, image_id: str, member_id: str, who: Caller = Depends(ims_caller),
                  body: dict = Depends(body_object)) -> dict:
    status = t.text(body, "status", required=True)
    return member_body(msvc.update_member(deps(request), who, image_id, member_id, status))


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
def remove_member(request: Request, image_id: str, member_id: str, who: Caller = Depends(ims_caller)) -> Response:
    msvc.remove_member(deps(request), who, image_id, member_id)
    return Response(status_code=204)


# IMS's own member routes: several images and projects at once, as a job; lists per project.

@router.post("/v1/cloudimages/members")
def batch_add_members(request: Request, who: Caller = Depends(ims_caller), body: dict = Depends(body_object)) -> dict:
    return {"job_id": msvc.submit_member_batch(deps(request), who, "add", body.get("images"),
                                               body.get("projects")).id}


@router.delete("/v1/cloudimages/members")
def batch_delete_members(request: Request, who: Caller = Depends(ims_caller),
                         body: dict = Depends(body_object)) -> dict:
    return {"job_id": msvc.submit_member_batch(deps(request), who, "remove", body.get("images"),
                                               body.get("projects")).id}


@router.put("/v1/cloudimages/members")
def batch_update_members(request: Request, who: Caller = Depends(ims_caller),
                         body: dict = Depends(body_object)) -> dict:
    if body.get("project_id") != who.project_id:
        same_project(who, str(body.get("project_id")))
    return {"job_id": msvc.submit_member_batch(deps(request), who, "answer", body.get("images"),
                                               status=body.get("status")).id}


@router.get("/v1/{project_id}/cloudimages/{image_id}/members")
def list_image_members(request: Request, project_id: str, image_id: str, who: Caller = Depends(ims_caller)) -> dict:
    same_project(who, project_id)
    return {"members": [member_body(m) for m in msvc.list_members(deps(request), who, image_id)],
            "schema": "/v2/schemas/members"}


@router.get("/v1/{project_id}/cloudimages/{image_id}/members/{member_id}")
def show_image_member(request: Request, project_id: str, image_id: str, member_id: str,
                      who: Caller = Depends(ims_caller)) -> dict:
    same_project(who, project_id)
    return member_body(msvc.get_member(deps(request), who, image_id, member_id))


# --- schemas -------------------------------------------------------------------------------------

@router.get("/v2/schemas/{name}")
def schema(name: str, who: Caller = Depends(ims_caller)) -> dict:
    """Glance's image and member schemas, the ones the Glance face serves."""
    if name not in IMAGE_SCHEMAS:
        raise NotFound(f"Unknown schema '{name}'")
    return IMAGE_SCHEMAS[name]()
