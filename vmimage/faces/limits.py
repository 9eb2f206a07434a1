"""Request-body limits every face shares.

- `BodyLimits` (ASGI middleware) wraps `receive`: a body of a route that does not stream
  (every JSON body) may not pass `max_json_bytes` — a larger Content-Length is refused before
  a byte is read, a chunked body as soon as it passes the cap — and no body read may stay idle
  longer than `idle_seconds`. It raises core errors (`RequestTooLarge`, `Stalled`) from the
  read, so the face whose handler read the body renders them in its own envelope; the
  response then closes the connection (the unread rest of the body is not waited for).
- `streams_body` marks the endpoints that stream large bodies (image data); only they pass
  the byte cap, and not when a request's body is read whole all the same (`cap_body`: a
  signed payload, hashed before anything is done with it).
- `parse_json` is the one JSON parser of request bodies: depth limit (no RecursionError),
  no NaN/Infinity, no text that is not Unicode (a lone surrogate escaped as "\\udc80" parses
  in Python but can be neither stored nor answered).
- `run_upload` runs an upload's core use case on a thread of its own limiter, so uploads
  never take the threads the other requests need.
- `run_on_backend` and `open_stream` run work that waits on a backend (an S3 server, the web:
  core/backends.py) on threads of that backend's own slots, never the shared pool: a request
  waits for the backend's slot without a thread, and a stalled backend holds at most its own
  slots. `open_stream` reads a download's first chunk before the response starts, so a
  backend that does not answer is a refusal in the face's envelope (503), not a cut stream.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmimage.core.backends import Backend
from vmimage.core.errors import Invalid, RequestTooLarge, Stalled, VmImageError
from vmimage.core.ports import READ_CHUNK

log = logging.getLogger("vmimage.faces")

MAX_DEPTH = 32
INT63_MAX = (1 << 63) - 1       # the largest integer any face accepts (a signed 64-bit column)
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')          # a JSON string (the text is valid JSON)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")   # how JSON text spells a surrogate
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
for _open in b"[{":
    _DELTA[_open] = 1
for _close in b"]}":
    _DELTA[_close] = -1


def streams_body(endpoint: Callable) -> Callable:
    """Mark an endpoint that streams its (large) body: the JSON byte cap does not apply."""
    endpoint.streams_body = True        # type: ignore[attr-defined]
    return endpoint


_CAPPED = "vmimage.body_capped"


def cap_body(scope: Scope) -> None:
    """Hold this request's body to the byte cap although its route streams: it is read whole."""
    scope[_CAPPED] = True


def _streams(scope: Scope) -> bool:
    if scope.get(_CAPPED):
        return False
    route = scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), "streams_body", False))


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimits:
    """Pure ASGI: caps non-streaming bodies and times out idle body reads."""

    def __init__(self, app: ASGIApp, max_json_bytes: int, idle_seconds: float) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        cap, idle = self.max_json_bytes, self.idle_seconds
        state = {"read": 0, "done": False, "refused": False, "responding": False}

        def refuse(exc: Exception) -> Exception:
            state["refused"] = True
            return exc

        async def limited_receive() -> Message:
            if state["done"] or state["responding"]:
                return await receive()     # waiting for a disconnect is not a body read
            capped = not _streams(scope)
            if capped and declared is not None and declared > cap:
                raise refuse(RequestTooLarge(f"Request body is larger than {cap} bytes", limit=cap))
            try:
                async with asyncio.timeout(idle if idle > 0 else None):
                    message = await receive()
            except TimeoutError:
                if state["responding"]:     # the answer went out meanwhile (a download)
                    return await receive()
                raise refuse(Stalled(f"No request data arrived for {idle:g} seconds",
                                     idle_seconds=idle)) from None
            if message["type"] != "http.request":
                state["done"] = True
                return message
            state["read"] += len(message.get("body", b""))
            if not message.get("more_body", False):
                state["done"] = True
            if capped and state["read"] > cap and not state["responding"]:
                raise refuse(RequestTooLarge(f"Request body is larger than {cap} bytes", limit=cap))
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["responding"] = True
                if state["refused"]:
                    message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited_receive, closing_send)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than limit in valid JSON text (brackets
    inside strings do not count)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _STRING.sub("", text).encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET)
    return max(itertools.accumulate(map(_DELTA.__getitem__, brackets)), default=0) > limit


def _escaped(text: str) -> str:
    """Text fit for a message (and its JSON): a surrogate shown as its escape, \\udc80."""
    return text.encode("utf-8", "backslashreplace").decode()


