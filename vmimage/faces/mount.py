"""Mounting faces: each face is an app of its own, with its own error table and request
ids; a request goes to the first face, in the order given, that claims it."""

from __future__ import annotations

import logging
import time
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmimage.core.errors import LoginFailed, SignatureFailed, VmImageError
from vmimage.core.log_context import RequestContext
from vmimage.core.metrics import UNMATCHED, meter
from vmimage.faces.contract import REGION_PREFIX, Face, FaceContext
from vmimage.faces.http import FaceMiddleware
from vmimage.faces.limits import ZEROCOPY_SEND

log = logging.getLogger("vmimage")
requests_log = logging.getLogger("vmimage.requests")


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
        # Every face's refusals pass here: the one place failed logins and signatures are counted.
        if isinstance(exc, LoginFailed):
            meter().login_failure(face.name)
        elif isinstance(exc, SignatureFailed):
            meter().signature_failure(face.name)
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


class CountedRequests:
    """Counts one face's requests for the metrics (pure ASGI): face, method, the matched
    route's template (never the raw path), status and time; the image data received by a
    route that streams its body, and sent as application/octet-stream."""

    def __init__(self, app: ASGIApp, face: str) -> None:
        self.app = app
        self.face = face

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, received, sent, sent_total, data_out = 500, 0, 0, 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent, sent_total, data_out
            if message["type"] == "http.response.start":
                status = message["status"]
                data_out = any(name == b"content-type" and value.startswith(b"application/octet-stream")
                               for name, value in message.get("headers", ()))
            elif message["type"] in ("http.response.body", ZEROCOPY_SEND):
                size = message["count"] if message["type"] == ZEROCOPY_SEND else len(message.get("body", b""))
                sent_total += size
                if data_out:
                    sent += size
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            counted = meter()
            counted.request(self.face, scope["method"], template, status, time.perf_counter() - started)
            if received and getattr(getattr(route, "endpoint", None), "streams_body", False):
                counted.uploaded(self.face, received)
            if sent:
                counted.downloaded(self.face, sent)
            if requests_log.isEnabledFor(logging.INFO):
                self._log(scope, template, status, time.perf_counter() - started, received, sent_total)


    def _log(self, scope: Scope, route: str, status: int, seconds: float, received: int, sent: int) -> None:
        """The request's one log line (VMIMAGE_LOG_FORMAT=json): the route's template, never
        the raw path or query (which may carry a presigned URL's signature or a token)."""
        state = scope.get("state", {})
        context: RequestContext | None = state.get("log_context")
        client = scope.get("client")
        requests_log.info("request", extra={
            "request_id": state.get("request_id"), "face": self.face, "method": scope["method"],
            "route": route, "status": status, "duration_ms": round(seconds * 1000, 3),
            "bytes_in": received, "bytes_out": sent,
            "user_id": context.user_id if context else None, "project_id": context.project_id if context else None,
            "remote": client[0] if client else None})


class FaceDispatch:
    """The root ASGI app: lifespan, the service's own routes (the OpenAPI document, the
    operators' probes and metrics), every other request to a face."""

    def __init__(self, faces: Sequence[Face], context: FaceContext, lifespan,
                 openapi_url: str = "/vmimage/openapi.json", routes: Sequence[Route] = ()) -> None:
        self.faces = [(face, face_app(face, context)) for face in faces]
        self.regions = frozenset(context.deps.regions)
        self.mounted = [(face, CountedRequests(app, face.name)) for face, app in self.faces]
        self.openapi_url = openapi_url
        self._openapi: dict | None = None
        own = [Route(openapi_url, self._openapi_document), *routes]
        # Exact paths answered before any face is asked (faces claim by prefix or headers).
        self.own_paths = frozenset(route.path for route in own)
        self.root = Starlette(routes=own, lifespan=lifespan)
        # GET and HEAD of an own path go straight to its endpoint: a scraper or a load
        # balancer asks many times a second, and Starlette's layers cost more than a probe.
        self.direct = {route.path: route.endpoint for route in own if route.methods and "GET" in route.methods}

    async def _openapi_document(self, _request: Request) -> JSONResponse:
        if self._openapi is None:
            routes = [route for _, app in self.faces for route in app.routes]
            self._openapi = get_openapi(title="vmimage", version="1", routes=routes)
        return JSONResponse(self._openapi)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(REGION_PREFIX):
            scope = self._regional(scope)
        if scope["type"] == "http":
            if scope["path"] not in self.own_paths:
                conn = HTTPConnection(scope)
                for face, app in self.mounted:
                    if face.claims(conn):
                        await app(scope, receive, send)
                        return
            elif scope["method"] in ("GET", "HEAD") and (endpoint := self.direct.get(scope["path"])) is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.root(scope, receive, send)

    def _regional(self, scope: Scope) -> Scope:
        """A request to a region's endpoint (/region/NAME/...): served as the same path at the
        root, the region noted for the faces (faces.http.caller), links under the prefix
        (root_path). An unknown region is left as it is (no route: 404)."""
        region = scope["path"][len(REGION_PREFIX):].partition("/")[0]
        if region not in self.regions:
            return scope
        prefix = f"{REGION_PREFIX}{region}"
        state = dict(scope.get("state") or {})
        state["region"] = region
        state["region_prefix"] = prefix
        regional = {**scope, "root_path": scope.get("root_path", "") + prefix, "state": state}
        if scope["path"] == prefix:     # the endpoint itself (version discovery): its root
            regional["path"] = prefix + "/"
            regional["raw_path"] = (prefix + "/").encode()
        return regional
