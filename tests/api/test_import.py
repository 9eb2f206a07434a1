"""Interoperable import, multiple stores and the Tasks API, over HTTP against a real server
with two file stores (and the read-only http store), with openstacksdk where it has calls."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import reaped, sdk_connect, start_server

OCTET = {"Content-Type": "application/octet-stream"}


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; /redirect?to=URL answers 302 to URL; /slow trickles 8 MiB; /stall
    sends 8 MiB, the first time its first 64 KiB and then nothing for a minute."""

    def do_GET(self):  # noqa: N802
        if self.path == "/stall":
            first, self.server.stalled = not getattr(self.server, "stalled", False), True
            self.send_response(200)
            self.send_header("Content-Length", str(8 << 20))
            self.end_headers()
            try:
                self.wfile.write(b"\0" * (64 << 10))
                if first:
                    self.wfile.flush()
                    time.sleep(60)
                self.wfile.write(b"\0" * ((8 << 20) - (64 << 10)))
            except OSError:
                pass
            return
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", str(8 << 20))
            self.end_headers()
            try:
                for _ in range(128):
                    self.wfile.write(b"\0" * (64 << 10))
                    time.sleep(0.1)
            except OSError:
                pass
            return
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A web server on loopback with a real qcow2 image and a raw one."""
    root = tmp_path_factory.mktemp("web")
    raw = root / "disk.raw"
    raw.write_bytes(os.urandom(2 << 20))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(root / "disk.qcow2")],
                   check=True)
    handler = lambda *a, **k: _Files(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def multi(tmp_path_factory, database_factory):
    tmp = tmp_path_factory.mktemp("multi")
    srv = start_server(tmp, database_factory(), VMIMAGE_STORES=f"fast=file:{tmp}/fast,slow=file:{tmp}/slow",
                       VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1", VMIMAGE_IMPORT_LOCK_STALE_SECONDS="60",
                       VMIMAGE_SHOW_LOCATIONS="true")
    srv.tmp = tmp
    yield srv
    srv.stop()


def store_files(srv, store: str) -> list[str]:
    return sorted(p.name for p in (srv.tmp / store).iterdir() if p.is_file())


def new_image(client, **extra) -> str:
    body = {"name": "imp", "disk_format": "raw", "container_format": "bare", **extra}
    resp = client.post("/v2/images", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def wait_import(client, image_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v2/images/{image_id}").json()
        if "os_glance_import_task" not in body and body["status"] in ("active", "queued"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"import did not finish: {body}")


def stage(client, image_id: str, data: bytes) -> None:
    resp = client.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
    assert resp.status_code == 204, resp.text


def do_import(client, image_id: str, **body):
    return client.post(f"/v2/images/{image_id}/import", json=body)


# --- discovery ----------------------------------------------------------------------------

def test_discovery_and_create_headers(multi, server):
    c = multi.client()
    stores = c.get("/v2/info/stores").json()["stores"]
    assert [s["id"] for s in stores] == ["fast", "slow", "web"]
    assert stores[0]["default"] == "true" and stores[2]["read-only"] == "true"
    assert c.get("/v2/info/import").json()["import-methods"]["value"] == [
        "glance-direct", "web-download", "copy-image", "glance-download"]
    resp = c.post("/v2/images", json={"name": "h"})
    assert resp.headers["OpenStack-image-import-methods"] == (
        "glance-direct,web-download,copy-image,glance-download")
    assert resp.headers["OpenStack-image-store-ids"] == "fast,slow"
    # A single-store service has no store list, as Glance without multi-store.
    assert server.client().get("/v2/info/stores").status_code == 404
    assert multi.client("admin").get("/v2/info/stores/detail").json()["stores"][0]["type"] == "file"
    assert c.get("/v2/info/stores/detail").status_code == 403


# --- glance-direct ------------------------------------------------------------------------

def test_glance_direct_with_openstacksdk_lands_in_every_store(multi):
    conn = sdk_connect(multi, "demo")
    data = os.urandom(3 << 20)
    image = conn.image.create_image(name="sdk-direct", disk_format="raw", container_format="bare")
    conn.image.stage_image(image, data=data)
    assert conn.image.get_image(image.id).status == "uploading"
    assert "staging-" + image.id in store_files(multi, "fast")
    conn.image.import_image(image, method="glance-direct")
    body = wait_import(multi.client(), image.id)
    assert body["status"] == "active" and body["stores"] == "fast,slow"
    assert body["os_glance_importing_to_stores"] == "" and body["os_glance_failed_import"] == ""
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    for store in ("fast", "slow"):
        assert (multi.tmp / store / image.id).read_bytes() == data
    reaped(lambda: "staging-" + image.id not in store_files(multi, "fast"))
    assert b"".join(conn.image.download_image(image.id, stream=True).iter_content(1 << 20)) == data
    tasks = multi.client().get(f"/v2/images/{image.id}/tasks").json()["tasks"]
    assert len(tasks) == 1 and tasks[0]["status"] == "success"
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    conn.close()


def test_glance_direct_to_named_store_and_task_request_id(multi):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"x" * 5000)
    resp = do_import(c, image_id, method={"name": "glance-direct"}, stores=["slow"])
    assert resp.status_code == 202
    assert wait_import(c, image_id)["stores"] == "slow"
    task = c.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["request_id"] == resp.headers["x-openstack-request-id"]
    assert image_id not in store_files(multi, "fast")


def test_stage_refusals(multi):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"abc")
    assert c.put(f"/v2/images/{image_id}/stage", content=b"again", headers=OCTET).status_code == 409
    assert c.put(f"/v2/images/{image_id}/stage", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    other = new_image(c)
    assert multi.client("alt").put(f"/v2/images/{other}/stage", content=b"x", headers=OCTET).status_code == 404
    # Deleting a staged image drops the staged data.
    assert c.delete(f"/v2/images/{image_id}").status_code == 204
    reaped(lambda: "staging-" + image_id not in store_files(multi, "fast"))


def test_unsafe_staged_data_is_refused_and_nothing_kept(multi, images_dir):
    c = multi.client()
    image_id = new_image(c, disk_format="qcow2")
    resp = c.put(f"/v2/images/{image_id}/stage", content=(images_dir / "backing.qcow2").read_bytes(), headers=OCTET)
    assert resp.status_code == 415
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert not [f for f in store_files(multi, "fast") if image_id in f]


# --- 409 on the wrong state, for each method ------------------------------------------------

def test_each_method_refuses_the_wrong_state(multi, web):
    c, admin = multi.client(), multi.client("admin")
    url = f"{web[0]}/disk.raw"
    queued = new_image(c)
    active = new_image(c)
    assert c.put(f"/v2/images/{active}/file", content=b"data", headers=OCTET).status_code == 204
    cases = [
        (c, queued, {"method": {"name": "glance-direct"}}),                 # not staged
        (c, active, {"method": {"name": "web-download", "uri": url}}),       # has data
        (admin, queued, {"method": {"name": "copy-image"}, "stores": ["slow"]}),  # no data to copy
    ]
    for client, image_id, body in cases:
        before = c.get(f"/v2/images/{image_id}").json()
        resp = client.post(f"/v2/images/{image_id}/import", json=body)
        assert resp.status_code == 409, (body, resp.text)
        assert c.get(f"/v2/images/{image_id}").json() == before
        assert c.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []


def test_import_body_refusals(multi):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"abc")
    bad = [
        ({"method": {"name": "ftp-magic"}}, 400),
        ({"method": "glance-direct"}, 400),
        ({"method": {"name": "glance-direct"}, "stores": ["fast"], "all_stores": True}, 400),
        ({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}, 409),
        ({"method": {"name": "glance-direct"}, "stores": ["web"]}, 409),                  # read-only
        ({"method": {"name": "web-download"}}, 400),                                       # no uri
    ]
    for body, status in bad:
        assert do_import(c, image_id, **body).status_code == status, body
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "uploading"


# --- web-download and its URL filtering ---------------------------------------------------

def test_web_download_of_a_qcow2(multi, web):
    c = multi.client()
    image_id = new_image(c, disk_format="qcow2")
    assert do_import(c, image_id, method={"name": "web-download", "uri": f"{web[0]}/disk.qcow2"}).status_code == 202
    body = wait_import(c, image_id)
    data = (web[1] / "disk.qcow2").read_bytes()
    assert body["status"] == "active" and body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["virtual_size"] == 2 << 20


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1/image", "http://localhost/image", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/x", "http://192.168.0.1/x", "http://172.16.5.4/x", "http://[::1]/x",
    "http://0.0.0.0/x", "file:///etc/passwd", "ftp://example.com/x", "http://8.8.8.8:22/x",
])
def test_web_download_refuses_internal_addresses_by_default(server, uri):
    c = server.client()
    image_id = new_image(c)
    resp = do_import(c, image_id, method={"name": "web-download", "uri": uri})
    assert resp.status_code == 400, resp.text
    assert "does not pass filtering" in resp.json()["error"]["message"]
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert c.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []


def test_redirect_to_a_forbidden_address_fails_the_import(multi, web):
    c = multi.client()
    image_id = new_image(c)
    uri = f"{web[0]}/redirect?to=http://169.254.169.254/latest/meta-data/"
    assert do_import(c, image_id, method={"name": "web-download", "uri": uri}).status_code == 202
    body = wait_import(c, image_id)
    assert body["status"] == "queued" and body["os_glance_failed_import"]
    task = c.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "does not pass filtering" in task["message"]
    reaped(lambda: not [f for s in ("fast", "slow") for f in store_files(multi, s) if image_id in f])


# --- copy-image and stores ----------------------------------------------------------------

def test_copy_image_and_delete_from_store(multi):
    c, admin = multi.client(), multi.client("admin")
    image_id = new_image(c)
    resp = c.put(f"/v2/images/{image_id}/file", content=b"copy me" * 1000, headers={**OCTET, "X-Image-Meta-Store": "slow"})
    assert resp.status_code == 204
    assert c.get(f"/v2/images/{image_id}").json()["stores"] == "slow"
    assert c.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "all_stores": True}).status_code == 403
    assert admin.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "stores": ["slow"]}).status_code == 400
    resp = admin.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "all_stores": True,
                                                             "all_stores_must_succeed": False})
    assert resp.status_code == 202
    body = wait_import(c, image_id)
    assert body["stores"] == "slow,fast" and body["os_glance_failed_import"] == ""
    assert (multi.tmp / "fast" / image_id).read_bytes() == b"copy me" * 1000
    # Deleting from a store: admin only, unknown store 409, never the last copy (403).
    assert c.delete(f"/v2/stores/fast/{image_id}").status_code == 403
    assert admin.delete(f"/v2/stores/nowhere/{image_id}").status_code == 409
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 204
    reaped(lambda: image_id not in store_files(multi, "fast"))
    assert c.get(f"/v2/images/{image_id}").json()["stores"] == "slow"
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 404
    assert admin.delete(f"/v2/stores/slow/{image_id}").status_code == 403
    assert (multi.tmp / "slow" / image_id).exists()


def test_upload_to_unknown_store_is_refused(multi):
    c = multi.client()
    image_id = new_image(c)
    resp = c.put(f"/v2/images/{image_id}/file", content=b"x", headers={**OCTET, "X-Image-Meta-Store": "nowhere"})
    assert resp.status_code == 400
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"


@pytest.fixture
def broken_slow_store(multi):
    """The slow store's directory replaced by a file: every write to it fails."""
    slow = multi.tmp / "slow"
    keep = multi.tmp / "slow-kept"
    slow.rename(keep)
    slow.write_text("not a directory")
    yield
    slow.unlink()
    keep.rename(slow)


