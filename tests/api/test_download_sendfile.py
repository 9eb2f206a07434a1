"""A file store's image is sent by the kernel (sendfile, `vmimage serve`'s zero-copy send): the
same bytes, ranges and headers as before; a client that stops reading holds up nobody; a
client that goes away mid-download leaves no open file or socket behind."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

import httpx

OCTET = {"Content-Type": "application/octet-stream"}
SIZE = 24 << 20       # well over a socket's buffer: the send waits for the client many times


def uploaded(http: httpx.Client, data: bytes) -> str:
    image = http.post("/v2/images", json={"name": "big", "disk_format": "raw", "container_format": "bare"}).json()
    assert http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 204
    return image["id"]


def download_bytes(server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('vmimage_download_bytes_total{face="glance_v2"}'))


def open_fds(server) -> list[str]:
    """The server's open sockets and image files (its database pool grows with the requests
    at once: not counted)."""
    fds = f"/proc/{server.proc.pid}/fd"
    found = []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:") or target.startswith(str(server.store_dir)):
            found.append(target)
    return sorted(found)


def raw_get(server, path: str) -> socket.socket:
    """A GET on a raw socket, its answer left unread."""
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {server.token('demo')}\r\n\r\n".encode())
    return sock


def test_downloads_and_ranges_answer_the_stored_bytes(server):
    data = os.urandom(SIZE)
    with server.client("demo") as http:
        image_id = uploaded(http, data)
        counted = download_bytes(server)
        full = http.get(f"/v2/images/{image_id}/file")
        assert full.status_code == 200 and full.content == data
        assert full.headers["Content-Length"] == str(SIZE) and full.headers["Content-MD5"]
        part = http.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={SIZE - 5_000_000}-{SIZE - 2}"})
        assert part.status_code == 206 and part.content == data[SIZE - 5_000_000:SIZE - 1]
        assert part.headers["Content-Range"] == f"bytes {SIZE - 5_000_000}-{SIZE - 2}/{SIZE}"
        # The bytes the kernel sent are counted as sent.
        assert download_bytes(server) - counted == SIZE + 4_999_999


def test_a_client_that_stops_reading_holds_up_nobody_and_one_that_leaves_leaves_nothing(server):
    data = os.urandom(SIZE)
    with server.client("demo") as http:
        image_id = uploaded(http, data)
        assert http.get(f"/v2/images/{image_id}/file").content == data
        before = open_fds(server)
        stalled = [raw_get(server, f"/v2/images/{image_id}/file") for _ in range(4)]
        for sock in stalled:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # The downloads wait on their clients' full buffers; everyone else is answered at once.
        for _ in range(20):
            started = time.monotonic()
            assert http.get("/v2/images").status_code == 200
            assert time.monotonic() - started < 2.0
        with server.client("demo") as other:
            assert other.get(f"/v2/images/{image_id}/file").content == data
        for sock in stalled:        # gone mid-download
            sock.close()
        deadline = time.monotonic() + 10
        while len(open_fds(server)) > len(before) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(open_fds(server)) <= len(before), ("sockets or files of the cut downloads are still open",
                                                      open_fds(server), before)
        assert http.get(f"/v2/images/{image_id}/file").content == data
