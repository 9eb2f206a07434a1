"""The ASGI application: every face mounted on one core, one line each.

Faces are asked in this order which requests are theirs; Glance, which claims the rest,
comes last."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from vmimage.adapters.metrics.prometheus import PrometheusMeter
from vmimage.bootstrap import Container
from vmimage.core import metrics
from vmimage.core.services.health import job_counts
from vmimage.core.services.servers import reconcile_servers
from vmimage.core.services.uploads import release_uploads
from vmimage.faces import aries, console, glance_v2, huawei_ims, jdcloud, keystone, native
from vmimage.faces.contract import FaceContext
from vmimage.faces.limits import BodyLimits
from vmimage.faces.mount import FaceDispatch
from vmimage.probes import probe_routes

log = logging.getLogger("vmimage")

FACES = [
    keystone.FACE,
    native.FACE,
    aries.FACE,
    huawei_ims.FACE,
    jdcloud.FACE,
    console.FACE,
    glance_v2.FACE,
]


def app_from_environment() -> BodyLimits:
    """One worker of `vmimage serve --workers N`: its own container, settings from the environment."""
    from vmimage.bootstrap import build
    from vmimage.logs import configure as configure_logs
    from vmimage.settings import Settings

    settings = Settings()
    configure_logs(settings.log_format)     # a spawned worker starts with no logging set up
    return create_app(build(settings, migrate=False))


def face_context(container: Container) -> FaceContext:
    settings = container.settings
    return FaceContext(deps=container.deps, identity=container.auth, public_url=settings.public_url or None,
                       region=settings.regions[0], environ=dict(os.environ))


def create_app(container: Container) -> BodyLimits:
    @asynccontextmanager
    async def lifespan(_app):
        container.jobs.start()
        container.uploads.start()
        if container.janitor is not None:     # its first round aborts what a process gone left
            container.janitor.start()
        if container.reaper is not None:      # its first round takes up what was left recorded
            container.reaper.start()
        reconcile_servers(container.deps)
        if container.prefetcher is not None:
            container.prefetcher.start()
        try:
            yield
        finally:
            if container.prefetcher is not None:
                container.prefetcher.stop()   # an unfinished entry is dropped; the image stays queued
            if container.janitor is not None:
                container.janitor.stop()
            if container.reaper is not None:
                container.reaper.stop()
            # A clean stop (SIGTERM): uvicorn has let requests in flight finish within the grace
            # and cut the rest; uploads they left are undone, running jobs get the grace too.
            grace = container.settings.shutdown_grace_seconds
            container.jobs.stop(grace)
            container.uploads.stop()
            try:
                release_uploads(container.deps, wait_seconds=min(grace, 5))
            except Exception:  # noqa: BLE001 - the database gone: the next start recovers them
                log.exception("could not undo the uploads left at stop")

    # One meter per serving process (each worker builds its own app).
    meter = PrometheusMeter(lambda: job_counts(container.deps))
    metrics.install(meter)
    probes = probe_routes(container.deps, container.auth, meter, container.jobs.running,
                          container.settings.metrics_allow)
    # Request bodies are capped and timed out before any face reads them (each face renders
    # the refusal in its own envelope).
    return BodyLimits(FaceDispatch(FACES, face_context(container), lifespan, routes=probes),
                      max_json_bytes=container.settings.max_json_bytes,
                      idle_seconds=container.settings.upload_idle_seconds)
