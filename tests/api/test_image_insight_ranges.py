"""Image insight of images in no local file, read by ranges: the S3 store (the default store on a
real Swift s3api) and Glance's add-location (a web server on loopback, under the URL policy).
The report is the one a file store gives, and only a small part of the image is fetched."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.api.test_image_insight import OCTET, PATCH, insight_of, needs_debootstrap
from tests.api.test_hostile_backends import FORWARD, STALL, proxied_env, swift_proxy
from tests.api.test_s3_store import s3_env
from tests.conftest import start_server
from tests.guest_images import debian_disk, os_disk


class _RangedFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a directory with single byte ranges (206), counting the bytes it sends; under
    /norange/ the same files without ranges (200, the whole file)."""

    def do_GET(self):  # noqa: N802
        name = self.path.removeprefix("/norange")
        path = Path(self.directory) / name.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        ranged = self.headers.get("Range") and not self.path.startswith("/norange/")
        if ranged:
            first, _, last = self.headers["Range"].removeprefix("bytes=").partition("-")
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            try:
                while left > 0:
                    chunk = f.read(min(left, 1 << 20))
                    self.wfile.write(chunk)
                    self.server.sent += len(chunk)
                    left -= len(chunk)
            except OSError:
                pass

    def translate_path(self, path):      # HEAD: the size, with or without /norange
        return super().translate_path(path.removeprefix("/norange"))

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def disks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranged-web")
    os_disk(root, "ubuntu", disk_size=512 << 20)
    return root


@pytest.fixture(scope="module")
def web(disks):
    handler = lambda *a, **k: _RangedFiles(*a, directory=str(disks), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.sent = 0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def s3srv(tmp_path_factory, database_factory, swift_s3):
    tmp = tmp_path_factory.mktemp("s3insight")
    srv = start_server(tmp, database_factory(), **s3_env(swift_s3, tmp, f"vmimage-{uuid.uuid4().hex[:8]}"),
                       VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1")
    yield srv
    srv.stop()


def upload(srv, path: Path, name: str, store: str) -> str:
    with srv.client() as http:
        image_id = http.post("/v2/images", json={"name": name, "disk_format": "qcow2",
                                                 "container_format": "bare"}).json()["id"]
        with path.open("rb") as f:
            put = http.put(f"/v2/images/{image_id}/file", content=f, timeout=600,
                           headers={**OCTET, "X-Image-Meta-Store": store})
        assert put.status_code == 204, put.text
        assert http.get(f"/v2/images/{image_id}").json()["stores"] == store
    return image_id


def same_reading(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("read_from", "bytes_fetched")}


@needs_debootstrap
def test_a_debian_in_s3_reads_as_from_a_file_fetching_a_small_part(s3srv):
    disk = debian_disk(full=False)
    in_file = insight_of(s3srv, upload(s3srv, disk, "debian-file", "local"))
    in_s3 = insight_of(s3srv, upload(s3srv, disk, "debian-s3", "obj"))
    assert in_file["status"] == in_s3["status"] == "done", (in_file, in_s3)
    assert in_s3["report"]["os"]["distribution"] == "debian" and in_s3["report"]["os"]["version"] == "12"
    assert same_reading(in_s3["report"]) == same_reading(in_file["report"])
    assert in_file["report"]["read_from"] == "file" and in_file["report"]["bytes_fetched"] is None
    assert in_s3["report"]["read_from"] == "obj"
    fetched = in_s3["report"]["bytes_fetched"]
    assert in_s3["report"]["bytes_read"] <= fetched < 0.1 * disk.stat().st_size
    assert in_s3["filled"] == in_file["filled"] and "os_distribution" in in_s3["filled"]


def test_an_add_location_image_is_read_by_ranges_of_its_url(s3srv, web):
    url = f"http://127.0.0.1:{web.server_address[1]}/ubuntu.qcow2"
    with s3srv.client() as http:
        image_id = http.post("/v2/images", json={"name": "located", "disk_format": "qcow2",
                                                 "container_format": "bare"}).json()["id"]
        before = web.sent
        resp = http.patch(f"/v2/images/{image_id}", headers=PATCH,
                          json=[{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}])
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "active"
    found = insight_of(s3srv, image_id)
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("ubuntu", "22.04")
    assert found["report"]["read_from"] == "web"
    assert found["report"]["bytes_fetched"] == web.sent - before


def test_a_web_server_without_ranges_fails_the_inspection_only(s3srv, web):
    url = f"http://127.0.0.1:{web.server_address[1]}/norange/ubuntu.qcow2"
    with s3srv.client() as http:
        image_id = http.post("/v2/images", json={"name": "no-ranges", "disk_format": "qcow2",
                                                 "container_format": "bare"}).json()["id"]
        resp = http.patch(f"/v2/images/{image_id}", headers=PATCH,
                          json=[{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}])
        assert resp.status_code == 200, resp.text
        found = insight_of(s3srv, image_id)
        assert found["status"] == "failed" and "does not serve byte ranges" in found["error"], found
        assert found["error"].startswith("inspection failed: ")
        assert http.get(f"/v2/images/{image_id}").json()["status"] == "active"


@pytest.fixture(scope="module")
def stallable(tmp_path_factory, database_factory, swift_s3):
    """A server whose only store is S3 behind a proxy the test switches (forward, stall)."""
    proxy = swift_proxy(swift_s3)
    srv = start_server(tmp_path_factory.mktemp("stallable-insight"), database_factory(),
                       **proxied_env(swift_s3, proxy, f"vmimage-{uuid.uuid4().hex[:8]}"))
    srv.proxy = proxy
    yield srv
    srv.stop()
    proxy.close()


def reinspect(srv, image_id: str) -> dict:
    with srv.client() as http:
        resp = http.post(f"/vmimage/v1/images/{image_id}/insight")
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]["id"]
    deadline = time.monotonic() + 120
    while True:
        found = insight_of(srv, image_id)
        if found["job_id"] == job_id:
            return found
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_stalled_s3_fails_the_inspection_in_time_and_nothing_else(stallable, disks):
    srv = stallable
    image_id = upload(srv, disks / "ubuntu.qcow2", "stalled", "obj")
    assert insight_of(srv, image_id)["status"] == "done"
    srv.proxy.set(STALL)
    try:
        started = time.monotonic()
        found = reinspect(srv, image_id)
        took = time.monotonic() - started
    finally:
        srv.proxy.set(FORWARD)
    assert found["status"] == "failed" and found["error"].startswith("inspection failed: "), found
    assert "obj" in found["error"] and took < 60, (found, took)        # within the reader's deadline
    assert found["report"]["os"]["distribution"] == "ubuntu"            # the last report stays
    with srv.client() as http:
        assert http.get(f"/v2/images/{image_id}").json()["status"] == "active"
    deadline = time.monotonic() + 30             # S3 answers again: the next inspection reads it
    while (again := reinspect(srv, image_id))["status"] != "done":
        assert time.monotonic() < deadline, again
        time.sleep(1)