def test_failed_store_with_all_stores_must_succeed(multi, broken_slow_store):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"must succeed" * 100)
    assert do_import(c, image_id, method={"name": "glance-direct"}, all_stores=True).status_code == 202
    body = wait_import(c, image_id)
    assert body["status"] == "queued" and "slow" in body["os_glance_failed_import"].split(",")
    assert body["size"] is None and body["checksum"] is None
    # Nothing left behind: no copy in the store that worked, no staged data.
    reaped(lambda: not [f for f in store_files(multi, "fast") if image_id in f])
    task = c.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure"


def test_failed_store_tolerated_when_not_all_must_succeed(multi, broken_slow_store):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"best effort" * 100)
    resp = do_import(c, image_id, method={"name": "glance-direct"}, all_stores=True, all_stores_must_succeed=False)
    assert resp.status_code == 202
    body = wait_import(c, image_id)
    assert body["status"] == "active" and body["stores"] == "fast"
    assert body["os_glance_failed_import"] == "slow"


def test_all_stores_must_succeed_false_needs_several_stores(server):
    c = server.client()
    image_id = new_image(c)
    stage(c, image_id, b"abc")
    resp = do_import(c, image_id, method={"name": "glance-direct"}, all_stores_must_succeed=False)
    assert resp.status_code == 400
    assert do_import(c, image_id, method={"name": "glance-direct"}).status_code == 202
    assert wait_import(c, image_id)["status"] == "active"


