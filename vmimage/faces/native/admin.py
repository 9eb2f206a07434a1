"""Native API: administration under /vmimage/v1/admin (admins only, the core checks): projects
and quotas, users and role grants, access keys, bucket grants — what `vmimage admin` does, for
any client."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse

from vmimage.core.buckets import BucketGrant
from vmimage.core.errors import Invalid
from vmimage.core.identity import AccessKey, User
from vmimage.core.policy import Caller
from vmimage.core.services import administration as asvc
from vmimage.faces.bodies import body_of
from vmimage.faces.contract import deps, face_router
from vmimage.faces.http import caller, iso_time
from vmimage.faces.native import schemas
from vmimage.faces.native.routes import PREFIX

router = face_router(prefix=PREFIX + "/admin")


def _project(view: asvc.ProjectView) -> dict[str, Any]:
    return {"id": view.project.id, "name": view.project.name, "enabled": view.project.enabled,
            "region": view.project.region,
            "quotas": {"images": view.limits.image_count, "bytes": view.limits.image_bytes}}


def _user(user: User, grants: list[tuple[str, str]]) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "enabled": user.enabled, "default_project_id": user.default_project_id,
            "roles": [{"project_id": p, "role": r} for p, r in grants], "created_at": iso_time(user.created_at)}


def _key(key: AccessKey, user: User | None = None) -> dict[str, Any]:
    body = {"access_key": key.access_key, "user_id": key.user_id, "project_id": key.project_id,
            "enabled": key.enabled, "created_at": iso_time(key.created_at)}
    if user is not None:
        body["user_name"] = user.name
    return body


def _grant(grant: BucketGrant) -> dict[str, Any]:
    return {"bucket": grant.bucket, "project_id": grant.project_id, "created_at": iso_time(grant.created_at)}


def _toggle(action: str) -> bool:
    if action not in ("enable", "disable"):
        raise Invalid(f"Unknown action '{action}'")
    return action == "enable"


@router.get("/projects")
def list_projects(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"projects": [_project(v) for v in asvc.list_projects(deps(request), who)]}


@router.post("/projects", status_code=201)
def create_project(request: Request, who: Caller = Depends(caller),
                   spec: dict = Depends(body_of(schemas.CreateProject))) -> JSONResponse:
    made = asvc.create_project(deps(request), who, spec["name"], spec.get("region"))
    return JSONResponse({"project": {"id": made.id, "name": made.name, "region": made.region}}, status_code=201)


@router.put("/projects/{project}/quotas")
def set_quotas(request: Request, project: str, who: Caller = Depends(caller),
               spec: dict = Depends(body_of(schemas.SetQuotas))) -> dict:
    limits = {name: value for name, value in spec.items() if value is not None}
    return {"project": _project(asvc.set_quotas(deps(request), who, project, limits))}


@router.get("/users")
def list_users(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"users": [_user(u, g) for u, g in asvc.list_users(deps(request), who)]}


@router.post("/users", status_code=201)
def create_user(request: Request, who: Caller = Depends(caller),
                spec: dict = Depends(body_of(schemas.CreateUser))) -> JSONResponse:
    role = spec.get("role", "member")
    user = asvc.create_user(deps(request), who, spec["name"], spec["password"], spec["project"], role)
    return JSONResponse({"user": {"id": user.id, "name": user.name, "default_project_id": user.default_project_id}},
                        status_code=201)


@router.post("/users/{user}/roles", status_code=204)
def grant_role(request: Request, user: str, who: Caller = Depends(caller),
               spec: dict = Depends(body_of(schemas.GrantRole))) -> Response:
    asvc.grant_role(deps(request), who, user, spec["project"], spec["role"])
    return Response(status_code=204)


@router.delete("/users/{user}/roles/{project}/{role}", status_code=204)
def revoke_role(request: Request, user: str, project: str, role: str, who: Caller = Depends(caller)) -> Response:
    asvc.revoke_role(deps(request), who, user, project, role)
    return Response(status_code=204)


@router.post("/users/{user}/actions/{action}")
def user_action(request: Request, user: str, action: str, who: Caller = Depends(caller)) -> dict:
    changed = asvc.set_user_enabled(deps(request), who, user, _toggle(action))
    return {"user": {"id": changed.id, "name": changed.name, "enabled": action == "enable"}}


@router.delete("/users/{user}", status_code=204)
def delete_user(request: Request, user: str, who: Caller = Depends(caller)) -> Response:
    asvc.delete_user(deps(request), who, user)
    return Response(status_code=204)


@router.get("/access-keys")
def list_access_keys(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"access_keys": [_key(k, u) for k, u in asvc.list_access_keys(deps(request), who)]}


@router.post("/access-keys", status_code=201)
def create_access_key(request: Request, who: Caller = Depends(caller),
                      spec: dict = Depends(body_of(schemas.CreateAccessKey))) -> JSONResponse:
    key = asvc.create_access_key(deps(request), who, spec["user"])
    # The one answer that carries the secret: it is never shown again.
    return JSONResponse({"access_key": {**_key(key), "secret_key": key.secret}}, status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.post("/access-keys/{access_key}/actions/{action}")
def access_key_action(request: Request, access_key: str, action: str, who: Caller = Depends(caller)) -> dict:
    return {"access_key": _key(asvc.set_access_key_enabled(deps(request), who, access_key, _toggle(action)))}


@router.delete("/access-keys/{access_key}", status_code=204)
def delete_access_key(request: Request, access_key: str, who: Caller = Depends(caller)) -> Response:
    asvc.delete_access_key(deps(request), who, access_key)
    return Response(status_code=204)


@router.get("/bucket-grants")
def list_bucket_grants(request: Request, who: Caller = Depends(caller)) -> dict:
    return {"bucket_grants": [_grant(g) for g in asvc.list_bucket_grants(deps(request), who)]}


@router.post("/bucket-grants", status_code=201)
def grant_bucket(request: Request, who: Caller = Depends(caller),
                 spec: dict = Depends(body_of(schemas.GrantBucket))) -> JSONResponse:
    grant = asvc.grant_bucket(deps(request), who, spec["bucket"], spec["project"])
    return JSONResponse({"bucket_grant": _grant(grant)}, status_code=201)


@router.delete("/bucket-grants/{bucket}/projects/{project}", status_code=204)
def revoke_bucket(request: Request, bucket: str, project: str, who: Caller = Depends(caller)) -> Response:
    asvc.revoke_bucket(deps(request), who, bucket, project)
    return Response(status_code=204)
