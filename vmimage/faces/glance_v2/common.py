"""What several Glance route modules share: the image view and streaming a request body in."""

from __future__ import annotations


from starlette.requests import Request
from starlette.responses import Response

from vmimage.core.policy import Caller, can_see_locations
from vmimage.faces.contract import face_context
from vmimage.faces.glance_v2 import translate as t
from vmimage.faces.glance_v2.settings import glance_settings
from vmimage.faces.http import int_param, openstack_error, stream_into


def image_view(request: Request, who: Caller) -> t.ImageView:
    context = face_context(request)
    show = glance_settings(request).show_locations
    return t.ImageView(multi_store=context.deps.multi_store,
                       show_locations=lambda image: show and can_see_locations(who, image),
                       location_url=context.deps.location_url, ordered=context.deps.by_weight)


def declared_size(request: Request) -> int | None:
    raw = request.headers.get("x-openstack-image-size")
    return None if raw is None else int_param(raw, "x-openstack-image-size")


async def receive_body(request: Request, use_case, *args) -> Response:
    """Stream an octet-stream body into a core use case running on a worker thread."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type != "application/octet-stream":
        return openstack_error(415, f"Unsupported Content-Type '{media_type}'; use application/octet-stream")
    declared = declared_size(request)
    await stream_into(request, lambda chunks: use_case(*args, chunks, declared))
    return Response(status_code=204)
