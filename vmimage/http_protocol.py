"""The HTTP/1.1 protocol `vmimage serve` runs: uvicorn's httptools protocol with bounded request
heads and a bounded number of connections.

Stock httptools takes a head of any size, and joins a header's pieces as they arrive (quadratic
in the number of reads) on the event loop: one client sending a 64 MiB header held every other
request for seconds. Here a head is held back from the parser and counted as its bytes arrive:
a line over MAX_LINE bytes, a head over MAX_HEAD bytes or more than MAX_HEADERS header fields is
refused at once (414 for the request line, else 431) and the connection closed; a complete head
goes to the parser in one piece. A head must be complete within VMIMAGE_HEADER_TIMEOUT_SECONDS of
its first byte (of the connection's start, for a new one), else the connection is closed. The
connections of a process are bounded (VMIMAGE_MAX_CONNECTIONS): a newcomer beyond the bound
displaces the longest-idle keep-alive connection, else the oldest unfinished head, else it is
turned away with a 503; idle keep-alive connections are bounded too (VMIMAGE_MAX_IDLE_CONNECTIONS).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from vmimage.settings import Settings

MAX_LINE = 16 * 1024        # the request line or one header line, CRLF excluded (Glance's max_header_line)
MAX_HEAD = 64 * 1024        # the request line and every header line, CRLFs included
MAX_HEADERS = 100
# Open files a process keeps for itself besides its connections (database, logs, libraries);
# each connection may hold a second one (an image file, a backend socket).
FILES_BESIDES_CONNECTIONS = 256
FILES_PER_CONNECTION = 2


@dataclass(frozen=True)
class Limits:
    header_timeout: float       # seconds; 0: none
    max_connections: int        # -1: no bound
    max_idle: int


@cache
def limits() -> Limits:
    """This process's limits, from the environment (VMIMAGE_*); the connection bound is cut to
    what the open-file limit allows once it is raised as far as the hard limit lets it."""
    settings = Settings()
    connections = settings.max_connections
    if connections >= 0:
        connections = min(connections, _connections_that_fit(connections))
    return Limits(header_timeout=max(0.0, settings.header_timeout_seconds), max_connections=connections,
                  max_idle=max(0, settings.max_idle_connections))


def _connections_that_fit(wanted: int) -> int:
    """Raises the soft open-file limit (up to the hard one) for `wanted` connections; returns
    how many fit, so that a flood of connections meets the bound and not EMFILE (which would
    fail database and file opens of requests under way)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FILES_BESIDES_CONNECTIONS + FILES_PER_CONNECTION * wanted
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, (soft - FILES_BESIDES_CONNECTIONS) // FILES_PER_CONNECTION)


ZEROCOPY_SEND = "http.response.zerocopysend"     # the ASGI extension (sendfile of an open file)


async def _sendfile(transport: asyncio.Transport, file_fd: int, offset: int, count: int) -> None:
    """count bytes of the file from offset to the transport's socket by os.sendfile, with the
    socket's buffer awaited on the event loop and never on a thread.

    Each call runs on a thread: the socket is non-blocking, so a call returns as soon as the
    socket's buffer is full, but reading the file may wait on the disk (pages not cached), which
    the event loop must not do. The calls go to a duplicate of the socket's fd: it keeps the
    socket (and the fd's number) ours while a call runs, even if the connection is closed
    meanwhile, and the loop takes a writer on it (uvloop has no loop.sendfile, and refuses a
    writer on a transport's own fd)."""
    loop = asyncio.get_running_loop()
    while transport.get_write_buffer_size():       # the head, if the socket did not take it whole
        await asyncio.sleep(0.001)
    sock_fd = os.dup(transport.get_extra_info("socket").fileno())
    try:
        while count > 0:
            if transport.is_closing():
                raise ConnectionResetError("the connection is closing")
            try:
                sent = await run_in_threadpool(os.sendfile, sock_fd, file_fd, offset, min(count, _SENDFILE_MAX))
            except BlockingIOError:
                await _writable(loop, sock_fd)
                continue
            if sent == 0:
                raise OSError(f"the file ended {count} bytes early")
            offset += sent
            count -= sent
    finally:
        os.close(sock_fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)
    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


