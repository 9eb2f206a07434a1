"""Aries server and volume routes on the core inventory, under /aries/api/v1 (routes.PREFIX)."""

from __future__ import annotations


from fastapi import Depends, Request

from vmimage.core.inventory import ServerQuery
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import refs
from vmimage.core.services import servers as svc
from vmimage.faces.aries import translate as t
from vmimage.faces.aries.auth import aries_caller
from vmimage.faces.contract import deps, face_router
from vmimage.faces.aries import schemas
from vmimage.faces.bodies import body_of

PREFIX = "/aries/api/v1"
router = face_router(prefix=PREFIX)


def _images_of(request: Request, who: Caller, servers: list) -> dict:
    ids = [d.image_id for s in servers for d in s.disks] + [s.image_id for s in servers]
    return refs.visible_images(deps(request), who, ids)


@router.post("/server/create")
def create_server(request: Request, who: Caller = Depends(aries_caller),
                  body: dict = Depends(body_of(schemas.CreateServer))) -> dict:
    spec, image_ref = t.create_server_body(body)
    image = refs.find_image_by_ref(deps(request), who, image_ref)
    server = svc.create_server(deps(request), who, {**spec, "image_id": image.id})
    return t.created_server(server, {image.id: image})


@router.get("/server")
def list_servers(request: Request, who: Caller = Depends(aries_caller)) -> list:
    status, name, page, size = t.server_query(dict(request.query_params))
    query = ServerQuery(status=status, name_contains=name, newest_first=True,
                        page=PageRequest.numbered(page, size, counted=False))
    found = svc.list_servers(deps(request), who, query).items
    images = _images_of(request, who, found)
    return [t.server(s, images) for s in found]


@router.get("/server/{server_ref}")
def describe_server(request: Request, server_ref: str, who: Caller = Depends(aries_caller)) -> dict:
    server = refs.find_server_by_ref(deps(request), who, server_ref)
    return t.server(server, _images_of(request, who, [server]))


def _server_action(action: str):
    def act(request: Request, server_ref: str | None = None, who: Caller = Depends(aries_caller)) -> dict:
        server = refs.find_server_by_ref(deps(request), who, server_ref)
        if action == "destroy":      # destroy and delete both drop the server with its disks
            svc.delete_server(deps(request), who, server.id)
        else:
            svc.server_action(deps(request), who, server.id, action)
        return {"result": True}
    return act


for _action in ("start", "stop", "reboot", "destroy"):
    router.add_api_route(f"/server/{_action}", _server_action(_action), methods=["POST"],
                         name=f"server_{_action}")


@router.delete("/server/delete")
def delete_server(request: Request, server_ref: str | None = None, who: Caller = Depends(aries_caller)) -> dict:
    server = refs.find_server_by_ref(deps(request), who, server_ref)
    svc.delete_server(deps(request), who, server.id)
    return {"result": True}


@router.post("/volume/create")
def create_volume(request: Request, who: Caller = Depends(aries_caller),
                  body: dict = Depends(body_of(schemas.CreateVolume))) -> dict:
    volume = svc.create_volume(deps(request), who, t.create_volume_body(body))
    return {**t.volume(volume, {}), "type": body["type"]}


@router.get("/volume")
def list_volumes(request: Request, who: Caller = Depends(aries_caller)) -> dict:
    found = svc.list_volumes(deps(request), who)[::-1]
    images = refs.visible_images(deps(request), who, [v.image_id for v in found])
    return {"volumes": [t.volume(v, images) for v in found]}


@router.delete("/volume/delete")
def delete_volume(request: Request, volume_ref: str | None = None, who: Caller = Depends(aries_caller)) -> dict:
    volume = refs.find_volume_by_ref(deps(request), who, volume_ref)
    svc.delete_volume(deps(request), who, volume.id)
    return {"success": True}
