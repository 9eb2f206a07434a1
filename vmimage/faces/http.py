"""What every face shares: the JSON body, time and query-parameter parsers, the request id,
the caller behind an OpenStack token, 405's Allow list, and the upload body bridge."""

from __future__ import annotations

import asyncio
import queue
from http import HTTPStatus
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmimage.core import audit, errors as e
from vmimage.core.log_context import enter_request, leave_request, note_caller
from vmimage.core.policy import Caller
from vmimage.core.ports import READ_CHUNK
from vmimage.faces import limits
from vmimage.faces.contract import FaceContext, face_context
from vmimage.faces.errors import ErrorCodes, retry_after_header


def openstack_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenStack's error body (Glance, Keystone): a dict of dicts, each with "message", the
    shape glanceclient, keystoneauth and openstacksdk all read."""
    body = {"error": {"code": status, "title": HTTPStatus(status).phrase, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


class OpenStackErrors:
    """The error table of the OpenStack faces (Glance v2, Keystone v3): the default statuses,
    the message in the body."""

    codes: ErrorCodes[None] = ErrorCodes()

    def core(self, _request: Request, exc: e.VmImageError) -> JSONResponse:
        status, _ = self.codes.lookup(exc)
        headers = {"WWW-Authenticate": 'Keystone uri="/identity/v3"'} if status == 401 else {}
        return openstack_error(status, exc.message, {**headers, **retry_after_header(exc)} or None)

    def http(self, request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return openstack_error(405, "Method not allowed", {"Allow": ", ".join(allowed_methods(request))})
        return openstack_error(exc.status_code, str(exc.detail))

    def invalid(self, _request: Request, exc: RequestValidationError) -> JSONResponse:
        return openstack_error(400, f"Invalid request: {exc.errors()}")

    def internal(self, _request: Request) -> JSONResponse:
        return openstack_error(500, "Internal error")


def caller(request: Request) -> Caller:
    """The core Caller behind the request's Keystone token (X-Auth-Token)."""
    token = request.headers.get("x-auth-token")
    if not token:
        raise e.Unauthenticated("This server could not verify that you are authorized")
    return note_caller(in_endpoint_region(request, face_context(request).identity.caller(token)))


def in_endpoint_region(request: Request, who: Caller) -> Caller:
    """A token is not regional: its caller acts in the region of the endpoint it called (a
    region's /region/NAME prefix; the default region at the root)."""
    region = request.scope.get("state", {}).get("region") or face_context(request).region
    return who if who.region == region else replace(who, region=region)


async def caller_async(request: Request) -> Caller:
    """caller() off the event loop, for routes that read their body themselves; a token
    validated recently is answered from memory, without a thread hop."""
    token = request.headers.get("x-auth-token")
    if token:
        known = face_context(request).identity.cached_caller(token)
        if known is not None:
            return note_caller(in_endpoint_region(request, known))
    return await run_in_threadpool(caller, request)


# --- request bodies -----------------------------------------------------------------------

def parse_json(raw: bytes, empty: Any = None) -> Any:
    """The JSON value of a body (`empty` when there is none); Invalid when malformed or
    nested too deeply (limits.parse_json). Its size was capped while it was read (BodyLimits)."""
    return limits.parse_json(raw, empty)


def json_object(data: Any, message: str = "Request body must be a JSON object") -> dict:
    if not isinstance(data, dict):
        raise e.Invalid(message)
    return data


async def json_object_body(request: Request) -> dict:
    """The request's JSON object body (an empty body is {}); Invalid otherwise."""
    return json_object(parse_json(await request.body(), {}))


# --- values on the wire ---------------------------------------------------------------------

def iso_time(dt: datetime | None, fraction: bool = False) -> str | None:
    """UTC ISO-8601 with a Z (microseconds with fraction=True); None stays None."""
    if dt is None:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")


def int_param(raw: Any, what: str, minimum: int | None = 0) -> int:
    """An integer given as text (query parameter, header) or as a JSON number, >= minimum."""
    if isinstance(raw, str) and raw.strip().removeprefix("-").isdigit() and raw.strip().isascii():
        value = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise e.Invalid(f"'{what}' must be an integer", field=what)
    if minimum is not None and value < minimum:
        raise e.Invalid(f"'{what}' must be at least {minimum}", field=what)
    if not -limits.INT63_MAX - 1 <= value <= limits.INT63_MAX:
        raise e.Invalid(f"'{what}' is out of range", field=what)
    return value


def bool_param(raw: str, what: str) -> bool:
    """true/false in a query string (also 1/0, yes/no)."""
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise e.Invalid(f"'{what}' must be true or false", field=what)


def request_id(request: Request) -> str | None:
    """The id this request answers with (the face's request-id header)."""
    return getattr(request.state, "request_id", None)


class FaceMiddleware:
    """Puts the face's context and a request id on every request and the id on every
    response (pure ASGI: streaming stays cheap)."""

    def __init__(self, app: ASGIApp, context: FaceContext, header: str, new_id: Callable[[], str]) -> None:
        self.app = app
        self.context = context
        self.header = header.lower().encode()
        self.new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header
        rid = client_request_id(scope, header) or self.new_id()
        state = scope.setdefault("state", {})
        state["request_id"], state["face_context"] = rid, self.context
        client = scope.get("client")
        audit.set_origin(audit.Origin(address=client[0] if client else None, request_id=rid))
        state["log_context"], token = enter_request(rid)
        value = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [(header, value)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            leave_request(token)


# A client's request id is kept when it could be one of ours or a tracing system's: 8 to 128
# characters of letters, digits and - _ . : (no spaces, quotes or control characters that
# would let a client forge log lines or headers); anything else gets a new id.
_REQUEST_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def client_request_id(scope: Scope, header: bytes) -> str | None:
    """The request id the client sent in the face's header, if valid."""
    for name, value in scope.get("headers", ()):
        if name == header:
            if 8 <= len(value) <= 128 and _REQUEST_ID_CHARS.issuperset(value):
                return value.decode("ascii")
            return None
    return None


def allowed_methods(request: Request) -> list[str]:
    """Methods some route accepts on this path (asked route by route, as routers nest)."""
    return [method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                   for route in request.app.router.routes)]


# Hand the core buffers of up to READ_CHUNK, not the server's small reads: under serve's 1 MiB
# mmap threshold (see core/ports.py), and 4 MiB ones cost ~35 MiB more peak RSS on a 4 GiB upload.
_COALESCE = READ_CHUNK
_IN_FLIGHT = 4          # buffers queued between the event loop and the core thread
_END = object()


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
                if held and held + len(piece) > _COALESCE:
                    await self._put(b"".join(pieces))
                    pieces, held = [], 0
                pieces.append(piece)
                held += len(piece)
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


async def stream_into(request, use_case: Callable[[BodyBridge], Any]) -> Any:
    """Pump the request body into `use_case(chunks)`, run on an upload thread (not the shared pool)."""
    bridge = BodyBridge(request)
    pump = asyncio.create_task(bridge.pump())
    try:
        return await limits.run_upload(use_case, bridge)
    finally:
        bridge.stop()
        if not pump.done():
            pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
