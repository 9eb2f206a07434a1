"""The face contract: what a face exports so the app can mount it, and all it may use.

A face is one folder under vmimage/faces/ whose __init__.py exports FACE (a Face). It
imports only vmimage.core, this module and the shared helpers (vmimage.faces.http, .limits,
.bodies, .errors, .signed, .schemas). docs/adding-a-face.md walks
through one.
"""

from __future__ import annotations

import inspect
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from vmimage.core.errors import Invalid, VmImageError
from vmimage.core.policy import Caller
from vmimage.core.ports import Identity
from vmimage.core.services.deps import Deps


REGION_PREFIX = "/region/"


def region_endpoint(base: str, region: str, default_region: str) -> str:
    """The image endpoint of a region: the service's root for the default region, else the
    root under /region/NAME (each answers for its region's images only; faces/mount.py)."""
    return base if region == default_region else f"{base}{REGION_PREFIX}{region}"


@dataclass(frozen=True)
class FaceContext:
    """What a face may touch: the core's use-case dependencies, the identity port, the
    deployment settings every face shows on the wire, and the face's own settings."""
    deps: Deps
    identity: Identity
    public_url: str | None = None     # the address clients reach the service at (links, catalog)
    region: str = "RegionOne"
    # The service's environment, from which each face reads its own settings when mounted.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    settings: Any = None              # this face's own (Face.settings), set by mount.face_app

    def base_url(self, request: Request) -> str:
        if self.public_url:     # a regional endpoint's links stay under its prefix
            return self.public_url.rstrip("/") + request.scope.get("state", {}).get("region_prefix", "")
        return str(request.base_url).rstrip("/")


def face_context(request: Request) -> FaceContext:
    """FastAPI dependency: the context the app mounted the face with."""
    return request.state.face_context


def env_list(environ: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated setting; blanks dropped."""
    return [part.strip() for part in environ.get(name, "").split(",") if part.strip()]


def env_flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


def deps(request: Request) -> Deps:
    """FastAPI dependency: the core's dependencies, for handing to a use case."""
    return face_context(request).deps


class FaceRoute(APIRoute):
    """A face's route, for routes in the face's app itself (mount.face_app), not in a router
    included in another.

    A face's app tries its routes in turn, and most are not the request's: this one refuses
    a path that does not start with its literal head (its path up to the first parameter) at
    once, before FastAPI's matching (context lookups and a regex). And an async endpoint that
    takes only the request and answers a Response (the routes that read their own body) is
    called directly, without FastAPI's parameter machinery, which would have nothing to do."""

    def __init__(self, path: str, endpoint: Callable, **options) -> None:
        super().__init__(path, endpoint, **options)
        self.literal_head = self.path_format.split("{", 1)[0]
        request_param = self.dependant.request_param_name
        if request_param is not None and _takes_only_the_request(self):
            self.app = _request_only_app(endpoint, request_param)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (scope["type"] == "http" and not scope.get("root_path")
                and not scope["path"].startswith(self.literal_head)):
            return Match.NONE, {}
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            utf8_url(scope)
        await super().handle(scope, receive, send)


def utf8_url(scope: Scope) -> None:
    """Invalid (400, in the face's dialect) when the path or the query, percent-decoded, is
    not UTF-8 text ("%ED%B2%80", a lone surrogate's bytes; "%FF"): the server would hand the
    route replacement characters (U+FFFD), not what the client sent."""
    for what, raw in (("path", scope.get("raw_path") or b""), ("query string", scope.get("query_string") or b"")):
        if b"%" in raw or not raw.isascii():
            try:
                unquote_to_bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise Invalid(f"The {what} is not UTF-8 text once percent-decoded", reason="not_unicode") from None


_OTHER_INPUTS = ("path_params", "query_params", "header_params", "cookie_params", "body_params", "dependencies",
                 "websocket_param_name", "http_connection_param_name", "response_param_name",
                 "background_tasks_param_name", "security_scopes_param_name")


def _takes_only_the_request(route: APIRoute) -> bool:
    """An async endpoint whose one input is the request and which answers a Response itself
    (the routes that read their own body): FastAPI has nothing to resolve or render for it."""
    dependant = route.dependant
    if not inspect.iscoroutinefunction(route.endpoint) or dependant.request_param_name is None:
        return False
    if any(getattr(dependant, name) for name in _OTHER_INPUTS):
        return False
    try:
        answer = typing.get_type_hints(route.endpoint).get("return")
    except Exception:
        return False
    return isinstance(answer, type) and issubclass(answer, Response)


def _request_only_app(endpoint: Callable, name: str):
    """The ASGI app of such a route: the request in, the endpoint's Response out. Its errors
    go to the face's error table as any route's do (the app's exception middleware)."""
    async def app(scope: Scope, receive, send) -> None:
        response = await endpoint(**{name: Request(scope, receive, send)})
        await response(scope, receive, send)
    return app


def face_router(**options) -> APIRouter:
    """A face's router (APIRouter's options): its routes are FaceRoutes."""
    return APIRouter(route_class=FaceRoute, **options)


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
    below = prefix.rstrip("/") + "/"

    def claims(conn: HTTPConnection) -> bool:
        path = conn.scope["path"]     # as conn.url.path, without parsing a URL per face and request
        return path == prefix or path.startswith(below)
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
    settings: reads the face's own settings from the service's environment (VMIMAGE_*
    variables) once, when the face is mounted; its handlers find them in
    face_context(request).settings.
    """
    name: str
    claims: Callable[[HTTPConnection], bool]
    routers: Callable[[FaceContext], Sequence[APIRouter]]
    errors: ErrorTable
    caller: Callable[..., Caller | Awaitable[Caller]]     # sync or async, as FastAPI takes either
    request_id_header: str = "x-openstack-request-id"
    new_request_id: Callable[[], str] = openstack_request_id
    settings: Callable[[Mapping[str, str]], Any] = lambda _environ: None
