"""Glance v2 interoperable import, stores and tasks: stage, import, image tasks, /v2/info
import and stores, DELETE /v2/stores/{store}/{id}, and the (admin) Tasks API."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmimage.core.errors import Invalid
from vmimage.core.policy import Caller
from vmimage.core.services import imports as isvc
from vmimage.core.services import location_import as lsvc
from vmimage.core.services import stores as ssvc
from vmimage.core.services import tasks as tsvc
from vmimage.core.services.glance_download import remote_source
from vmimage.faces.contract import deps, face_router
from vmimage.faces.glance_v2 import translate as t
from vmimage.faces.glance_v2.common import image_view, receive_body
from vmimage.faces.http import caller, caller_async, int_param, json_object, openstack_error, parse_json, request_id
from vmimage.faces.limits import streams_body

router = face_router()


@router.put("/v2/images/{image_id}/stage", status_code=204)
@streams_body
async def stage(request: Request, image_id: str) -> Response:
    who = await caller_async(request)
    return await receive_body(request, isvc.stage_image_data, deps(request), who, image_id)


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise Invalid(f"'{name}' must be true or false")
    return value


def import_body_to_core(body: Any, header_store: str | None, request_id: str | None) -> isvc.ImportRequest:
    json_object(body)
    method = body.get("method")
    if not isinstance(method, dict) or not isinstance(method.get("name"), str):
        raise Invalid("Body must carry {\"method\": {\"name\": \"<import method>\"}}")
    stores = body.get("stores")
    if stores is not None and (not isinstance(stores, list) or not all(isinstance(s, str) for s in stores)):
        raise Invalid("'stores' must be a list of store ids")
    if header_store is not None:
        if stores is not None:
            raise Invalid("'stores' and the X-Image-Meta-Store header cannot both be given")
        stores = [header_store]
    uri = method.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise Invalid("'method.uri' must be a string")
    remote = None
    if method["name"] == isvc.GLANCE_DOWNLOAD:
        remote = remote_source(method.get("glance_image_id"), method.get("glance_region"),
                               method.get("glance_service_interface"))
    return isvc.ImportRequest(method=method["name"], uri=uri, stores=stores, remote=remote,
                              all_stores=_flag(body, "all_stores", False),
                              all_stores_must_succeed=_flag(body, "all_stores_must_succeed", True),
                              body=body, request_id=request_id)


@router.post("/v2/images/{image_id}/import", status_code=202)
async def start_import(request: Request, image_id: str) -> Response:
    who = await caller_async(request)
    req = import_body_to_core(parse_json(await request.body()), request.headers.get("x-image-meta-store"),
                              request_id(request))
    await run_in_threadpool(isvc.start_import, deps(request), who, image_id, req)
    return Response(status_code=202)


@router.get("/v2/images/{image_id}/tasks")
def image_tasks(request: Request, image_id: str, who: Caller = Depends(caller)) -> dict:
    found = isvc.image_tasks(deps(request), who, image_id)
    return {"tasks": [t.task_to_glance(job) for job in found]}


@router.post("/v2/images/{image_id}/locations", status_code=202)
async def add_location(request: Request, image_id: str) -> Response:
    who = await caller_async(request)
    body = json_object(parse_json(await request.body()))
    await run_in_threadpool(lsvc.add_location, deps(request), who, image_id, body.get("url"),
                            body.get("validation_data"), request_id(request))
    return Response(status_code=202)


@router.get("/v2/images/{image_id}/locations")
def list_locations(request: Request, image_id: str, who: Caller = Depends(caller)) -> list:
    image = ssvc.image_locations(deps(request), who, image_id)
    return t.locations_to_glance(image, image_view(request, who))


@router.get("/v2/info/import")
def info_import(who: Caller = Depends(caller)) -> dict:
    return {"import-methods": {"description": "Import methods available.", "type": "array",
                               "value": list(isvc.METHODS)}}


def _store_body(store: ssvc.StoreInfo, detail: bool) -> dict:
    body: dict[str, Any] = {"id": store.id, "description": store.description}
    if store.default:
        body["default"] = "true"
    if store.read_only:
        body["read-only"] = "true"
    if store.weight is not None:
        body["weight"] = store.weight
    if detail:
        body.update({"type": store.kind, "properties": {}})
    return body


@router.get("/v2/info/stores")
def info_stores(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"stores": [_store_body(s, False) for s in ssvc.list_stores(deps(request), who.region)]}


@router.get("/v2/info/stores/detail")
def info_stores_detail(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"stores": [_store_body(s, True) for s in ssvc.store_details(deps(request), who)]}


@router.delete("/v2/stores/{store}/{image_id}", status_code=204)
def delete_from_store(request: Request, store: str, image_id: str, who: Caller = Depends(caller)) -> Response:
    ssvc.delete_from_store(deps(request), who, store, image_id)
    return Response(status_code=204)


# --- the Tasks API --------------------------------------------------------------------------

@router.post("/v2/tasks", status_code=201)
async def create_task(request: Request) -> JSONResponse:
    who = await caller_async(request)
    body = json_object(parse_json(await request.body()))
    task_input = body.get("input")
    if not isinstance(task_input, dict) or not isinstance(task_input.get("image_properties", {}), dict):
        raise Invalid("'input' must be an object with 'import_from', 'import_from_format' and 'image_properties'")
    attributes, properties = t.create_body_to_core(task_input.get("image_properties", {}))
    job = await run_in_threadpool(tsvc.create_task, deps(request), who, body.get("type"),
                                  task_input, attributes, properties, request_id(request))
    return JSONResponse(t.task_to_glance(job), status_code=201, headers={"Location": f"/v2/tasks/{job.id}"})


@router.get("/v2/tasks")
def list_tasks(request: Request, who: Caller = Depends(caller)) -> dict:
    params = dict(request.query_params)
    limit = params.get("limit")
    page = tsvc.list_tasks(deps(request), who, status=params.get("status"),
                           task_type=params.get("type"), limit=None if limit is None else int_param(limit, "limit"),
                           marker=params.get("marker"), sort_dir=params.get("sort_dir", "desc"))
    body: dict[str, Any] = {"tasks": [_task_summary(j) for j in page.items], "first": "/v2/tasks",
                            "schema": "/v2/schemas/tasks"}
    if page.more and page.items:
        body["next"] = f"/v2/tasks?marker={page.items[-1].id}"
    return body


def _task_summary(job) -> dict:
    body = t.task_to_glance(job)
    body.pop("input"), body.pop("result")   # the list leaves out the bulky parts, as Glance does
    return body


@router.get("/v2/tasks/{task_id}")
def show_task(request: Request, task_id: str, who: Caller = Depends(caller)) -> dict:
    return t.task_to_glance(tsvc.get_task(deps(request), who, task_id))


@router.delete("/v2/tasks/{task_id}")
def delete_task(request: Request, task_id: str, who: Caller = Depends(caller)) -> Response:
    tsvc.get_task(deps(request), who, task_id)      # 404 for what the caller cannot see
    return openstack_error(405, "Tasks cannot be deleted; they expire 48 hours after they end",
                        {"Allow": "GET"})

