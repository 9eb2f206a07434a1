"""JD Cloud's VM image APIs under /v1/regions/{regionId} (reference §5): parse, call a core
use case, render. Every reply is {"requestId", "result"?} (the SDK reads nothing else)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from vmimage.core.errors import Invalid
from vmimage.core.images import new_image_ref
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import images as image_svc
from vmimage.core.services import machine_images as msvc
from vmimage.core.services import server_images as ssvc
from vmimage.faces.contract import deps, face_context, face_router
from vmimage.faces.http import int_param, json_object, parse_json, request_id
from vmimage.faces.jdcloud import translate as t
from vmimage.faces.jdcloud.auth import jd_body, jd_caller
from vmimage.faces.jdcloud.settings import core_region

PREFIX = "/v1/regions"
JD_ID_LENGTH = 10          # img- + 10 lowercase base36


def region(request: Request, region_id: str, _who: Caller = Depends(jd_caller)) -> str:
    """The service's region a regionId names (checked once the caller is known)."""
    found = core_region(request, region_id)
    if found is None:
        raise Invalid(f"Invalid regionId '{region_id}'", field="regionId")
    return found


router = face_router(prefix=PREFIX + "/{region_id}", dependencies=[Depends(region)])


def reply(request: Request, result: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"requestId": request_id(request)}
    if result is not None:
        body["result"] = result
    return JSONResponse(body)


async def body(raw: bytes | None = Depends(jd_body)) -> dict[str, Any]:
    """FastAPI dependency: the signed JSON body, nulls dropped."""
    return t.clean(json_object(parse_json(raw or b"", empty={})))


