"""Glance v2 image data: PUT/GET /v2/images/{id}/file."""

from __future__ import annotations

import re

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from vmimage.core.services.image_data import open_image_data, upload_image_data
from vmimage.faces.contract import deps, face_router
from vmimage.faces.glance_v2.common import receive_body
from vmimage.faces.http import caller_async
from vmimage.faces.limits import OpenFileResponse, open_stream, streams_body

router = face_router()
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _upload(deps, who, image_id, store, chunks, declared):
    return upload_image_data(deps, who, image_id, chunks, store, declared)


@router.put("/v2/images/{image_id}/file", status_code=204)
@streams_body
async def upload(request: Request, image_id: str) -> Response:
    who = await caller_async(request)
    return await receive_body(request, _upload, deps(request), who, image_id,
                              request.headers.get("x-image-meta-store"))


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end exclusive), or None when unsatisfiable."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:                     # suffix: the last N bytes
        n = int(last)
        return (max(size - n, 0), size) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    return (start, end) if start < size and start < end else None


@router.get("/v2/images/{image_id}/file")
async def download(request: Request, image_id: str) -> Response:
    who = await caller_async(request)
    data = await run_in_threadpool(open_image_data, deps(request), who, image_id)
    if data is None:
        return Response(status_code=204)
    # The data is read on its backend's own threads (an S3 server, the web), opened before
    # the answer starts: a backend that does not answer is a 503, and never holds the shared pool.
    headers = {"Content-Type": "application/octet-stream"}
    range_header = request.headers.get("range")
    if range_header:
        span = _parse_range(range_header, data.size)
        if span is None:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{data.size}"})
        start, end = span
        headers.update({"Content-Range": f"bytes {start}-{end - 1}/{data.size}",
                        "Content-Length": str(end - start)})
        status = 206
    else:
        start, end, status = 0, data.size, 200
        headers["Content-Length"] = str(data.size)
        if data.image.checksum:
            headers["Content-MD5"] = data.image.checksum
    # A file store's image goes out by the kernel (sendfile); other stores' by reads.
    file = await run_in_threadpool(data.open_file) if data.open_file is not None else None
    if file is not None:
        return OpenFileResponse(file, start, end - start, status, headers)
    body = await open_stream(data.backend, lambda: data.read(start, None if status == 200 else end))
    return StreamingResponse(body, status_code=status, headers=headers)