def not_unicode(data: Any) -> tuple[str, str] | None:
    """(where, what) of the first string, key or value, in parsed JSON that holds a lone
    surrogate: where is a dotted path ("properties.0.name"), what the surrogate, escaped."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return where, _escaped(found.group())
        elif isinstance(value, dict):
            items = list(value.items())
            for key, _ in items:
                found = _SURROGATE.search(key)
                if found:
                    return ".".join(filter(None, [where, _escaped(key)])), _escaped(found.group())
            stack.extend((item, ".".join(filter(None, [where, key]))) for key, item in reversed(items))
        elif isinstance(value, list):
            stack.extend((item, ".".join(filter(None, [where, str(i)])))
                         for i, item in reversed(list(enumerate(value))))
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, empty: Any = None) -> Any:
    """A request body's JSON (`empty` for no body); Invalid when malformed, nested deeper
    than MAX_DEPTH, or holding a string that is not Unicode (naming where, as a field)."""
    if not raw.strip():
        return empty
    try:
        text = raw.decode(json.detect_encoding(raw))
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid(f"JSON in request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:          # includes UnicodeDecodeError and huge integers
        raise Invalid("Malformed JSON in request body") from None
    if too_deep(text):
        raise Invalid(f"JSON in request body nests deeper than {MAX_DEPTH} levels")
    # Only a \\uD800-\\uDFFF escape makes a surrogate (bytes that are not UTF-8 did not decode).
    bad = not_unicode(data) if _SURROGATE_ESCAPE.search(text) else None
    if bad is not None:
        where, surrogate = bad
        where = where if len(where) <= 200 else where[:200] + "..."
        message = f"a lone surrogate ({surrogate}) is not a Unicode character"
        raise Invalid(f"Invalid '{where}': {message}" if where else f"Invalid request body: {message}",
                      field=where or "body", reason="not_unicode")
    return data


async def read_json(request: Request, empty: Any = None) -> Any:
    """The request's JSON body (read under BodyLimits' cap), parsed by parse_json."""
    return parse_json(await request.body(), empty)


_upload_threads: CapacityLimiter | None = None


async def run_upload(fn: Callable[..., Any], *args: Any) -> Any:
    """Run an upload's use case on a thread that is not one of the shared pool's tokens.

    The number of uploads is bounded per project by the core (UploadSlots), not here.
    """
    global _upload_threads
    if _upload_threads is None:
        _upload_threads = CapacityLimiter(math.inf)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_upload_threads)


_own_threads: CapacityLimiter | None = None
_backend_slots: dict[Backend, CapacityLimiter] = {}


def _threads() -> CapacityLimiter:
    """Threads that are not the shared pool's (each user of it bounds itself)."""
    global _own_threads
    if _own_threads is None:
        _own_threads = CapacityLimiter(math.inf)
    return _own_threads


async def _take_slot(backend: Backend) -> CapacityLimiter:
    """A slot of the backend, waited for without a thread; at once BackendUnavailable while its
    breaker refuses calls (the call asks it again once it runs). A slot held by a stalled
    backend comes free within its stall deadline."""
    backend.check()
    slots = _backend_slots.get(backend)
    if slots is None:
        slots = _backend_slots[backend] = CapacityLimiter(backend.slots)
    await slots.acquire()
    return slots


async def run_on_backend(backend: Backend | None, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on a thread holding one of the backend's slots (None, this node's own files:
    the shared pool, as a sync route)."""
    if backend is None:
        return await run_in_threadpool(fn, *args)
    slots = await _take_slot(backend)
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_threads())
    finally:
        slots.release()


_END = object()


def _next(chunks: Iterator[bytes]) -> Any:
    return next(chunks, _END)


def _open_reader(read: Callable[[], Iterable[bytes]]) -> tuple[Iterator[bytes], Any]:
    chunks = iter(read())
    try:
        return chunks, next(chunks, _END)
    except BaseException:
        _close_reader(chunks)
        raise


def _close_reader(chunks: Iterator[bytes]) -> None:
    """Ends a reader (its connection, a cache entry it was filling): quick local work."""
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


async def open_stream(backend: Backend | None, read: Callable[[], Iterable[bytes]]) -> AsyncIterator[bytes]:
    """A download's body: read() (it may open the data at once) and its first chunk on the
    backend's threads now, so a failure is the request's (refused in the face's envelope);
    then each chunk as the client takes it. A failure once the answer has started can only
    cut the stream (the client sees fewer bytes than Content-Length)."""
    chunks, first = await run_on_backend(backend, _open_reader, read)
    return _rest(backend, chunks, first)


async def _rest(backend: Backend | None, chunks: Iterator[bytes], chunk: Any) -> AsyncIterator[bytes]:
    try:
        while chunk is not _END:
            yield chunk
            chunk = await run_on_backend(backend, _next, chunks)
    except VmImageError as exc:
        log.warning("a download was cut: %s", exc.message)
        raise
    finally:
        _close_reader(chunks)


ZEROCOPY_SEND = "http.response.zerocopysend"      # the ASGI extension: sendfile of an open file


class OpenFileResponse(Response):
    """An answer whose body is `count` bytes of an open file of this node's from `start` (a
    file store's image): sent by the kernel (sendfile, the bytes never pass through Python)
    when the server offers the ASGI zero-copy send extension, as `vmimage serve` does; else
    read in chunks on threads. The file is closed when the answer ends."""

    def __init__(self, file: BinaryIO, start: int, count: int, status_code: int,
                 headers: Mapping[str, str]) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self.file, self.start, self.count = file, start, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope["method"] == "HEAD" or self.count == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif ZEROCOPY_SEND in scope.get("extensions", {}):
                await send({"type": ZEROCOPY_SEND, "file": self.file, "offset": self.start, "count": self.count,
                            "more_body": False})
            else:
                position, left = self.start, self.count
                while left > 0:
                    chunk = await run_in_threadpool(os.pread, self.file.fileno(), min(READ_CHUNK, left), position)
                    if not chunk:
                        raise OSError(f"the file ended {left} bytes early")
                    position, left = position + len(chunk), left - len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
        finally:
            self.file.close()
