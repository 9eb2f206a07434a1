"""The Aries dialect under /aries/api/v1: image routes (servers and volumes in inventory.py)."""

from __future__ import annotations


from fastapi import Depends, Request

from vmimage.core.policy import Caller, is_owner
from vmimage.core.services import images as svc
from vmimage.core.services import refs
from vmimage.core.services.host_files import import_host_file
from vmimage.faces.aries import inventory
from vmimage.faces.aries import translate as t
from vmimage.faces.aries.auth import aries_caller
from vmimage.faces.contract import deps, face_router
from vmimage.faces.aries import schemas
from vmimage.faces.bodies import body_of

PREFIX = inventory.PREFIX
router = face_router(prefix=PREFIX)


@router.post("/image/create")
def create_image(request: Request, who: Caller = Depends(aries_caller),
                 body: dict = Depends(body_of(schemas.CreateImage))) -> dict:
    attributes, source_path = t.create_image_body(body)
    if source_path is None:     # a record without data: listed and described, refused by server/create
        image = svc.create_image(deps(request), who, attributes, {}, unique_name=True)
    else:
        image = import_host_file(deps(request), who, source_path, attributes, {}, unique_name=True)
    return {"image": t.image(image, updated_at=False)}


# Registered before /image/{image_id}: "list" and "delete" are not ids.
@router.get("/image/list")
def list_images(request: Request, who: Caller = Depends(aries_caller)) -> list:
    query = t.image_query(dict(request.query_params))
    return [t.image(i, source_path=False) for i in svc.list_images(deps(request), who, query).items]


@router.delete("/image/delete")
def delete_image(request: Request, image_ref: str | None = None, who: Caller = Depends(aries_caller)) -> dict:
    image = refs.find_image_by_ref(deps(request), who, image_ref)
    svc.delete_image(deps(request), who, image.id)
    return {"result": True}


@router.get("/image/{image_id}")
def describe_image(request: Request, image_id: str, who: Caller = Depends(aries_caller)) -> dict:
    image = refs.load_image_by_seq(deps(request), who, t.positive_int(image_id, "id"))
    return t.image(image, source_path=is_owner(who, image))


@router.put("/image")
def update_image(request: Request, who: Caller = Depends(aries_caller),
                 body: dict = Depends(body_of(schemas.UpdateImage))) -> dict:
    seq, changes = t.update_image_body(body)
    image = refs.load_image_by_seq(deps(request), who, seq)
    return t.image(svc.update_image(deps(request), who, image.id, changes, unique_name=True))

