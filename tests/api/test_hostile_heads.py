"""Hostile request heads (issue 19, item 1): a header line over 16 KiB, a head over 64 KiB or more
than 100 header fields is refused as its bytes arrive, before any face sees it; a head that does
not come in whole within VMIMAGE_HEADER_TIMEOUT_SECONDS closes the connection; idle keep-alive
connections and all connections of a process are bounded. Every test talks to a real server
process over raw sockets."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import statistics
import threading
import time
from contextlib import ExitStack

import httpx
import pytest

from tests.api.test_request_limits import rss_kib
from tests.api.test_scale_out import pg_database  # noqa: F401  (a fixture: a fresh PostgreSQL database)
from tests.conftest import PERSONAS, auth_body, start_server

KiB, MiB = 1 << 10, 1 << 20
HEADER_TIMEOUT = 2


@pytest.fixture(scope="module")
def target(tmp_path_factory, database_factory):
    """A server of its own (it is attacked), with a 2-second head timeout."""
    srv = start_server(tmp_path_factory.mktemp("heads"), database_factory(),
                       VMIMAGE_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    yield srv
    srv.stop()


def connect(url: str, timeout: float = 10) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset after its answer counts
    as a close)."""
    out = b""
    try:
        while more := sock.recv(65536):
            out += more
    except ConnectionResetError:
        pass
    return out


