"""HTTP plumbing every face uses: request ids, 405 with Allow, and the upload body bridge."""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import Iterator

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmimage.core import errors as e
from vmimage.faces.limits import read_json

# Core error -> HTTP status as Glance answers; the native API answers the same way.
GLANCE_STYLE_STATUS: dict[type[e.VmImageError], int] = {
    e.NotFound: 404,
    e.Gone: 410,
    e.Conflict: 409,
    e.Invalid: 400,
    e.BadImageFormat: 415,
    e.Forbidden: 403,
    e.Unauthenticated: 401,
    e.QuotaExceeded: 413,
    e.BackendUnavailable: 503,
    e.RequestTooLarge: 413,
    e.Throttled: 429,
    e.Stalled: 408,
}


def retry_after(exc: e.VmImageError) -> dict[str, str]:
    """Retry-After for an error that says when to try again (Throttled)."""
    seconds = exc.fields.get("retry_after")
    return {"Retry-After": str(seconds)} if seconds is not None else {}


def status_for(exc: BaseException, table: dict[type, int]) -> int:
    for cls in type(exc).__mro__:  # the closest registered class wins
        if cls in table:
            return table[cls]
    return 500


def caller(request: Request):
    """The core Caller behind the request's Keystone token (X-Auth-Token)."""
    token = request.headers.get("x-auth-token")
    if not token:
        raise e.Unauthenticated("This server could not verify that you are authorized")
    return request.app.state.container.tokens.caller(token)


async def json_object_body(request: Request) -> dict:
    """The request's JSON object body (an empty body is {}); Invalid otherwise."""
    data = await read_json(request, empty={})
    if not isinstance(data, dict):
        raise e.Invalid("Request body must be a JSON object")
    return data


_COALESCE = 4 << 20     # hand the core 4 MiB buffers, not the server's small reads
_IN_FLIGHT = 4          # buffers queued between the event loop and the core thread
_END = object()


class RequestIdMiddleware:
    """Adds x-openstack-request-id to every response (pure ASGI: streaming stays cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = f"req-{uuid.uuid4()}".encode()
        scope.setdefault("state", {})["request_id"] = rid.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-openstack-request-id", rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def allowed_methods(request: Request) -> list[str]:
    """Methods some route accepts on this path (asked route by route, as routers nest)."""
    return [method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                   for route in request.app.router.routes)]


class BodyBridge:
    """Feeds an ASGI request body to a core function running on a worker thread.

    The event loop reads the body and queues coalesced buffers; the worker iterates over
    them. Back-pressure: at most _IN_FLIGHT buffers wait in the queue.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._queue: queue.Queue = queue.Queue()
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(_IN_FLIGHT)
        self._stopped = False

    async def pump(self) -> None:
        pieces: list[bytes] = []     # joined once per buffer: a single copy of the data
        held = 0
        try:
            async for piece in self._request.stream():
                if self._stopped:
                    return
                if not piece:
                    continue
                pieces.append(piece)
                held += len(piece)
                if held >= _COALESCE:
                    await self._put(b"".join(pieces))
                    pieces, held = [], 0
            if pieces:
                await self._put(b"".join(pieces))
            self._queue.put(_END)
        except BaseException as exc:  # client gone: the worker must stop too
            self._queue.put(exc)
            raise

    async def _put(self, data: bytes) -> None:
        await self._slots.acquire()
        self._queue.put(data)

    def stop(self) -> None:
        self._stopped = True

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, e.VmImageError):     # the body read was refused (stalled)
                raise item
            if isinstance(item, BaseException):
                raise ConnectionAbortedError("client went away during the upload") from item
            self._loop.call_soon_threadsafe(self._slots.release)
            yield item
