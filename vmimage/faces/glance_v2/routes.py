"""Glance v2 routes: versions, images, tags, actions, members, schemas, info."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmimage.core.errors import NotFound
from vmimage.core.policy import Caller
from vmimage.core.services import images as svc
from vmimage.core.services import members as msvc
from vmimage.core.services.imports import METHODS
from vmimage.faces.contract import deps, face_context, face_router
from vmimage.faces.glance_v2 import translate as t
from vmimage.faces.glance_v2.common import image_view
from vmimage.faces.glance_v2.schemas import SCHEMAS
from vmimage.faces.bodies import validated
from vmimage.faces.glance_v2.requests import AddMember, UpdateMember
from vmimage.faces.http import caller, caller_async, openstack_error, parse_json
from vmimage.faces.limits import run_on_backend

router = face_router()
VERSIONS = [f"2.{n}" for n in range(18, -1, -1)]


def versions_body(request: Request) -> dict[str, Any]:
    base = face_context(request).base_url(request)
    return {"versions": [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
                          "links": [{"rel": "self", "href": f"{base}/v2/"}]}
                         for i, v in enumerate(VERSIONS)]}


@router.get("/")
def versions_root(request: Request) -> JSONResponse:
    return JSONResponse(versions_body(request), status_code=300)


@router.get("/versions")
def versions(request: Request) -> dict:
    return versions_body(request)


@router.get("/v2/images")
def list_images(request: Request, who: Caller = Depends(caller)) -> dict:
    params = list(request.query_params.multi_items())
    query = t.list_params_to_query(params)
    found = svc.list_images(deps(request), who, query)
    view = image_view(request, who)
    return {"images": [t.image_to_glance(i, view) for i in found.items], "schema": "/v2/schemas/images",
            **t.page_links(params, found)}


@router.get("/v2/images/{image_id}")
def show_image(request: Request, image_id: str, who: Caller = Depends(caller)) -> dict:
    return t.image_to_glance(svc.load_visible(deps(request), who, image_id), image_view(request, who))


@router.delete("/v2/images/{image_id}", status_code=204)
def delete_image(request: Request, image_id: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_image(deps(request), who, image_id)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/deactivate", status_code=204)
def deactivate(request: Request, image_id: str, who: Caller = Depends(caller)) -> Response:
    svc.set_active(deps(request), who, image_id, active=False)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/reactivate", status_code=204)
def reactivate(request: Request, image_id: str, who: Caller = Depends(caller)) -> Response:
    svc.set_active(deps(request), who, image_id, active=True)
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(request: Request, image_id: str, tag: str, who: Caller = Depends(caller)) -> Response:
    svc.add_tag(deps(request), who, image_id, tag)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
def delete_tag(request: Request, image_id: str, tag: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_tag(deps(request), who, image_id, tag)
    return Response(status_code=204)


@router.get("/v2/images/{image_id}/members")
def list_members(request: Request, image_id: str, who: Caller = Depends(caller)) -> dict:
    found = msvc.list_members(deps(request), who, image_id)
    return {"members": [t.member_to_glance(m) for m in found], "schema": "/v2/schemas/members"}


@router.get("/v2/images/{image_id}/members/{member_id}")
def show_member(request: Request, image_id: str, member_id: str, who: Caller = Depends(caller)) -> dict:
    return t.member_to_glance(msvc.get_member(deps(request), who, image_id, member_id))


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
def delete_member(request: Request, image_id: str, member_id: str, who: Caller = Depends(caller)) -> Response:
    msvc.remove_member(deps(request), who, image_id, member_id)
    return Response(status_code=204)


@router.get("/v2/schemas/{name}")
def schema(name: str, who: Caller = Depends(caller)) -> dict:
    if name not in SCHEMAS:
        raise NotFound(f"Unknown schema '{name}'")
    return SCHEMAS[name]()


@router.get("/v2/info/usage")
def usage(request: Request, who: Caller = Depends(caller)) -> dict:
    found = svc.project_usage(deps(request), who)
    return {"usage": {k: {"limit": limit, "usage": used} for k, (limit, used) in found.items()}}


# Routes that read their JSON body themselves, so malformed bodies get Glance's answers.

async def _json(request: Request) -> Any:
    return parse_json(await request.body())


@router.post("/v2/images", status_code=201)
async def create_image(request: Request) -> JSONResponse:
    who = await caller_async(request)
    attributes, properties = t.create_body_to_core(await _json(request))
    found = deps(request)
    image = await run_in_threadpool(svc.create_image, found, who, attributes, properties)
    headers = {"Location": f"/v2/images/{image.id}", "OpenStack-image-import-methods": ",".join(METHODS)}
    if found.multi_store:
        headers["OpenStack-image-store-ids"] = ",".join(found.stores_of_region(image.region))
    return JSONResponse(t.image_to_glance(image, image_view(request, who)), status_code=201, headers=headers)


@router.patch("/v2/images/{image_id}")
async def update_image(request: Request) -> JSONResponse:
    image_id = request.path_params["image_id"]
    who = await caller_async(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type not in (t.PATCH_V20, t.PATCH_V21):
        return openstack_error(415, f"Unsupported Content-Type '{media_type}' for a JSON patch",
                            {"Accept-Patch": t.ACCEPT_PATCH})
    changes = t.patch_to_changes(media_type, await _json(request))
    found = deps(request)        # a new location is reached first: on the web's own threads
    image = await run_on_backend(svc.update_waits_on(found, changes), svc.update_image, found, who, image_id, changes)
    return JSONResponse(t.image_to_glance(image, image_view(request, who)))


@router.post("/v2/images/{image_id}/members")
async def add_member(request: Request) -> JSONResponse:
    image_id = request.path_params["image_id"]
    who = await caller_async(request)
    body = validated(AddMember, await _json(request))
    member = await run_in_threadpool(msvc.add_member, deps(request), who, image_id, body.member)
    return JSONResponse(t.member_to_glance(member))


@router.put("/v2/images/{image_id}/members/{member_id}")
async def update_member(request: Request) -> JSONResponse:
    image_id, member_id = request.path_params["image_id"], request.path_params["member_id"]
    who = await caller_async(request)
    body = validated(UpdateMember, await _json(request))
    member = await run_in_threadpool(msvc.update_member, deps(request), who, image_id,
                                     member_id, body.status)
    return JSONResponse(t.member_to_glance(member))