def read_response(sock: socket.socket) -> int:
    """One whole response on a kept-alive connection; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed before a response")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed in a response")
        body += more
    return int(head.split(b" ", 2)[1])


def status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def head(*lines: bytes, path: bytes = b"/versions") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def refused(url: str, payload: bytes) -> tuple[int, dict, float]:
    """Sends payload at once; the status, JSON error and seconds until the server closed."""
    with connect(url) as sock:
        started = time.monotonic()
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass          # refused before it had all of it: its answer is in the socket already
        status, body = status_and_body(read_until_closed(sock))
        return status, json.loads(body)["error"], time.monotonic() - started


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass        # closed meanwhile
    return count


# --- the limits -----------------------------------------------------------------------------

def test_a_header_line_over_16_kib_is_refused_at_once(target):
    status, error, seconds = refused(target.url, head(b"X-Big: " + b"a" * (17 * KiB)))
    assert status == 431 and error["code"] == 431 and "16384" in error["message"], error
    assert seconds < 2


def test_a_header_line_of_16_kib_is_taken(target):
    with connect(target.url) as sock:
        sock.sendall(head(b"X-Big: " + b"a" * (16 * KiB - 7), b"Connection: close"))
        assert status_and_body(read_until_closed(sock))[0] == 200


def test_headers_over_64_kib_in_all_are_refused(target):
    lines = [b"X-Part-%d: %s" % (i, b"b" * 1000) for i in range(65)]      # 65 lines of ~1 KiB
    status, error, seconds = refused(target.url, head(*lines))
    assert status == 431 and "65536" in error["message"], error
    assert seconds < 2


def test_more_than_100_header_fields_are_refused(target):
    status, error, _ = refused(target.url, head(*(b"X-Field-%d: 1" % i for i in range(100))))   # Host makes 101
    assert status == 431 and "100 header fields" in error["message"], error
    with connect(target.url) as sock:       # 100 are fine
        sock.sendall(head(*(b"X-Field-%d: 1" % i for i in range(98)), b"Connection: close"))
        assert status_and_body(read_until_closed(sock))[0] == 200


def test_a_request_line_over_16_kib_is_refused(target):
    status, error, _ = refused(target.url, head(path=b"/v2/images?name=" + b"n" * (17 * KiB)))
    assert status == 414 and error["code"] == 414, error


def test_a_pipelined_head_after_a_body_is_held_to_the_same_limits(target):
    """A request after a Content-Length body and one after a chunked body, sent in one write with
    the body before them: the first request is answered, the over-long head after it is not."""
    for framing in (b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"):
        first = b"POST /versions HTTP/1.1\r\nHost: test\r\n" + framing
        for second, answered in ((head(b"Connection: close"), 200),
                                 (head(b"X-Big: " + b"a" * (17 * KiB), b"Connection: close"), None)):
            with connect(target.url) as sock:
                sock.sendall(first + second)
                raw = read_until_closed(sock)
            statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]
            # /versions takes GET only; a refusal is not written across the answer before it.
            assert statuses in ([[405, 200]] if answered else [[405], [405, 431]]), raw[:600]


def test_a_pipelined_head_begun_in_the_read_of_a_chunked_body_is_counted_from_its_start(target):
    """The second head's first 10 KiB line comes with the chunked body, the rest later: 7 KiB more
    of that line makes it too long, an end to it is fine."""
    first = (b"POST /versions HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
             b"GET /versions HTTP/1.1\r\nHost: test\r\nX-Long: " + b"a" * (10 * KiB))
    for rest, answered in ((b"a" * (7 * KiB), None), (b"\r\nConnection: close\r\n\r\n", 200)):
        with connect(target.url) as sock:
            sock.sendall(first)
            time.sleep(0.3)
            sock.sendall(rest)
            raw = read_until_closed(sock)
        statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]
        assert statuses in ([[405, 200]] if answered else [[405, 431]]), raw[:600]


@pytest.mark.parametrize("shape", ["one line", "many lines"])
@pytest.mark.parametrize("pace", ["fast", "slow"])
def test_a_64_mib_header_is_refused_after_64_kib_and_never_buffered(target, shape, pace):
    """64 MiB of header, as one line or as 100-byte lines, fast or in 4 KiB pieces: the server
    answers 431 (or resets) once the limit is passed, and its memory does not grow with it."""
    pid = target.proc.pid
    before = rss_kib(pid)
    piece = 256 * KiB if pace == "fast" else 4 * KiB
    chunk = b"a" * piece if shape == "one line" else (b"X-Many: " + b"m" * 90 + b"\r\n") * (piece // 100)
    with connect(target.url, timeout=30) as sock:
        sock.sendall(b"GET /versions HTTP/1.1\r\nHost: test\r\n" + (b"X-Big: " if shape == "one line" else b""))
        sent, answer = 0, b""
        while sent < 64 * MiB:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0 if pace == "fast" else 0.005)[0]:
                break
        answer = read_until_closed(sock)
    if answer:
        assert status_and_body(answer)[0] == 431, answer[:300]
    # What the client got off its hands: the limit plus the loopback socket buffers (several MiB
    # on a busy machine), far from 64 MiB.
    assert sent < (24 * MiB if pace == "fast" else 256 * KiB), sent
    assert rss_kib(pid) - before < 32 * 1024
    assert httpx.get(f"{target.url}/versions").status_code == 200


# --- the head timeout ------------------------------------------------------------------------

@pytest.mark.parametrize("stall", ["nothing sent", "half a head", "a byte every half second"])
def test_a_head_not_complete_within_the_timeout_is_closed(target, stall):
    with connect(target.url, timeout=20) as sock:
        started = time.monotonic()
        if stall == "half a head":
            sock.sendall(b"GET /versions HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        elif stall == "a byte every half second":
            trickle = b"GET /versions HTTP/1.1\r\nHost: test\r\n" + b"X" * 100
            for byte in trickle:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                if select.select([sock], [], [], 0.5)[0]:
                    break
        assert read_until_closed(sock) == b""
        closed_after = time.monotonic() - started
    assert HEADER_TIMEOUT - 0.5 < closed_after < HEADER_TIMEOUT + 4, closed_after


def test_a_slow_request_that_completes_its_head_in_time_is_served(target):
    with connect(target.url) as sock:
        for part in (b"GET /versions HTTP/1.1\r\n", b"Host: test\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(part)
            time.sleep(0.4)
        assert status_and_body(read_until_closed(sock))[0] == 200


def test_a_keep_alive_connection_gets_a_new_head_clock_for_each_request(target):
    """Idle time between requests is the keep-alive timeout's business, not the head's."""
    with connect(target.url) as sock:
        for _ in range(3):
            sock.sendall(head())
            assert read_response(sock) == 200
            time.sleep(HEADER_TIMEOUT * 0.75)


# --- the attack, and everyone else -------------------------------------------------------------

class HeadAttack:
    """Four clients streaming 64 MiB headers over and over, and a crowd of half-open heads kept
    at `half_open` by reopening what the server closes."""

    def __init__(self, url: str, half_open: int = 220) -> None:
        self.url, self.half_open = url, half_open
        self.stop = threading.Event()
        self.sent_per_connection: list[int] = []
        self.reopened = 0
        self.threads = [threading.Thread(target=self._stream, daemon=True) for _ in range(4)]
        self.threads.append(threading.Thread(target=self._crowd, daemon=True))

    def __enter__(self) -> HeadAttack:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _stream(self) -> None:
        piece = b"a" * (256 * KiB)
        while not self.stop.is_set():
            sent = 0
            try:
                with connect(self.url) as sock:
                    sock.sendall(b"GET /v2/images HTTP/1.1\r\nHost: test\r\nX-Huge: ")
                    while sent < 64 * MiB and not self.stop.is_set():
                        sock.sendall(piece)
                        sent += len(piece)
            except OSError:
                pass
            self.sent_per_connection.append(sent)

    def _crowd(self) -> None:
        with ExitStack() as stack:
            socks: list[socket.socket] = []
            while not self.stop.is_set():
                while len(socks) < self.half_open:
                    try:
                        sock = stack.enter_context(connect(self.url))
                        sock.sendall(b"GET /v2/images HTTP/1.1\r\nHost: test\r\nX-Half: ")
                        socks.append(sock)
                    except OSError:
                        break
                closed = select.select(socks, [], [], 0.1)[0]
                for sock in closed:
                    socks.remove(sock)
                    sock.close()
                    self.reopened += 1


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def test_other_clients_keep_their_latency_during_a_head_attack(target):
    """While 4 clients stream 64 MiB headers and 220 heads stay half-open, another project logs in
    (Keystone) and lists its images (Glance) about as fast as in quiet times (the hole made each
    list wait 16 s); the server's memory stays put and every attacking connection is let go."""
    password, project, _ = PERSONAS["alt"]
    # A new connection for every request, as a client arriving would.
    client = httpx.Client(base_url=target.url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))

    def login() -> str:
        resp = client.post("/identity/v3/auth/tokens", json=auth_body("alt", password, project))
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    token = login()

    def listing() -> None:
        resp = client.get("/v2/images", headers={"X-Auth-Token": token})
        assert resp.status_code == 200, resp.text

    pid = target.proc.pid
    quiet_list = [timed(listing) for _ in range(10)]
    quiet_login = [timed(login) for _ in range(5)]
    idle_rss, idle_sockets = rss_kib(pid), open_sockets(pid)
    with HeadAttack(target.url) as attack:
        started = time.monotonic()
        time.sleep(1)
        busy_list, busy_login, peak_rss, crowd = [], [], 0, 0
        # At least 10 rounds, and long enough for the server to close the first crowd's heads.
        while len(busy_list) < 10 or time.monotonic() - started < HEADER_TIMEOUT + 3:
            busy_list.append(timed(listing))
            busy_login.append(timed(login))
            peak_rss = max(peak_rss, rss_kib(pid))
            crowd = max(crowd, open_sockets(pid) - idle_sockets)
    client.close()
    # Several times the quiet latency (the attackers, and in CI another suite, share the 2 cores), not the 16 s of the hole.
    for quiet, busy in ((quiet_list, busy_list), (quiet_login, busy_login)):
        assert statistics.median(busy) < max(10 * statistics.median(quiet), 2.0), (quiet, busy)
        assert max(busy) < 8, (quiet, busy)
    assert peak_rss - idle_rss < 64 * 1024, (idle_rss, peak_rss)
    assert crowd >= 150, crowd                    # the crowd was there
    assert attack.reopened >= 100                 # and the server closed its heads (after 2 s each)
    assert attack.sent_per_connection and max(attack.sent_per_connection) < 24 * MiB
    deadline = time.monotonic() + HEADER_TIMEOUT + 5
    while open_sockets(pid) > idle_sockets + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_sockets(pid) <= idle_sockets + 5, "connections left open after the attack"


