"""The ASGI application: every face mounted on one core."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from vmimage.bootstrap import Container
from vmimage.core.errors import VmImageError
from vmimage.core.services.servers import reconcile_servers
from vmimage.faces.aries import routes as aries_routes
from vmimage.faces.aries.errors import aries_body, aries_error, aries_http_error
from vmimage.faces.glance_v2 import cache as glance_cache
from vmimage.faces.glance_v2 import data as glance_data
from vmimage.faces.glance_v2 import imports as glance_imports
from vmimage.faces.glance_v2 import metadefs as glance_metadefs
from vmimage.faces.glance_v2 import routes as glance_routes
from vmimage.faces.glance_v2.errors import glance_error, handle_core_error
from vmimage.faces.http import RequestIdMiddleware, allowed_methods
from vmimage.faces.keystone import routes as keystone_routes
from vmimage.faces.limits import BodyLimits
from vmimage.faces.native import routes as native_routes
from vmimage.faces.native.errors import native_error

log = logging.getLogger("vmimage")


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        container.jobs.start()
        reconcile_servers(container.deps)
        if container.prefetcher is not None:
            container.prefetcher.start()
        try:
            yield
        finally:
            if container.prefetcher is not None:
                container.prefetcher.stop()   # an unfinished entry is dropped; the image stays queued
            container.jobs.stop()

    app = FastAPI(title="vmimage", redirect_slashes=False, docs_url=None, redoc_url=None,
                  openapi_url="/vmimage/openapi.json", lifespan=lifespan)
    app.state.container = container
    app.include_router(keystone_routes.router)
    app.include_router(glance_routes.router)
    app.include_router(glance_data.router)
    app.include_router(glance_imports.router)
    app.include_router(glance_metadefs.router)
    if container.deps.cache is not None:   # without a cache its API does not exist (404), as in Glance
        app.include_router(glance_cache.router)
    app.include_router(native_routes.router)
    app.include_router(aries_routes.router)

    def is_aries(request: Request) -> bool:
        return request.url.path.startswith(aries_routes.PREFIX + "/")

    @app.exception_handler(VmImageError)
    async def core_error(request: Request, exc: VmImageError):
        if is_aries(request):
            return aries_error(request, exc, aries_routes.PREFIX)
        if request.url.path.startswith(native_routes.PREFIX):
            return native_error(exc)
        return await handle_core_error(request, exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if is_aries(request):
            return aries_http_error(exc.status_code)
        if exc.status_code == 405:
            return glance_error(405, "Method not allowed", {"Allow": ", ".join(allowed_methods(request))})
        return glance_error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        if is_aries(request):
            return aries_body(400, "InvalidParameter")
        return glance_error(400, f"Invalid request: {exc.errors()}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if is_aries(request):
            return aries_body(500, "InternalError")
        return glance_error(500, "Internal error")

    app.add_middleware(BodyLimits, max_json_bytes=container.settings.max_json_bytes,
                       idle_seconds=container.settings.upload_idle_seconds)
    app.add_middleware(RequestIdMiddleware)
    return app
