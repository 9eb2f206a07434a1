"""A Keystone v3-compatible identity face: discovery and tokens (what clients and Tempest use)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from vmimage.core.errors import Forbidden, NotFound
from vmimage.core.identity import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Token
from vmimage.core.policy import owns
from vmimage.faces.bodies import validated
from vmimage.faces.contract import face_context, face_router, region_endpoint
from vmimage.faces.http import iso_time, parse_json
from vmimage.faces.keystone.schemas import AuthRequest
from vmimage.faces.keystone.settings import keystone_settings

PREFIX = "/identity"
router = face_router(prefix=PREFIX)


def _base(request: Request) -> str:
    return face_context(request).base_url(request)


def _version(request: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{_base(request)}/identity/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


@router.get("")
@router.get("/")
def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": {"values": [_version(request)]}}, status_code=300)


@router.get("/v3")
@router.get("/v3/")
def version(request: Request) -> dict:
    return {"version": _version(request)}


def _ref(id_: str, name: str) -> dict[str, Any]:
    return {"id": id_, "name": name, "domain": {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}}


def _fixed(url: str) -> Callable[[str], str]:
    return lambda _region: url


def token_body(request: Request, token: Token) -> dict[str, Any]:
    base = _base(request)
    body: dict[str, Any] = {
        "methods": token.methods, "expires_at": iso_time(token.expires_at, fraction=True), "issued_at": iso_time(token.issued_at, fraction=True),
        "audit_ids": [token.audit_id], "user": {**_ref(token.user.id, token.user.name),
                                                "password_expires_at": None},
    }
    if token.project is not None:
        context = face_context(request)
        default = context.region
        root = base

        def endpoints(url_of: Callable[[str], str], sid: str) -> list[dict[str, Any]]:
            # One endpoint per region and interface; a region's image endpoint answers for
            # that region's images (faces/mount.py), the identity is the same everywhere.
            return [{"id": f"{sid}-{i}" if region == default else f"{sid}-{region}-{i}", "interface": i,
                     "region": region, "region_id": region, "url": url_of(region)}
                    for region in context.deps.regions for i in ("public", "internal", "admin")]
        body.update({
            "project": _ref(token.project.id, token.project.name),
            "is_domain": False,
            "roles": [{"id": r, "name": r} for r in sorted(token.roles)],
            "catalog": [
                {"type": "image", "name": "glance", "id": "image",
                 "endpoints": endpoints(lambda region: region_endpoint(root, region, default), "image")},
                {"type": "identity", "name": "keystone", "id": "identity",
                 "endpoints": endpoints(lambda _region: f"{root}/identity/v3", "identity")},
            ] + [{"type": kind, "name": kind, "id": kind,
                  "endpoints": [e for e in endpoints(_fixed(url), kind) if e["region"] == default]}
                 for kind, url in keystone_settings(request).catalog_extra],
        })
    return {"token": body}


@router.post("/v3/auth/tokens")
async def issue(request: Request) -> JSONResponse:
    # Keystone's schema: a body of the wrong shape is 400; a null is an absent key.
    body = validated(AuthRequest, parse_json(await request.body())).model_dump(exclude_unset=True,
                                                                               exclude_none=True)
    token = await face_context(request).identity.authenticate(body["auth"],
                                                              request.client.host if request.client else None)
    return JSONResponse(token_body(request, token), status_code=201,
                        headers={"X-Subject-Token": token.id})


def _subject(request: Request) -> Token:
    return face_context(request).identity.subject_token(request.headers.get("x-auth-token", ""),
                                                        request.headers.get("x-subject-token", ""))


@router.get("/v3/auth/tokens")
def check(request: Request) -> JSONResponse:
    token = _subject(request)
    return JSONResponse(token_body(request, token), headers={"X-Subject-Token": token.id})


@router.head("/v3/auth/tokens")
def check_head(request: Request) -> Response:
    _subject(request)
    return Response(status_code=200)


@router.delete("/v3/auth/tokens", status_code=204)
def revoke(request: Request) -> Response:
    token = _subject(request)
    identity = face_context(request).identity
    identity.revoke(token.id, by=identity.validate(request.headers.get("x-auth-token", "")))
    return Response(status_code=204)


@router.get("/v3/projects")
def list_projects(request: Request) -> dict:
    identity = face_context(request).identity
    me = identity.validate(request.headers.get("x-auth-token", "")).as_caller()
    name = request.query_params.get("name")
    found = [p for p in identity.list_projects() if owns(me, p.id) and (not name or p.name == name)]
    return {"projects": [{**_ref(p.id, p.name), "domain_id": p.domain_id, "enabled": p.enabled,
                          "is_domain": False, "parent_id": p.domain_id, "description": "",
                          "links": {"self": f"/identity/v3/projects/{p.id}"}} for p in found],
            "links": {"self": "/identity/v3/projects", "next": None, "previous": None}}


@router.get("/v3/projects/{project_id}")
def show_project(request: Request, project_id: str) -> dict:
    for p in list_projects(request)["projects"]:
        if project_id in (p["id"], p["name"]):
            return {"project": p}
    me = face_context(request).identity.validate(request.headers.get("x-auth-token", "")).as_caller()
    if not me.is_admin:
        raise Forbidden("You are not authorized to see this project")
    raise NotFound("Could not find project")
