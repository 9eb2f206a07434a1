"""OpenFileResponse: the kernel's send (the ASGI zero-copy send extension) when the server
offers it, else the file's bytes read in chunks; the file closed either way."""

from __future__ import annotations

import asyncio
import os

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from vmimage.faces.limits import ZEROCOPY_SEND, OpenFileResponse


def test_without_the_extension_the_bytes_are_read_and_sent(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "blob").write_bytes(data)
    opened = []

    async def download(request):
        file = open(tmp_path / "blob", "rb")
        opened.append(file)
        start = int(request.query_params["start"])
        count = int(request.query_params["count"])
        return OpenFileResponse(file, start, count, 200, {"Content-Length": str(count)})

    with TestClient(Starlette(routes=[Route("/f", download)])) as client:
        assert client.get("/f?start=0&count=%d" % len(data)).content == data
        assert client.get("/f?start=1000&count=2000000").content == data[1000:2001000]
        assert client.get("/f?start=5&count=0").content == b""
    assert opened and all(file.closed for file in opened)


def test_with_the_extension_the_open_file_is_handed_to_the_server(tmp_path):
    (tmp_path / "blob").write_bytes(b"x" * 100)
    file = open(tmp_path / "blob", "rb")
    sent = []

    async def send(message):
        sent.append({k: v for k, v in message.items() if k != "headers"})

    async def receive():
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "extensions": {ZEROCOPY_SEND: {}}}
    asyncio.run(OpenFileResponse(file, 10, 50, 206, {"Content-Length": "50"})(scope, receive, send))
    assert sent == [{"type": "http.response.start", "status": 206},
                    {"type": ZEROCOPY_SEND, "file": file, "offset": 10, "count": 50, "more_body": False}]
    assert file.closed
