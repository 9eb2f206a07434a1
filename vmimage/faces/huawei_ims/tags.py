"""IMS's key/value tag operations (the core's vmimage/core/services/key_value_tags.py): batch
add or delete, batch delete, add or update one, the project's tags, images by tags, and the
tags of the images a filter selects."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response

from vmimage.core.errors import Invalid
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import images as svc
from vmimage.core.services import key_value_tags as kv
from vmimage.faces.contract import deps, face_router
from vmimage.faces.http import int_param
from vmimage.faces.signed import reads_only
from vmimage.faces.huawei_ims import translate as t
from vmimage.faces.huawei_ims.auth import body_object, ims_caller, same_project

router = face_router()


def _pairs(body: dict, name: str, value_required: bool) -> list[tuple[Any, Any]]:
    """[{key, value}] of the body's `name` as (key, value); value None when absent."""
    items = body.get(name)
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise Invalid(f"'{name}' must be a non-empty list of {{key, value}}", field="tags")
    if value_required and any(i.get("value") is None for i in items):
        raise Invalid("Every tag needs a value (it may be empty)", field="tags")
    return [(i.get("key"), i.get("value")) for i in items]


@router.post("/v2/{project_id}/images/{image_id}/tags/action", status_code=204)
def batch_add_or_delete_tags(request: Request, project_id: str, image_id: str, who: Caller = Depends(ims_caller),
                             body: dict = Depends(body_object)) -> Response:
    same_project(who, project_id)
    action = body.get("action")
    if action == "create":
        kv.set_tags(deps(request), who, image_id, _pairs(body, "tags", value_required=True))
    elif action == "delete":
        kv.delete_tags(deps(request), who, image_id, _pairs(body, "tags", value_required=False))
    else:
        raise Invalid("'action' must be create or delete", field="action")
    return Response(status_code=204)


@router.delete("/v1/{project_id}/cloudimages/{image_id}/tags/delete", status_code=204)
def batch_delete_tags(request: Request, project_id: str, image_id: str, who: Caller = Depends(ims_caller),
                      body: dict = Depends(body_object)) -> Response:
    same_project(who, project_id)
    kv.delete_tags(deps(request), who, image_id, _pairs(body, "tags", value_required=False))
    return Response(status_code=204)


@router.put("/v1/cloudimages/tags", status_code=204)
def create_or_update_tags(request: Request, who: Caller = Depends(ims_caller),
                          body: dict = Depends(body_object)) -> Response:
    image_id = t.text(body, "image_id", required=True)
    tag, image_tag = body.get("tag"), body.get("image_tag")
    if (tag is None) == (image_tag is None):
        raise Invalid("Give either 'tag' (\"key.value\") or 'image_tag' ({key, value})", field="tags")
    if tag is not None:
        if not isinstance(tag, str):
            raise Invalid("'tag' must be \"key.value\"", field="tags")
        key, _, value = tag.partition(".")
        pair: tuple[Any, Any] = (key, value)
    else:
        pair = _pairs({"image_tag": [image_tag]}, "image_tag", value_required=True)[0]
    kv.set_tags(deps(request), who, image_id, [pair])
    return Response(status_code=204)


@router.get("/v2/{project_id}/images/tags")
def list_images_tags(request: Request, project_id: str, who: Caller = Depends(ims_caller)) -> dict:
    same_project(who, project_id)
    return {"tags": [{"key": key, "values": values} for key, values in kv.project_tags(deps(request), who).items()]}


def _tag_conditions(body: dict, name: str) -> list[tuple[str, list[str]]]:
    items = body.get(name)
    if items is None:
        return []
    if not isinstance(items, list) or not items or not all(
            isinstance(i, dict) and isinstance(i.get("key"), str)
            and isinstance(i.get("values", []), list) and all(isinstance(v, str) for v in i.get("values", []))
            for i in items):
        raise Invalid(f"'{name}' must be a non-empty list of {{key, values}}", field="tags")
    return [(i["key"], list(i.get("values", []))) for i in items]