# --- connection bounds -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bounded(tmp_path_factory, database_factory):
    """A server with room for 12 connections, 3 of them idle."""
    srv = start_server(tmp_path_factory.mktemp("bounded"), database_factory(), VMIMAGE_MAX_CONNECTIONS="12",
                       VMIMAGE_MAX_IDLE_CONNECTIONS="3", VMIMAGE_HEADER_TIMEOUT_SECONDS="30")
    yield srv
    srv.stop()


def closed_by_server(sock: socket.socket, wait: float = 2) -> bool:
    if not select.select([sock], [], [], wait)[0]:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_keep_alive_connections_are_bounded(bounded):
    socks = []
    with ExitStack() as stack:
        for _ in range(5):
            sock = stack.enter_context(connect(bounded.url))
            sock.sendall(head())
            assert read_response(sock) == 200
            socks.append(sock)
        assert [closed_by_server(s, 0.5) for s in socks] == [True, True, False, False, False]
        socks[-1].sendall(head(b"Connection: close"))     # the newest still serve
        assert status_and_body(read_until_closed(socks[-1]))[0] == 200


def test_a_newcomer_displaces_the_oldest_unfinished_head(bounded):
    with ExitStack() as stack:
        crowd = [stack.enter_context(connect(bounded.url)) for _ in range(12)]
        for sock in crowd:
            sock.sendall(b"GET /versions HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.3)
        with connect(bounded.url) as sock:
            sock.sendall(head(b"Connection: close"))
            assert status_and_body(read_until_closed(sock))[0] == 200
        assert closed_by_server(crowd[0])
        assert not any(closed_by_server(s, 0.1) for s in crowd[2:])


def test_when_every_connection_is_busy_a_newcomer_gets_503(bounded):
    """12 requests waiting for their bodies hold every place: the 13th connection is answered 503
    at once; once they go, the service answers again."""
    token = bounded.token("demo")
    time.sleep(0.5)         # earlier tests' connections are gone
    with ExitStack() as stack:
        busy = []
        for _ in range(12):
            sock = stack.enter_context(connect(bounded.url))
            sock.sendall(b"POST /v2/images HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                         b"X-Auth-Token: " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
            busy.append(sock)
        time.sleep(0.5)
        with connect(bounded.url) as sock:
            status, body = status_and_body(read_until_closed(sock))
        assert status == 503 and json.loads(body)["error"]["code"] == 503
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{bounded.url}/versions", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("the service did not come back once the connections went")


# --- several worker processes ------------------------------------------------------------------

def test_heads_are_bounded_with_several_worker_processes(tmp_path_factory, pg_database):  # noqa: F811
    """`--workers 2` (PostgreSQL): each process runs the bounded protocol, whichever takes a connection."""
    srv = start_server(tmp_path_factory.mktemp("workers"), pg_database, VMIMAGE_WORKERS="2",
                       VMIMAGE_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    try:
        with ExitStack() as stack:
            stalled = [stack.enter_context(connect(srv.url, timeout=20)) for _ in range(8)]
            for sock in stalled:
                sock.sendall(b"GET /versions HTTP/1.1\r\n")
            started = time.monotonic()
            for _ in range(8):
                status, error, _ = refused(srv.url, head(b"X-Big: " + b"a" * (17 * KiB)))
                assert status == 431, error
            for sock in stalled:
                assert read_until_closed(sock) == b""
            assert time.monotonic() - started < HEADER_TIMEOUT + 4
        with httpx.Client(base_url=srv.url, headers={"X-Auth-Token": srv.token("demo")}) as http:
            assert http.get("/v2/images").status_code == 200
    finally:
        srv.stop()
