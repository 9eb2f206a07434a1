"""The service's own routes for its operators: GET /healthz, /readyz and /metrics.

They sit beside the faces, not in one (no dialect's envelope, no face's auth), answered for
their exact paths before any face is asked (faces/mount.py FaceDispatch)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from vmimage.adapters.metrics.prometheus import CONTENT_TYPE, PrometheusMeter
from vmimage.core.errors import VmImageError
from vmimage.core.ports import Identity
from vmimage.core.services.deps import Deps
from vmimage.core.services.health import unready

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Sequence[str]) -> list[Network]:
    """VMIMAGE_METRICS_ALLOW's addresses and networks; a malformed entry stops the start."""
    try:
        return [ipaddress.ip_network(entry, strict=False) for entry in entries]
    except ValueError as exc:
        raise ValueError(f"VMIMAGE_METRICS_ALLOW: {exc}") from None


def _host_allowed(allowed: Sequence[Network]) -> Callable[[str], bool]:
    # Parsing the address is most of the check: a scraper asks from the same few addresses.
    @functools.lru_cache(maxsize=256)
    def allowed_host(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in allowed)
    return allowed_host


def probe_routes(deps: Deps, identity: Identity, meter: PrometheusMeter, jobs_running: Callable[[], bool],
                 metrics_allow: Sequence[str]) -> list[Route]:
    allowed_host = _host_allowed(networks(metrics_allow))

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> Response:
        failed = await run_in_threadpool(unready, deps, jobs_running)
        if failed:
            return JSONResponse({"status": "unready", "failed": failed}, status_code=503)
        return JSONResponse({"status": "ready"})

    def admin_token(token: str) -> bool:
        try:
            return identity.caller(token).is_admin
        except VmImageError:
            return False

    async def metrics(request: Request) -> Response:
        token = request.headers.get("x-auth-token") or ""
        # The client as uvicorn sees it: X-Forwarded-For is believed only from a loopback proxy.
        admitted = allowed_host(request.client.host if request.client else "") or (bool(token) and await run_in_threadpool(admin_token, token))
        if not admitted:
            return JSONResponse({"error": "metrics are answered to the allowed addresses or an admin's token"},
                                status_code=403)
        body = meter.scrape_without_waiting()
        if body is None:
            body = await run_in_threadpool(meter.scrape)
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