def _matches(body: dict) -> dict[str, str]:
    items = body.get("matches")
    if items is None:
        return {}
    if not isinstance(items, list) or not items or not all(
            isinstance(i, dict) and i.get("key") in ("resource_name", "resource_id")
            and isinstance(i.get("value"), str) for i in items):
        raise Invalid("'matches' must be a non-empty list of {key: resource_name|resource_id, value}",
                      field="matches")
    keys = [i["key"] for i in items]
    if len(set(keys)) != len(keys):
        raise Invalid("A 'matches' key is given twice", field="matches")
    return {i["key"]: i["value"] for i in items}


def _count(body: dict, name: str, default: int) -> int:
    """limit and offset: the SDK sends them as strings, numbers are read alike."""
    return default if body.get(name) is None else int_param(body[name], name)


@router.post("/v2/{project_id}/images/resource_instances/action")
@reads_only
def list_image_by_tags(request: Request, project_id: str, who: Caller = Depends(ims_caller),
                       body: dict = Depends(body_object)) -> dict:
    same_project(who, project_id)
    action = body.get("action")
    if action not in ("filter", "count"):
        raise Invalid("'action' must be filter or count", field="action")
    without = body.get("without_any_tag", False)
    if not isinstance(without, bool):
        raise Invalid("'without_any_tag' must be a boolean", field="without_any_tag")
    matches = _matches(body)
    query = kv.TagQuery(
        tags=_tag_conditions(body, "tags"), tags_any=_tag_conditions(body, "tags_any"),
        not_tags=_tag_conditions(body, "not_tags"), not_tags_any=_tag_conditions(body, "not_tags_any"),
        without_any_tag=without, resource_id=matches.get("resource_id"),
        resource_name=matches.get("resource_name"), count_only=action == "count",
        limit=_count(body, "limit", kv.FILTER_LIMIT_DEFAULT), offset=_count(body, "offset", 0))
    total, images = kv.find_by_tags(deps(request), who, query)
    if action == "count":
        return {"total_count": total}
    return {"total_count": total, "resources": [
        {"resource_id": i.id, "resource_name": i.name, "resource_detail": {"status": t.image_info(i, who.project_id)["status"]},
         "tags": [{"key": k, "value": v} for k, v in (kv.split(tag) for tag in i.tags)]} for i in images]}


# GET /v1/cloudimages/tags: the filters of the image list, plus these, read off the ImageInfo
# as IMS shows it (a filter on what the answer shows).
_SHOWN_FILTERS = ("virtual_env_type", "enterprise_project_id")


@router.get("/v1/cloudimages/tags")
def list_tags(request: Request, who: Caller = Depends(ims_caller)) -> dict:
    params = dict(request.query_params)
    limit = int_param(params.pop("limit"), "limit", minimum=1) if "limit" in params else None
    page = int_param(params.pop("page"), "page", minimum=1) if "page" in params else 1
    shown = {k: params.pop(k) for k in _SHOWN_FILTERS if k in params}
    architecture = params.pop("architecture", None)
    if architecture is not None and architecture not in t.ARCHITECTURES:
        raise Invalid("architecture must be x86 or arm", field="architecture")
    query = t.list_query(params, who.project_id)
    query.page = PageRequest.everything()
    if architecture is not None:
        query.architecture = t.ARCHITECTURES[architecture]
    found: set[str] = set()
    for image in svc.list_images(deps(request), who, query).items:
        info = t.image_info(image, who.project_id)
        if all(str(info.get(k)) == v for k, v in shown.items()):
            found.update(f"{key}.{value}" if "=" in tag else tag for tag in image.tags
                         for key, value in [kv.split(tag)])
    tags = sorted(found)
    start = (page - 1) * limit if limit is not None else 0
    return {"tags": tags[start:start + limit] if limit is not None else tags}