_SENDFILE_MAX = 1 << 30


class KernelSendCycle(RequestResponseCycle):
    """A request's response, which may send part of an open file with the kernel's sendfile
    (the ASGI zero-copy send extension): the bytes go from the page cache to the socket, never
    through Python (a download of a file store's image costs a fraction of the CPU a read and
    write loop does, bench/download.py)."""

    async def send(self, message: Any) -> None:
        if message["type"] != ZEROCOPY_SEND:
            await super().send(message)
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started or self.response_complete or self.chunked_encoding:
            raise RuntimeError(f"'{ZEROCOPY_SEND}' is sent only within a response of known length")
        file = message["file"]
        offset = message.get("offset")
        if offset is None:
            offset = file.tell()
        count = message.get("count")
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        if self.scope["method"] != "HEAD" and count > 0:
            if count > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            try:
                await _sendfile(self.transport, file.fileno(), offset, count)
            except asyncio.CancelledError:
                self.transport.close()        # the answer is cut short: the connection cannot go on
                raise
            except Exception as exc:
                gone = isinstance(exc, ConnectionError) or self.transport.is_closing()
                self.transport.close()
                if gone:                      # the client went away: as a write to a closed transport
                    self.disconnected = True
                    return
                raise
            self.expected_content_length -= count
        await super().send({"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)})


class _HeadRefused(Exception):
    """Raised in a parser callback to stop the parser at a head over the limits."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # This process's connections waiting idle for their next request and those whose head has
    # not come in whole, each oldest first.
    _idle: ClassVar[dict[BoundedHttpToolsProtocol, None]] = {}
    _waiting: ClassVar[dict[BoundedHttpToolsProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self._reading_head = True       # the next bytes begin or continue a request head
        self._held = bytearray()        # bytes of the head not given to the parser yet...
        self._held_fed = 0              # ...but for these first ones (a pipelined head's start)
        self._line_start = 0            # in _held: where the line coming in starts
        self._lines = 0                 # complete lines of the head so far, the request line included
        self._body_left: int | None = 0  # bytes due of a Content-Length body; None: only the parser knows
        self._parser_in_head = False    # the parser has begun a message whose head it has not finished
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._unheld = False            # the parser is given bytes that may hold a head not counted here

    # Connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._make_room():
            self._refusal = (503, "The service has as many connections as it takes; try again shortly.")
            self._answer_and_close(*self._refusal)
            return
        self._waiting[self] = None
        self._start_head_clock()

    def _make_room(self) -> bool:
        """True when this new connection may stay: under the bound, or another made way for it."""
        bound = self.limits.max_connections
        if bound < 0 or len(self.connections) <= bound:
            return True
        for pool in (self._idle, self._waiting):
            victim = next((c for c in pool if c is not self), None)
            if victim is not None:
                victim._close()
                return True
        return False

    def _close(self) -> None:
        self._idle.pop(self, None)
        self._waiting.pop(self, None)
        self._stop_head_clock()
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle.pop(self, None)
        self._waiting.pop(self, None)
        self._stop_head_clock()
        self._held = bytearray()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None and not self._held:   # idle till the next request
            self._idle[self] = None
            if len(self._idle) > self.limits.max_idle:
                next(iter(self._idle))._close()

    # The head clock

    def _start_head_clock(self) -> None:
        if self.limits.header_timeout and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._start_head_clock()     # a pipelined head: its time starts once the response before it is out
            return
        self._close()

    # Bytes in

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._idle.pop(self, None)
        while data and self._refusal is None and not self.transport.is_closing():
            data = self._take_head(data) if self._reading_head else self._take_body(data)

    def _take_head(self, data: bytes) -> bytes:
        """Holds the head's bytes until it is whole, then gives it to the parser; returns what
        follows it."""
        held_before = len(self._held)
        if not held_before:
            end = self._whole_small_head(data)
            if end is not None:         # most requests: the whole head in one read
                self._feed(data if end == len(data) else data[:end])
                return data[end:]
        self._waiting.setdefault(self, None)
        self._start_head_clock()
        if held_before:
            self._held += memoryview(data)[:MAX_HEAD + 1 - held_before]
            buffer: bytes | bytearray = self._held
        else:
            buffer = data
        end = self._scan(buffer)
        if end is None:
            if not held_before and self._refusal is None:
                self._held = bytearray(data)        # _scan refuses anything over MAX_HEAD
            return b""
        head = bytes(buffer[self._held_fed:end])
        self._held, self._held_fed, self._line_start, self._lines = bytearray(), 0, 0, 0
        self._feed(head)
        return data[end - held_before:]

    @staticmethod
    def _whole_small_head(data: bytes) -> int | None:
        """Where the head at the start of data ends when it is all there and too short for any
        line to be over the limit (most requests, in one read): two searches in C."""
        if data.startswith(b"\r\n"):
            return None
        end = data.find(b"\r\n\r\n", 0, MAX_LINE)
        if end < 0 or data.count(b"\r\n", 0, end) > MAX_HEADERS:
            return None
        return end + 4

    def _scan(self, buffer: bytes | bytearray) -> int | None:
        """Where the head in buffer ends, or None while it goes on (or was refused): counts the
        lines not counted yet and refuses the head at the first limit it breaks."""
        pos, lines = self._line_start, self._lines
        searched = min(len(buffer), MAX_HEAD)
        # Lines end at LF (one byte: memchr, far quicker than a search for CRLF through a long
        # line); a CR before it is the line's end. The parser refuses a bare LF itself.
        while (lf := buffer.find(b"\n", pos, searched)) >= 0:
            length = lf - pos - (1 if lf > pos and buffer[lf - 1] == 13 else 0)
            if length == 0:
                if lines:
                    return lf + 1
                pos = lf + 1            # an empty line before the request line is skipped, as the parser does
                continue
            if length > MAX_LINE:
                self._refuse_line(lines)
                return None
            lines += 1
            if lines > MAX_HEADERS + 1:
                self._refuse(431, f"A request may have up to {MAX_HEADERS} header fields.")
                return None
            pos = lf + 1
        self._line_start, self._lines = pos, lines
        coming = len(buffer) - pos - (1 if buffer.endswith(b"\r") else 0)
        if coming > MAX_LINE:
            self._refuse_line(lines)
        elif len(buffer) > MAX_HEAD:
            self._refuse(431, f"The request head (request line and header fields) is over {MAX_HEAD} bytes.")
        return None

    def _refuse_line(self, lines: int) -> None:
        if lines == 0:
            self._refuse(414, f"The request line is over {MAX_LINE} bytes.")
        else:
            self._refuse(431, f"A header line is over {MAX_LINE} bytes.")

    def _take_body(self, data: bytes) -> bytes:
        """Gives the body's bytes to the parser; returns what follows the body when its length is
        known, so that the next head is held as any head."""
        if self._body_left:
            piece = data[:self._body_left]
            self._body_left -= len(piece)
            self._feed(piece)
            return data[len(piece):]
        # A chunked body: the parser alone finds its end, and may take a pipelined head's start
        # from the same read; that start (after the body's closing empty line) is counted as held.
        self._unheld = True
        try:
            self._feed(data)
        finally:
            self._unheld = False
        if self._parser_in_head and self._refusal is None and not self.transport.is_closing():
            end_of_body = data.rfind(b"\r\n\r\n")
            self._hold_fed(data[end_of_body + 4 if end_of_body >= 0 else 0:])
        return b""

    def _hold_fed(self, start: bytes) -> None:
        self._waiting.setdefault(self, None)
        self._start_head_clock()
        self._held, self._held_fed, self._line_start, self._lines = bytearray(start), len(start), 0, 0
        if self._scan(self._held) is not None:      # cannot be whole: the parser would have finished it
            self._held, self._held_fed, self._line_start, self._lines = bytearray(), 0, 0, 0

    def _feed(self, data: bytes) -> None:
        super().data_received(data)

    def _unsupported_upgrade_warning(self) -> None:
        """No route speaks WebSocket (ws="none") or h2c: an upgrade request is served as plain
        HTTP/1.1, and logs nothing (a warning for each would let any client fill the log)."""

    # Refusals

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        self._send_refusal()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:       # the parser stopped at a callback's refusal
            self._send_refusal()
        else:
            super().send_400_response(msg)

    def _send_refusal(self) -> None:
        assert self._refusal is not None
        self._waiting.pop(self, None)
        self._stop_head_clock()
        self._held = bytearray()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The response to an earlier request is being written: nothing goes across it, the
            # connection closes after it.
            self.cycle.keep_alive = False
            self.pipeline.clear()
            self.flow.pause_reading()
            return
        self._answer_and_close(*self._refusal)

    def _answer_and_close(self, status: int, message: str) -> None:
        """A whole response, then the connection closes. No face has claimed the request, so one
        body serves every SDK: JSON text with Glance's error object and what JD's SDK needs to see
        an error (requestId, status; Huawei's reads the code and message), sent as text/plain
        since glanceclient fails on a JSON body with a top-level string (it shows the text)."""
        title = STATUS_LINE[status].decode().split(" ", 2)[2].strip()
        body = json.dumps({"requestId": uuid.uuid4().hex, "error": {
            "code": status, "status": "UNAVAILABLE" if status == 503 else "INVALID_ARGUMENT", "title": title,
            "message": message}}).encode()
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        if status == 503:
            head.append(b"retry-after: 1\r\n")
        head += [b"content-type: text/plain; charset=utf-8\r\n", b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    # Parser callbacks

    def on_message_begin(self) -> None:
        self._parser_in_head = True
        HttpToolsProtocol.on_message_begin(self)
        if self.transport.get_extra_info("sslcontext") is None:      # sendfile would bypass TLS
            self.scope.setdefault("extensions", {})[ZEROCOPY_SEND] = {}

    def on_headers_complete(self) -> None:
        self._parser_in_head = self._reading_head = False
        self._waiting.pop(self, None)
        self._stop_head_clock()
        if self._unheld:
            self._check_parsed_head()
        self._body_left = self._content_length()
        before = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not before and type(self.cycle) is RequestResponseCycle:
            # Its ASGI task has not run yet: from its first send on, it sends files too.
            self.cycle.__class__ = KernelSendCycle

    def _check_parsed_head(self) -> None:
        """The limits, on a head the parser took whole from a read with a chunked body before it
        (what it cost is bounded by that read)."""
        lines = [len(name) + 2 + len(value) for name, value in self.headers]
        if len(self.url) > MAX_LINE:
            self._refusal = (414, f"The request line is over {MAX_LINE} bytes.")
        elif lines and max(lines) > MAX_LINE:
            self._refusal = (431, f"A header line is over {MAX_LINE} bytes.")
        elif len(lines) > MAX_HEADERS:
            self._refusal = (431, f"A request may have up to {MAX_HEADERS} header fields.")
        elif len(self.url) + sum(lines) + 2 * len(lines) > MAX_HEAD:
            self._refusal = (431, f"The request head (request line and header fields) is over {MAX_HEAD} bytes.")
        if self._refusal is not None:
            raise _HeadRefused      # stops the parser; its error ends in send_400_response

    def _content_length(self) -> int | None:
        """The body's length, None when chunked (the parser has refused a malformed length)."""
        length = 0
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return None
        return length

    def on_message_complete(self) -> None:
        self._reading_head = True
        HttpToolsProtocol.on_message_complete(self)
