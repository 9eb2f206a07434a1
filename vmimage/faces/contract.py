"""The face contract: what a face exports so the app can mount it, and all it may use.

A face is one folder under vmimage/faces/ whose __init__.py exports FACE (a Face). It
imports only vmimage.core, this module and the shared helpers (vmimage.faces.http, .limits,
.bodies). docs/adding-a-face.md walks
through one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from vmimage.core.errors import VmImageError
from vmimage.core.policy import Caller
from vmimage.core.ports import Identity
from vmimage.core.services.deps import Deps


@dataclass(frozen=True)
class FaceContext:
    """What a face may touch: the core's use-case dependencies, the identity port, and the
    few deployment settings that show on the wire."""
    deps: Deps
    identity: Identity
    public_url: str | None = None     # the address clients reach the service at (links, catalog)
    region: str = "RegionOne"
    show_locations: bool = False      # Glance's show_multiple_locations
    jd_regions: tuple[str, ...] = ("cn-north-1",)   # the regions the JD Cloud face serves

    def base_url(self, request: Request) -> str:
        return (self.public_url or str(request.base_url)).rstrip("/")


def face_context(request: Request) -> FaceContext:
    """FastAPI dependency: the context the app mounted the face with."""
    return request.state.face_context


def deps(request: Request) -> Deps:
    """FastAPI dependency: the core's dependencies, for handing to a use case."""
    return face_context(request).deps


class ErrorTable(Protocol):
    """A face's one error table: every refusal of a request it claims, in its dialect."""

    def core(self, request: Request, exc: VmImageError) -> Response:
        """A core error."""
    def http(self, request: Request, exc: HTTPException) -> Response:
        """The framework's own refusals: no such route (404), wrong method (405)..."""
    def invalid(self, request: Request, exc: RequestValidationError) -> Response:
        """A request the route's declared parameters refuse (FastAPI's 422)."""
    def internal(self, request: Request) -> Response:
        """An unexpected failure (500); the app has logged it."""


def everything(_conn: HTTPConnection) -> bool:
    return True


def path_prefix(prefix: str) -> Callable[[HTTPConnection], bool]:
    """Claims a path equal to the prefix or below it."""
    def claims(conn: HTTPConnection) -> bool:
        path = conn.url.path
        return path == prefix or path.startswith(prefix.rstrip("/") + "/")
    return claims


def openstack_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass(frozen=True)
class Face:
    """What the app needs to mount a face.

    claims: which requests are this face's (path prefix and/or headers), asked in the order
    the faces are listed in app.py; the first that claims a request gets it, routes and
    errors alike. A face claiming `everything` goes last.
    routers: the face's routers for this deployment (a face may leave some out).
    caller: the FastAPI dependency that resolves who calls (through the identity port).
    """
    name: str
    claims: Callable[[HTTPConnection], bool]
    routers: Callable[[FaceContext], Sequence[APIRouter]]
    errors: ErrorTable
    caller: Callable[..., Caller]
    request_id_header: str = "x-openstack-request-id"
    new_request_id: Callable[[], str] = openstack_request_id
