"""vmimage's native API under /vmimage/v1: servers, volumes, snapshots, images from them, jobs."""

from __future__ import annotations


from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse

from vmimage.core.errors import Invalid
from vmimage.core.policy import Caller
from vmimage.core.services import images as imgsvc
from vmimage.core.services import insight as insight_svc
from vmimage.core.services import jobs as jsvc
from vmimage.core.services import server_images as isvc
from vmimage.core.services import servers as svc
from vmimage.faces.contract import deps, face_router
from vmimage.faces.bodies import body_of
from vmimage.faces.http import caller
from vmimage.faces.native import schemas
from vmimage.faces.native import translate as t

PREFIX = "/vmimage/v1"
router = face_router(prefix=PREFIX)


@router.post("/servers", status_code=201)
def create_server(request: Request, who: Caller = Depends(caller),
                  spec: dict = Depends(body_of(schemas.CreateServer))):
    return JSONResponse({"server": t.server(svc.create_server(deps(request), who, spec))}, status_code=201)


@router.get("/servers")
def list_servers(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"servers": [t.server(s) for s in svc.list_servers(deps(request), who)]}


@router.get("/servers/{server_id}")
def show_server(request: Request, server_id: str, who: Caller = Depends(caller)) -> dict:
    return {"server": t.server(svc.get_server(deps(request), who, server_id))}


@router.delete("/servers/{server_id}", status_code=204)
def delete_server(request: Request, server_id: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_server(deps(request), who, server_id)
    return Response(status_code=204)


@router.post("/servers/{server_id}/actions/{action}")
def server_action(request: Request, server_id: str, action: str, who: Caller = Depends(caller)) -> dict:
    if action not in ("start", "stop", "reboot"):
        raise Invalid(f"Unknown action '{action}'")
    svc.server_action(deps(request), who, server_id, action)
    return {"server": t.server(svc.get_server(deps(request), who, server_id))}


@router.post("/servers/{server_id}/images", status_code=202)
def server_image(request: Request, server_id: str, who: Caller = Depends(caller),
                 spec: dict = Depends(body_of(schemas.CreateServerImage))):
    job = isvc.create_server_image(deps(request), who, server_id, spec)
    return JSONResponse({"job": t.job(job)}, status_code=202)


@router.post("/volumes", status_code=201)
def create_volume(request: Request, who: Caller = Depends(caller),
                  spec: dict = Depends(body_of(schemas.CreateVolume))):
    return JSONResponse({"volume": t.volume(svc.create_volume(deps(request), who, spec))}, status_code=201)


@router.get("/volumes")
def list_volumes(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"volumes": [t.volume(v) for v in svc.list_volumes(deps(request), who)]}


@router.get("/volumes/{volume_id}")
def show_volume(request: Request, volume_id: str, who: Caller = Depends(caller)) -> dict:
    return {"volume": t.volume(svc.get_volume(deps(request), who, volume_id))}


@router.delete("/volumes/{volume_id}", status_code=204)
def delete_volume(request: Request, volume_id: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_volume(deps(request), who, volume_id)
    return Response(status_code=204)


@router.post("/volumes/{volume_id}/attach")
def attach(request: Request, volume_id: str, who: Caller = Depends(caller),
           spec: dict = Depends(body_of(schemas.AttachVolume))):
    if not isinstance(spec.get("server_id"), str):
        raise Invalid("'server_id' is required")
    return {"volume": t.volume(svc.attach_volume(deps(request), who, volume_id, spec["server_id"],
                                                 spec.get("device")))}


@router.post("/volumes/{volume_id}/detach")
def detach(request: Request, volume_id: str, who: Caller = Depends(caller)) -> dict:
    return {"volume": t.volume(svc.detach_volume(deps(request), who, volume_id))}


@router.post("/volumes/{volume_id}/images", status_code=202)
def volume_image(request: Request, volume_id: str, who: Caller = Depends(caller),
                 spec: dict = Depends(body_of(schemas.CreateVolumeImage))):
    return JSONResponse({"job": t.job(isvc.create_volume_image(deps(request), who, volume_id, spec))},
                        status_code=202)


@router.post("/snapshots", status_code=201)
def create_snapshot(request: Request, who: Caller = Depends(caller),
                    spec: dict = Depends(body_of(schemas.CreateSnapshot))):
    if not isinstance(spec.get("volume_id"), str):
        raise Invalid("'volume_id' is required")
    snap = svc.create_snapshot(deps(request), who, spec["volume_id"], spec.get("name"))
    return JSONResponse({"snapshot": t.snapshot(snap)}, status_code=201)


@router.get("/snapshots")
def list_snapshots(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"snapshots": [t.snapshot(s) for s in svc.list_snapshots(deps(request), who)]}


@router.get("/snapshots/{snapshot_id}")
def show_snapshot(request: Request, snapshot_id: str, who: Caller = Depends(caller)) -> dict:
    return {"snapshot": t.snapshot(svc.get_snapshot(deps(request), who, snapshot_id))}


@router.delete("/snapshots/{snapshot_id}", status_code=204)
def delete_snapshot(request: Request, snapshot_id: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_snapshot(deps(request), who, snapshot_id)
    return Response(status_code=204)


@router.get("/images/{image_id}")
def show_image(request: Request, image_id: str, who: Caller = Depends(caller)) -> dict:
    """An image as the native API knows it: its ids in each dialect (the console's detail page)."""
    return {"image": t.image(imgsvc.load_visible(deps(request), who, image_id))}


@router.get("/jobs")
def list_jobs(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"jobs": [t.job(j) for j in jsvc.list_jobs(deps(request), who)]}


@router.get("/jobs/{job_id}")
def show_job(request: Request, job_id: str, who: Caller = Depends(caller)) -> dict:
    return {"job": t.job(jsvc.get_job(deps(request), who, job_id))}


@router.get("/images/{image_id}/insight")
def image_insight(request: Request, image_id: str, who: Caller = Depends(caller)) -> dict:
    """What the last inspection found inside the image: OS, checks, declared vs detected."""
    return {"insight": insight_svc.get_insight(deps(request), who, image_id)}


@router.post("/images/{image_id}/insight", status_code=202)
def inspect_image(request: Request, image_id: str, who: Caller = Depends(caller)):
    """Inspect the image again; the job's end updates the insight."""
    job = insight_svc.request_inspection(deps(request), who, image_id)
    return JSONResponse({"job": t.job(job)}, status_code=202)
