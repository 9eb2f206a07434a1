"""Mounting faces: each face is an app of its own, with its own error table and request
ids; a request goes to the first face, in the order given, that claims it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from vmimage.core.errors import VmImageError
from vmimage.faces.contract import Face, FaceContext
from vmimage.faces.http import FaceMiddleware

log = logging.getLogger("vmimage")


def face_app(face: Face, context: FaceContext) -> FastAPI:
    """One face as an ASGI app: its routers, every refusal through its error table, its own
    settings in its context."""
    context = replace(context, settings=face.settings(context.environ))
    # FastAPI's own OpenTelemetry hooks are off: vmimage configures no telemetry provider, and
    # asking for the (unconfigured) global ones cost three lookups on every request.
    app = FastAPI(title=f"vmimage {face.name}", redirect_slashes=False, docs_url=None, redoc_url=None,
                  openapi_url=None, telemetry={"tracing": False, "metrics": False, "logs": False})
    # The routers' routes go straight into the app's own route list: an included router is
    # matched route by route through FastAPI's inclusion layer twice per request (a third of
    # a metadata create's framework time), a plain route list once. Routers carry their
    # prefix and dependencies in their routes already; a router nested in another is not
    # supported here (a face lists each of its routers).
    for router in face.routers(context):
        for route in router.routes:
            if not isinstance(route, Route):
                raise TypeError(f"face {face.name}: {route!r} is not a plain route; list nested routers "
                                f"in the face's routers() instead of including them")
        app.router.routes.extend(router.routes)
    errors = face.errors

    @app.exception_handler(VmImageError)
    async def core_error(request: Request, exc: VmImageError):
        return errors.core(request, exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return errors.http(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return errors.invalid(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return errors.internal(request)

    app.add_middleware(FaceMiddleware, context=context, header=face.request_id_header,
                       new_id=face.new_request_id)
    return app


class FaceDispatch:
    """The root ASGI app: lifespan and the OpenAPI document itself, every request to a face."""

    def __init__(self, faces: Sequence[Face], context: FaceContext, lifespan,
                 openapi_url: str = "/vmimage/openapi.json") -> None:
        self.mounted = [(face, face_app(face, context)) for face in faces]
        self.openapi_url = openapi_url
        self._openapi: dict | None = None
        self.root = Starlette(routes=[Route(openapi_url, self._openapi_document)], lifespan=lifespan)

    async def _openapi_document(self, _request: Request) -> JSONResponse:
        if self._openapi is None:
            routes = [route for _, app in self.mounted for route in app.routes]
            self._openapi = get_openapi(title="vmimage", version="1", routes=routes)
        return JSONResponse(self._openapi)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != self.openapi_url:
            conn = HTTPConnection(scope)
            for face, app in self.mounted:
                if face.claims(conn):
                    await app(scope, receive, send)
                    return
        await self.root(scope, receive, send)