# --- the import lock ----------------------------------------------------------------------

def _db(srv):
    url = srv.env.get("VMIMAGE_DATABASE_URL") or f"sqlite:///{srv.data_dir.resolve() / 'vmimage.db'}"
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _plant_lock(srv, image_id: str, heartbeat: datetime) -> str:
    """A RUNNING import job holding the image's lock, last heard of at `heartbeat`."""
    job_id = os.urandom(16).hex()
    engine = _db(srv)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO jobs (id, kind, project_id, status, progress, attempts, payload, entities, worker, "
            "heartbeat_at, created_at, begin_time, image_id) VALUES (:id, 'image_import', 'p', 'RUNNING', 0, 1, "
            "'{}', '{}', 'elsewhere:1:x', :hb, :hb, :hb, :image)"), {"id": job_id, "hb": heartbeat, "image": image_id})
        conn.execute(sa.text("INSERT INTO image_properties (image_id, name, value) VALUES (:i, 'os_glance_import_task', :j)"),
                     {"i": image_id, "j": job_id})
    engine.dispose()
    return job_id


def _job_status(srv, job_id: str) -> tuple[str, str | None]:
    engine = _db(srv)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, error_code FROM jobs WHERE id = :id"), {"id": job_id}).first()
    engine.dispose()
    return tuple(row)


