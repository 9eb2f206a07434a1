"""Glance v2 metadata definitions catalog: /v2/metadefs/... and /v2/schemas/metadefs/{name}.

Translates HTTP to the use cases in core/services/metadefs.py and metadef_items.py and their
results to Glance's bodies; refusals are core errors, rendered by the Glance error handler.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmimage.core import metadefs as md
from vmimage.core.errors import Forbidden, Invalid, NotFound
from vmimage.core.policy import Caller
from vmimage.core.services import metadef_items as items
from vmimage.core.services import metadefs as svc
from vmimage.faces.contract import deps as _deps, face_router
from vmimage.faces.glance_v2.metadef_schemas import METADEF_SCHEMAS
from vmimage.faces.http import caller, caller_async, int_param, iso_time, json_object, parse_json

router = face_router()
NS = "/v2/metadefs/namespaces"
_GENERATED = md.GENERATED      # refused at the top of a request body, as upstream
_TIMESTAMPS = ("created_at", "updated_at")


# --- request side ------------------------------------------------------------------------------

async def _body(request: Request, read_only: tuple[str, ...] = _TIMESTAMPS) -> dict[str, Any]:
    data = json_object(parse_json(await request.body()), "Body expected in request: a JSON object")
    for key in read_only:
        if key in data:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    return data


def _list_query(request: Request) -> md.ListQuery:
    p = request.query_params
    return md.ListQuery(sort_key=p.get("sort_key", "created_at"), sort_dir=p.get("sort_dir", "desc"),
                        marker=p.get("marker") or None, limit=None if p.get("limit") is None else int_param(p["limit"], "limit", minimum=None))


# --- response side -----------------------------------------------------------------------------

def _present(body: dict[str, Any]) -> dict[str, Any]:
    # Upstream leaves unset attributes out rather than sending nulls.
    return {k: v for k, v in body.items() if v is not None}


def association_body(a: md.Association) -> dict[str, Any]:
    return _present({"name": a.resource_type, "prefix": a.prefix, "properties_target": a.properties_target,
                     "created_at": iso_time(a.created_at), "updated_at": iso_time(a.updated_at)})


def namespace_body(ns: md.Namespace, associations: list[md.Association] | None = None) -> dict[str, Any]:
    body = _present({"namespace": ns.namespace, "display_name": ns.display_name, "description": ns.description,
                     "visibility": ns.visibility, "protected": ns.protected, "owner": ns.owner,
                     "created_at": iso_time(ns.created_at), "updated_at": iso_time(ns.updated_at),
                     "self": f"{NS}/{ns.namespace}", "schema": "/v2/schemas/metadefs/namespace"})
    if associations:
        body["resource_type_associations"] = [association_body(a) for a in associations]
    return body


def object_body(ns: str, o: md.MetadefObject) -> dict[str, Any]:
    return _present({"name": o.name, "description": o.description, "required": o.required,
                     "properties": o.properties, "created_at": iso_time(o.created_at),
                     "updated_at": iso_time(o.updated_at), "self": f"{NS}/{ns}/objects/{o.name}",
                     "schema": "/v2/schemas/metadefs/object"})


def property_body(p: md.MetadefProperty) -> dict[str, Any]:
    return {"name": p.name, **p.definition}


def tag_body(tag: md.MetadefTag) -> dict[str, Any]:
    return {"name": tag.name, "created_at": iso_time(tag.created_at), "updated_at": iso_time(tag.updated_at)}


def content_body(c: md.NamespaceContent) -> dict[str, Any]:
    body = namespace_body(c.namespace, c.associations)
    if c.objects:
        body["objects"] = [object_body(c.namespace.namespace, o) for o in c.objects]
    if c.properties:
        body["properties"] = {p.name: p.definition for p in c.properties}
    if c.tags:
        body["tags"] = [{"name": tag.name} for tag in c.tags]
    return body


# --- namespaces --------------------------------------------------------------------------------

@router.get(NS)
def list_namespaces(request: Request, who: Caller = Depends(caller)) -> dict:
    query = _list_query(request)
    raw = request.query_params.get("resource_types")
    resource_types = [r for r in raw.split(",") if r] if raw else None
    found = svc.list_namespaces(_deps(request), who, query, request.query_params.get("visibility"),
                                resource_types)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body: dict[str, Any] = {"namespaces": [namespace_body(ns, assocs) for ns, assocs in found],
                            "first": f"{NS}?{urlencode(params)}" if params else NS,
                            "schema": "/v2/schemas/metadefs/namespaces"}
    if found.more and found.items:
        body["next"] = f"{NS}?{urlencode([*params, ('marker', found.items[-1][0].namespace)])}"
    return body


@router.post(NS, status_code=201)
async def create_namespace(request: Request) -> JSONResponse:
    who = await caller_async(request)
    spec = md.namespace_spec(await _body(request, _GENERATED))
    content = await run_in_threadpool(svc.create_namespace, _deps(request), who, spec)
    return JSONResponse(content_body(content), status_code=201,
                        headers={"Location": f"{NS}/{content.namespace.namespace}"})


@router.get(NS + "/{ns}")
def show_namespace(request: Request, ns: str, who: Caller = Depends(caller)) -> dict:
    resource_type = request.query_params.get("resource_type") or None
    return content_body(svc.get_namespace(_deps(request), who, ns, resource_type))


@router.put(NS + "/{ns}")
async def update_namespace(request: Request, ns: str) -> dict:
    who = await caller_async(request)
    spec = md.namespace_spec(await _body(request, _GENERATED), with_content=False)
    namespace = await run_in_threadpool(svc.update_namespace, _deps(request), who, ns, spec)
    return namespace_body(namespace)


@router.delete(NS + "/{ns}", status_code=204)
def delete_namespace(request: Request, ns: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_namespace(_deps(request), who, ns)
    return Response(status_code=204)


# --- objects -----------------------------------------------------------------------------------

@router.get(NS + "/{ns}/objects")
def list_objects(request: Request, ns: str, who: Caller = Depends(caller)) -> dict:
    found = items.list_objects(_deps(request), who, ns, _list_query(request))
    return {"objects": [object_body(ns, o) for o in found], "schema": "/v2/schemas/metadefs/objects"}


@router.post(NS + "/{ns}/objects", status_code=201)
async def create_object(request: Request, ns: str) -> JSONResponse:
    who = await caller_async(request)
    spec = md.object_spec(await _body(request, _GENERATED))
    obj = await run_in_threadpool(items.create_object, _deps(request), who, ns, spec)
    return JSONResponse(object_body(ns, obj), status_code=201)


@router.delete(NS + "/{ns}/objects", status_code=204)
def delete_objects(request: Request, ns: str, who: Caller = Depends(caller)) -> Response:
    items.delete_objects(_deps(request), who, ns)
    return Response(status_code=204)


@router.get(NS + "/{ns}/objects/{name}")
def show_object(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> dict:
    return object_body(ns, items.get_object(_deps(request), who, ns, name))


@router.put(NS + "/{ns}/objects/{name}")
async def update_object(request: Request, ns: str, name: str) -> dict:
    who = await caller_async(request)
    spec = md.object_spec(await _body(request, _GENERATED))
    return object_body(ns, await run_in_threadpool(items.update_object, _deps(request), who, ns, name, spec))


@router.delete(NS + "/{ns}/objects/{name}", status_code=204)
def delete_object(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> Response:
    items.delete_object(_deps(request), who, ns, name)
    return Response(status_code=204)


# --- properties --------------------------------------------------------------------------------

@router.get(NS + "/{ns}/properties")
def list_properties(request: Request, ns: str, who: Caller = Depends(caller)) -> dict:
    found = items.list_properties(_deps(request), who, ns)
    return {"properties": {p.name: p.definition for p in found}}


@router.post(NS + "/{ns}/properties", status_code=201)
async def create_property(request: Request, ns: str) -> JSONResponse:
    who = await caller_async(request)
    data = await _body(request)
    prop = await run_in_threadpool(items.create_property, _deps(request), who, ns, data)
    return JSONResponse(property_body(prop), status_code=201)


@router.delete(NS + "/{ns}/properties", status_code=204)
def delete_properties(request: Request, ns: str, who: Caller = Depends(caller)) -> Response:
    items.delete_properties(_deps(request), who, ns)
    return Response(status_code=204)


@router.get(NS + "/{ns}/properties/{name}")
def show_property(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> dict:
    resource_type = request.query_params.get("resource_type") or None
    return property_body(items.get_property(_deps(request), who, ns, name, resource_type))


@router.put(NS + "/{ns}/properties/{name}")
async def update_property(request: Request, ns: str, name: str) -> dict:
    who = await caller_async(request)
    data = await _body(request)
    return property_body(await run_in_threadpool(items.update_property, _deps(request), who, ns, name, data))


@router.delete(NS + "/{ns}/properties/{name}", status_code=204)
def delete_property(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> Response:
    items.delete_property(_deps(request), who, ns, name)
    return Response(status_code=204)


# --- tags --------------------------------------------------------------------------------------

@router.get(NS + "/{ns}/tags")
def list_tags(request: Request, ns: str, who: Caller = Depends(caller)) -> dict:
    found = items.list_tags(_deps(request), who, ns, _list_query(request))
    return {"tags": [{"name": tag.name} for tag in found]}


@router.post(NS + "/{ns}/tags", status_code=201)
async def create_tags(request: Request, ns: str) -> JSONResponse:
    who = await caller_async(request)
    data = await _body(request)
    if set(data) - {"tags"}:
        raise Invalid("Body must be {\"tags\": [{\"name\": ...}, ...]}")
    names = md.tag_names(data.get("tags", []))
    append = request.headers.get("x-openstack-append", "").strip().lower() in ("true", "1", "yes", "on")
    tags = await run_in_threadpool(items.create_tags, _deps(request), who, ns, names, append)
    return JSONResponse({"tags": [{"name": tag.name} for tag in tags]}, status_code=201)


@router.delete(NS + "/{ns}/tags", status_code=204)
def delete_tags(request: Request, ns: str, who: Caller = Depends(caller)) -> Response:
    items.delete_tags(_deps(request), who, ns)
    return Response(status_code=204)


@router.get(NS + "/{ns}/tags/{name}")
def show_tag(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> dict:
    return tag_body(items.get_tag(_deps(request), who, ns, name))


@router.post(NS + "/{ns}/tags/{name}", status_code=201)
def create_tag(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> JSONResponse:
    return JSONResponse(tag_body(items.create_tag(_deps(request), who, ns, name)), status_code=201)


@router.put(NS + "/{ns}/tags/{name}")
async def update_tag(request: Request, ns: str, name: str) -> dict:
    who = await caller_async(request)
    data = await _body(request)
    if set(data) - {"name"}:
        raise Invalid("Body must be {\"name\": \"<new name>\"}")
    tag = await run_in_threadpool(items.update_tag, _deps(request), who, ns, name, data.get("name"))
    return tag_body(tag)


@router.delete(NS + "/{ns}/tags/{name}", status_code=204)
def delete_tag(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> Response:
    items.delete_tag(_deps(request), who, ns, name)
    return Response(status_code=204)


# --- resource types ----------------------------------------------------------------------------

@router.get("/v2/metadefs/resource_types")
def list_resource_types(request: Request, who: Caller = Depends(caller)) -> dict:
    found = svc.list_resource_types(_deps(request), who)
    return {"resource_types": [{"name": r.name, "created_at": iso_time(r.created_at), "updated_at": iso_time(r.updated_at)}
                               for r in found]}


@router.get(NS + "/{ns}/resource_types")
def list_associations(request: Request, ns: str, who: Caller = Depends(caller)) -> dict:
    found = svc.list_associations(_deps(request), who, ns)
    return {"resource_type_associations": [association_body(a) for a in found]}


@router.post(NS + "/{ns}/resource_types", status_code=201)
async def associate(request: Request, ns: str) -> JSONResponse:
    who = await caller_async(request)
    spec = md.association_spec(await _body(request))
    assoc = await run_in_threadpool(svc.associate, _deps(request), who, ns, spec)
    return JSONResponse(association_body(assoc), status_code=201)


@router.delete(NS + "/{ns}/resource_types/{name}", status_code=204)
def dissociate(request: Request, ns: str, name: str, who: Caller = Depends(caller)) -> Response:
    svc.dissociate(_deps(request), who, ns, name)
    return Response(status_code=204)


# --- schemas -----------------------------------------------------------------------------------

@router.get("/v2/schemas/metadefs/{name}")
def schema(name: str, who: Caller = Depends(caller)) -> dict:
    if name not in METADEF_SCHEMAS:
        raise NotFound(f"Unknown schema 'metadefs/{name}'")
    return METADEF_SCHEMAS[name]()