def query(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


def _login_names(request: Request) -> dict[str, str]:
    """Project id -> name: an image's loginName, its owner's account."""
    return {p.id: p.name for p in face_context(request).identity.list_projects()}


def _pins(request: Request, pins: Any) -> list[str]:
    """JD pins name accounts; here a pin is a project id or name."""
    if not isinstance(pins, list) or not all(isinstance(p, str) for p in pins) or not pins:
        raise Invalid("Parameter pins must be a non-empty list of strings", field="pins")
    projects = {p.name: p.id for p in face_context(request).identity.list_projects()}
    ids = set(projects.values())
    out = []
    for pin in pins:
        if pin not in ids and pin not in projects:
            raise Invalid(f"Unknown pin '{pin}'", field="pins")
        out.append(pin if pin in ids else projects[pin])
    return out


@router.post("/instances/{instance_id}:createImage")
def create_image(request: Request, instance_id: str, who: Caller = Depends(jd_caller),
                 b: dict = Depends(body)) -> JSONResponse:
    ref = new_image_ref(JD_ID_LENGTH)
    ssvc.create_server_image(deps(request), who, instance_id, {
        "name": t.name(b.get("name")), "description": t.description(b.get("description")), "kind": "whole",
        "data_disks": t.data_disks(b.get("dataDisks")), "include_local_data_disks": False, "ref": ref,
        "keep_failed": True})
    return reply(request, {"imageId": ref})


@router.post("/images:createImageFromSnapshots")
def create_image_from_snapshots(request: Request, who: Caller = Depends(jd_caller),
                                b: dict = Depends(body)) -> JSONResponse:
    ref = new_image_ref(JD_ID_LENGTH)
    ssvc.create_snapshots_image(deps(request), who, {
        "name": t.name(b.get("name")), "description": t.description(b.get("description")),
        "disks": t.snapshot_disks(b.get("cloudDisks")), "os": t.os_attributes(b, None), "ref": ref,
        "keep_failed": True})
    return reply(request, {"imageId": ref})


@router.post("/images:copyImages")
def copy_images(request: Request, region_id: str, who: Caller = Depends(jd_caller),
                b: dict = Depends(body)) -> JSONResponse:
    sources = b.get("sourceImageIds")
    if not isinstance(sources, list) or not 1 <= len(sources) <= 10 or not all(isinstance(i, str) for i in sources):
        raise Invalid("Parameter sourceImageIds must list 1 to 10 image ids", field="sourceImageIds")
    destination = region(request, b.get("destinationRegion", region_id), who)
    name = t.name(b["name"]) if "name" in b else None
    description = t.description(b.get("description"))
    machines = [msvc.find_machine_image(deps(request), who, source) for source in sources]
    refs = [new_image_ref(JD_ID_LENGTH) for _ in sources]
    # All copies are checked together and made together (or none).
    ssvc.create_image_copies(deps(request), who, [
        (machine.image.id, {"name": name, "description": description, "ref": ref, "keep_failed": True})
        for machine, ref in zip(machines, refs)], region=destination)
    copies = [{"sourceImageId": source, "destinationImageId": ref} for source, ref in zip(sources, refs)]
    return reply(request, {"copyImages": copies})


@router.get("/images/{image_id}")
def describe_image(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    return reply(request, {"image": t.image(msvc.find_machine_image(deps(request), who, image_id), who,
                                            _login_names(request))})


@router.get("/images")
def describe_images(request: Request, who: Caller = Depends(jd_caller)) -> JSONResponse:
    q = dict(query(request))
    ids = t.indexed(query(request), "ids") or None
    source = q.get("imageSource")
    if source is None and ids is None:
        raise Invalid("Parameter imageSource is required unless ids are given", field="imageSource")
    if source is not None and source not in t.SOURCES:
        raise Invalid(f"Invalid imageSource '{source}'", field="imageSource")
    number = int_param(q.get("pageNumber", "1"), "pageNumber", minimum=1)
    size = int_param(q.get("pageSize", "20"), "pageSize", minimum=10)
    if size > 100:
        raise Invalid("Parameter pageSize must be from 10 to 100", field="pageSize")
    wanted = t.images_query(q, ids, t.indexed(query(request), "instanceIds"),
                            PageRequest.numbered(number, size, field="pageNumber"))
    if wanted is None:
        return reply(request, {"images": [], "totalCount": 0})
    page = msvc.list_machine_images(deps(request), who, wanted)
    names = _login_names(request)
    return reply(request, {"images": [t.image(m, who, names) for m in page], "totalCount": page.total})


@router.delete("/images/{image_id}")
def delete_image(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    msvc.delete_machine_image(deps(request), who, image_id)
    return reply(request)


@router.post("/images/{image_id}:modifyImageAttribute")
def modify_image(request: Request, image_id: str, who: Caller = Depends(jd_caller),
                 b: dict = Depends(body)) -> JSONResponse:
    new_name = t.name(b["name"]) if "name" in b else None
    msvc.update_machine_image(deps(request), who, image_id, new_name, t.description(b.get("description")))
    return reply(request)


@router.post("/images/{image_id}:share")
def share_image(request: Request, image_id: str, who: Caller = Depends(jd_caller),
                b: dict = Depends(body)) -> JSONResponse:
    msvc.share_machine_image(deps(request), who, image_id, _pins(request, b.get("pins")))
    return reply(request)


@router.post("/images/{image_id}:unshare")
def unshare_image(request: Request, image_id: str, who: Caller = Depends(jd_caller),
                  b: dict = Depends(body)) -> JSONResponse:
    msvc.unshare_machine_image(deps(request), who, image_id, _pins(request, b.get("pins")))
    return reply(request)


@router.post("/images/{image_id}:release")
def release_image(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    msvc.release_machine_image(deps(request), who, image_id)
    return reply(request)


@router.post("/images/{image_id}:unrelease")
def unrelease_image(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    msvc.unrelease_machine_image(deps(request), who, image_id)
    return reply(request)


@router.get("/images/{image_id}/members")
def image_members(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    pins = msvc.machine_members(deps(request), who, image_id)
    return reply(request, {"pins": pins, "totalCount": len(pins)})


def _constraints(machine) -> dict[str, Any]:
    return {"imageId": machine.image.ref,
            "imageInstanceTypeConstraint": {"constraintsType": "excludes", "instanceTypes": []}}


@router.get("/images/{image_id}/constraints")
def image_constraints(request: Request, image_id: str, who: Caller = Depends(jd_caller)) -> JSONResponse:
    return reply(request, {"imageConstraints": _constraints(msvc.find_machine_image(deps(request), who, image_id))})


@router.get("/imageConstraints")
def image_constraints_batch(request: Request, who: Caller = Depends(jd_caller)) -> JSONResponse:
    ids = t.indexed(query(request), "ids")
    return reply(request, {"imageConstraints": [
        _constraints(msvc.find_machine_image(deps(request), who, i)) for i in ids]})


@router.get("/quotas")
def quotas(request: Request, who: Caller = Depends(jd_caller)) -> JSONResponse:
    """`image`: the project's images; `imageShare`: the projects one image (imageId) is shared with."""
    wanted = t.filters(query(request)).get("resourceTypes") or ["image"]
    unknown = [r for r in wanted if r not in ("image", "imageShare")]
    if unknown:
        raise Invalid(f"Invalid resourceType '{unknown[0]}'", field="resourceTypes")
    known = {"image": image_svc.project_usage(deps(request), who)["image_count_total"]}
    if "imageShare" in wanted:
        image_id = dict(query(request)).get("imageId")
        if not image_id:
            raise Invalid("Parameter imageId is required for the imageShare quota", field="imageId")
        known["imageShare"] = msvc.machine_share_quota(deps(request), who, image_id)
    return reply(request, {"quotas": [{"resourceType": r, "limit": known[r][0], "used": known[r][1]}
                                      for r in wanted]})