def test_live_lock_refuses_a_second_import(multi):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"locked")
    holder = _plant_lock(multi, image_id, datetime.utcnow())
    resp = do_import(c, image_id, method={"name": "glance-direct"})
    assert resp.status_code == 409 and holder in resp.json()["error"]["message"]
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "uploading"
    assert _job_status(multi, holder) == ("RUNNING", None)


def test_stale_lock_is_taken_over(multi):
    c = multi.client()
    image_id = new_image(c)
    stage(c, image_id, b"stale")
    holder = _plant_lock(multi, image_id, datetime.utcnow() - timedelta(hours=2))
    assert do_import(c, image_id, method={"name": "glance-direct"}).status_code == 202
    body = wait_import(c, image_id)
    assert body["status"] == "active"
    assert _job_status(multi, holder) == ("FAIL", "lock_taken_over")


# --- the Tasks API ------------------------------------------------------------------------

def test_tasks_api(multi, web):
    admin, c = multi.client("admin"), multi.client()
    body = {"type": "import", "input": {"import_from": f"{web[0]}/disk.qcow2", "import_from_format": "qcow2",
                                        "image_properties": {"name": "from-task", "disk_format": "qcow2",
                                                             "container_format": "bare"}}}
    assert c.post("/v2/tasks", json=body).status_code == 403
    assert admin.post("/v2/tasks", json={**body, "type": "export"}).status_code == 400
    assert admin.post("/v2/tasks", json={"type": "import"}).status_code == 400
    fake = {**body, "input": {**body["input"], "import_from": "http://no-such-host.invalid/x.qcow2"}}
    assert admin.post("/v2/tasks", json=fake).status_code == 400
    resp = admin.post("/v2/tasks", json=body)
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "success")
    deadline = time.monotonic() + 30
    while task["status"] not in ("success", "failure") and time.monotonic() < deadline:
        time.sleep(0.1)
        task = admin.get(f"/v2/tasks/{task['id']}").json()
    assert task["status"] == "success", task
    image = admin.get(f"/v2/images/{task['result']['image_id']}").json()
    assert image["status"] == "active" and image["name"] == "from-task" and image["disk_format"] == "qcow2"
    listed = admin.get("/v2/tasks").json()
    assert listed["schema"] == "/v2/schemas/tasks" and task["id"] in [t["id"] for t in listed["tasks"]]
    assert admin.get("/v2/tasks?status=bogus").status_code == 400
    assert c.get("/v2/tasks").status_code == 403
    assert admin.delete(f"/v2/tasks/{task['id']}").status_code == 405
    assert admin.get("/v2/tasks/0000").status_code == 404
    for name in ("task", "tasks"):
        assert c.get(f"/v2/schemas/{name}").json()["name"] == name


