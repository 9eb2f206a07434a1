"""The S3 store on a real OpenStack Swift s3api, through the Glance API: one S3 store (the
default, so staging lives there too) and one file store."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid

import pytest

from tests.api.test_import import OCTET, do_import, new_image, stage, wait_import
from tests.conftest import start_server

BUCKET_PREFIX = "imgs"


def s3_env(swift_s3, tmp, bucket: str) -> dict[str, str]:
    return {**swift_s3.env, "VMIMAGE_STORES": f"obj=s3://{bucket}/{BUCKET_PREFIX},local=file:{tmp}/local",
            "VMIMAGE_SHOW_LOCATIONS": "true"}


@pytest.fixture(scope="module")
def s3srv(tmp_path_factory, database_factory, swift_s3):
    tmp = tmp_path_factory.mktemp("s3srv")
    bucket = f"vmimage-{uuid.uuid4().hex[:8]}"
    srv = start_server(tmp, database_factory(), **s3_env(swift_s3, tmp, bucket))
    srv.bucket, srv.s3 = bucket, swift_s3.client()
    yield srv
    srv.stop()


def objects(srv) -> list[str]:
    return sorted(o["Key"] for o in srv.s3.list_objects_v2(Bucket=srv.bucket).get("Contents", []))


def uploads(srv) -> list[str]:
    return sorted(u["Key"] for u in srv.s3.list_multipart_uploads(Bucket=srv.bucket).get("Uploads", []))


def test_stores_list_the_s3_store(s3srv):
    stores = s3srv.client().get("/v2/info/stores").json()["stores"]
    assert [(s["id"], s.get("default")) for s in stores] == [("obj", "true"), ("local", None), ("web", None)]
    detail = s3srv.client("admin").get("/v2/info/stores/detail").json()["stores"]
    assert detail[0]["type"] == "s3" and s3srv.bucket in detail[0]["description"]


def test_upload_download_range_delete(s3srv):
    c, admin = s3srv.client(), s3srv.client("admin")
    image_id = new_image(c)
    data = os.urandom(20 << 20) + b"tail"          # several parts: a real multipart upload
    assert c.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204
    body = c.get(f"/v2/images/{image_id}").json()
    assert body["status"] == "active" and body["stores"] == "obj" and body["size"] == len(data)
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert f"{BUCKET_PREFIX}/{image_id}" in objects(s3srv) and uploads(s3srv) == []
    locations = admin.get(f"/v2/images/{image_id}").json()["locations"]
    assert [loc["url"] for loc in locations] == [f"s3://{s3srv.bucket}/{BUCKET_PREFIX}/{image_id}"]
    assert c.get(f"/v2/images/{image_id}/file").content == data
    ranged = c.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=9000000-9999999"})
    assert ranged.status_code == 206 and ranged.content == data[9000000:10000000]
    tail = c.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == b"tail"
    assert c.delete(f"/v2/images/{image_id}").status_code == 204
    eventually(lambda: f"{BUCKET_PREFIX}/{image_id}" not in objects(s3srv))


def test_a_full_download_from_s3_fills_the_node_cache(s3srv):
    c, admin = s3srv.client(), s3srv.client("admin")
    image_id = new_image(c)
    data = os.urandom(300_000)
    assert c.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204
    ranged = c.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == data[:100]

    def entries():
        return {e["image_id"]: e for e in admin.get("/v2/cache").json()["cached_images"]}
    assert image_id not in entries()                # part of the data makes no entry
    assert c.get(f"/v2/images/{image_id}/file").content == data
    eventually(lambda: image_id in entries())
    assert entries()[image_id]["hits"] == 0
    s3srv.s3.delete_object(Bucket=s3srv.bucket, Key=f"{BUCKET_PREFIX}/{image_id}")   # only the cache has it now
    assert c.get(f"/v2/images/{image_id}/file").content == data
    assert entries()[image_id]["hits"] == 1


def test_refused_upload_leaves_nothing(s3srv, images_dir):
    c = s3srv.client()
    image_id = new_image(c, disk_format="qcow2")
    refused = c.put(f"/v2/images/{image_id}/file", content=(images_dir / "backing.qcow2").read_bytes(),
                    headers=OCTET)
    assert refused.status_code in (400, 415), refused.text
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert not [k for k in objects(s3srv) + uploads(s3srv) if image_id in k]


def test_stage_import_copy_and_delete_from_store(s3srv):
    c, admin = s3srv.client(), s3srv.client("admin")
    image_id = new_image(c)
    data = os.urandom(9 << 20)
    stage(c, image_id, data)
    assert f"{BUCKET_PREFIX}/staging-{image_id}" in objects(s3srv)     # staging is in the default store
    assert do_import(c, image_id, method={"name": "glance-direct"}, stores=["local"]).status_code == 202
    body = wait_import(c, image_id)
    assert body["status"] == "active" and body["stores"] == "local"
    eventually(lambda: not [k for k in objects(s3srv) if image_id in k])   # staged data gone
    resp = admin.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "stores": ["obj"]})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while c.get(f"/v2/images/{image_id}").json()["stores"] != "local,obj":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    wait_import(c, image_id)
    assert objects(s3srv).count(f"{BUCKET_PREFIX}/{image_id}") == 1
    assert admin.delete(f"/v2/stores/local/{image_id}").status_code == 204
    assert c.get(f"/v2/images/{image_id}").json()["stores"] == "obj"
    assert c.get(f"/v2/images/{image_id}/file").content == data         # now from S3
    assert admin.delete(f"/v2/stores/obj/{image_id}").status_code == 403   # the last copy


def test_import_to_every_store(s3srv):
    c = s3srv.client()
    image_id = new_image(c)
    data = os.urandom(3 << 20)
    stage(c, image_id, data)
    assert do_import(c, image_id, method={"name": "glance-direct"}, all_stores=True).status_code == 202
    assert wait_import(c, image_id)["stores"] == "obj,local"
    assert c.get(f"/v2/images/{image_id}/file").content == data


def test_credentials_never_shown(s3srv):
    secret = s3srv.env["VMIMAGE_S3_SECRET_KEY"]
    c, admin = s3srv.client(), s3srv.client("admin")
    image_id = new_image(c)
    stage(c, image_id, b"x" * 1000)
    for path in (f"/v2/images/{image_id}", "/v2/info/stores/detail", f"/v2/images/{image_id}/tasks"):
        text = admin.get(path).text
        assert secret not in text and "test:tester" not in text
    logs = "".join(p.read_text(errors="replace") for p in s3srv.data_dir.glob("server-*.log"))
    assert secret not in logs


def test_killed_during_a_multipart_upload_then_restarted(tmp_path, database_factory, swift_s3):
    db = database_factory()       # SQLite: reset at the next start; PostgreSQL: the dead process's uploads
    bucket = f"vmimage-{uuid.uuid4().hex[:8]}"
    env = s3_env(swift_s3, tmp_path, bucket)
    srv = start_server(tmp_path, db, **env)
    srv.bucket, srv.s3 = bucket, swift_s3.client()
    try:
        c = srv.client()
        image_id = new_image(c)
        stop = threading.Event()

        def body():
            while not stop.is_set():
                yield os.urandom(1 << 20)
                time.sleep(0.01)

        sender = threading.Thread(target=lambda: _quiet(lambda: c.put(f"/v2/images/{image_id}/file",
                                                                      content=body(), headers=OCTET)),
                                  daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while not uploads(srv):          # parts are going up
            assert time.monotonic() < deadline
            time.sleep(0.1)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        assert uploads(srv) == [f"{BUCKET_PREFIX}/{image_id}"]
        srv = start_server(tmp_path, db, provision=False, data_dir=srv.data_dir, **env)
        srv.bucket, srv.s3 = bucket, swift_s3.client()
        c = srv.client()
        assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
        assert uploads(srv) == [] and objects(srv) == []
        assert c.put(f"/v2/images/{image_id}/file", content=b"again", headers=OCTET).status_code == 204
        assert c.get(f"/v2/images/{image_id}/file").content == b"again"
    finally:
        srv.stop()


def eventually(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def _quiet(fn):
    try:
        fn()
    except Exception:       # the server was killed under it
        pass
