"""Glance v2 image cache management (API v2.14): /v2/cache and /v2/cache/{image_id}."""

from __future__ import annotations

from fastapi import Depends, Request, Response

from vmimage.core.policy import Caller
from vmimage.core.ports import CacheEntry
from vmimage.core.services import cache as svc
from vmimage.faces.contract import deps, face_router
from vmimage.faces.http import caller

router = face_router()


def _entry(entry: CacheEntry) -> dict:
    # Glance's fields; its times are seconds since the epoch, not ISO strings.
    return {"image_id": entry.image_id, "hits": entry.hits, "last_accessed": entry.last_accessed,
            "last_modified": entry.last_modified, "size": entry.size}


@router.get("/v2/cache")
def cache_state(request: Request, who: Caller = Depends(caller)) -> dict:
    state = svc.cache_state(deps(request), who)
    return {"cached_images": [_entry(e) for e in state.cached], "queued_images": state.queued}


@router.put("/v2/cache/{image_id}", status_code=202)
def queue_image(request: Request, image_id: str, who: Caller = Depends(caller)) -> Response:
    svc.queue_image(deps(request), who, image_id)
    return Response(status_code=202)


@router.delete("/v2/cache/{image_id}", status_code=204)
def delete_cached_image(request: Request, image_id: str, who: Caller = Depends(caller)) -> Response:
    svc.delete_cached_image(deps(request), who, image_id)
    return Response(status_code=204)


@router.delete("/v2/cache", status_code=204)
def clear_cache(request: Request, who: Caller = Depends(caller)) -> Response:
    svc.clear_cache(deps(request), who, request.headers.get("x-image-cache-clear-target"))
    return Response(status_code=204)