# --- conversion on import -----------------------------------------------------------------

def test_conversion_on_import_serves_raw(tmp_path, database_factory, images_dir):
    srv = start_server(tmp_path, database_factory(), VMIMAGE_IMPORT_CONVERT_TO="raw")
    try:
        c = srv.client()
        image_id = new_image(c, disk_format="qcow2")
        stage(c, image_id, (images_dir / "disk.qcow2").read_bytes())
        assert do_import(c, image_id, method={"name": "glance-direct"}).status_code == 202
        body = wait_import(c, image_id)
        assert body["status"] == "active" and body["disk_format"] == "raw"
        raw = (images_dir / "disk.raw").read_bytes()
        assert body["size"] == len(raw) == body["virtual_size"]
        assert c.get(f"/v2/images/{image_id}/file").content == raw
    finally:
        srv.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_killed_during_an_import_then_restarted(tmp_path, database_factory, web):
    db = database_factory()
    env = {"VMIMAGE_STORES": f"fast=file:{tmp_path}/fast,slow=file:{tmp_path}/slow",
           "VMIMAGE_WEB_DOWNLOAD_ALLOW": "127.0.0.1"}
    srv = start_server(tmp_path, db, **env)
    srv.tmp = tmp_path
    try:
        c = srv.client()
        image_id = new_image(c)
        assert do_import(c, image_id, method={"name": "web-download", "uri": f"{web[0]}/slow"}).status_code == 202
        deadline = time.monotonic() + 20
        while c.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1)          # some of the data is in the staging area now
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv = start_server(tmp_path, db, provision=False, data_dir=srv.data_dir, **env)
        srv.tmp = tmp_path
        c = srv.client()
        body = wait_import(c, image_id)
        assert body["status"] == "queued" and body["os_glance_failed_import"]
        task = c.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
        assert task["status"] == "failure" and "stopped" in task["message"]
        reaped(lambda: not [p for p in tmp_path.rglob("*") if p.is_file() and image_id in p.name])
        # And it can be imported again.
        stage(c, image_id, b"second try")
        assert do_import(c, image_id, method={"name": "glance-direct"}).status_code == 202
        assert wait_import(c, image_id)["status"] == "active"
    finally:
        srv.stop()


def test_tasks_need_a_known_image(multi):
    assert multi.client().get(f"/v2/images/{os.urandom(16).hex()}/tasks").status_code == 404


