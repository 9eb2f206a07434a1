"""Buckets for users on a real OpenStack Swift s3api: an operator grants buckets to projects;
images are imported from and exported to them through the native API and the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid

import pytest

from tests.conftest import VMIMAGE, reaped, start_server

V1 = "/vmimage/v1"


@pytest.fixture(scope="module")
def bsrv(tmp_path_factory, database_factory, swift_s3):
    tmp = tmp_path_factory.mktemp("buckets")
    srv = start_server(tmp, database_factory(), **swift_s3.env)
    srv.s3 = swift_s3.client()
    srv.bucket = f"users-{uuid.uuid4().hex[:8]}"
    srv.s3.create_bucket(Bucket=srv.bucket)
    granted = json.loads(srv.admin_cli("bucket", "grant", srv.bucket, "--project", "demo"))
    assert granted["project_id"] == srv.project_id("demo")
    yield srv
    srv.stop()


def wait_job(http, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = http.get(f"{V1}/jobs/{job_id}").json()["job"]
        if job["status"] in ("SUCCESS", "FAIL"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def image_count(http) -> int:
    return len(http.get("/v2/images").json()["images"])


def test_grants_listed_by_project_name_or_id(bsrv):
    demo_id = bsrv.project_id("demo")
    listed = json.loads(bsrv.admin_cli("bucket", "list", "--project", demo_id))
    assert [(g["bucket"], g["project_id"]) for g in listed] == [(bsrv.bucket, demo_id)]
    assert json.loads(bsrv.admin_cli("bucket", "list", "--project", "alt")) == []
    again = json.loads(bsrv.admin_cli("bucket", "grant", bsrv.bucket, "--project", demo_id))   # idempotent
    assert again["project_id"] == demo_id
    assert len(json.loads(bsrv.admin_cli("bucket", "list"))) == 1


def test_import_detects_the_format_and_export_round_trips(bsrv, images_dir):
    qcow2 = (images_dir / "disk.qcow2").read_bytes()
    bsrv.s3.put_object(Bucket=bsrv.bucket, Key="in/disk.qcow2", Body=qcow2)
    with bsrv.client("demo") as http:
        resp = http.post(f"{V1}/images/import", json={"name": "from-bucket", "bucket": bsrv.bucket,
                                                      "key": "in/disk.qcow2", "min_disk": 2})
        assert resp.status_code == 202, resp.text
        job = wait_job(http, resp.json()["job"]["id"])
        assert job["status"] == "SUCCESS", job
        [image_id] = job["entities"]["image_ids"]
        image = http.get(f"/v2/images/{image_id}").json()
        assert (image["status"], image["disk_format"], image["min_disk"]) == ("active", "qcow2", 2)
        assert image["os_hash_value"] == hashlib.sha512(qcow2).hexdigest()
        assert http.get(f"/v2/images/{image_id}/file").content == qcow2

        same = http.post(f"{V1}/images/{image_id}/export", json={"bucket": bsrv.bucket, "key": "out/same.qcow2"})
        assert same.status_code == 202, same.text
        assert wait_job(http, same.json()["job"]["id"])["status"] == "SUCCESS"
        assert bsrv.s3.get_object(Bucket=bsrv.bucket, Key="out/same.qcow2")["Body"].read() == qcow2

        raw = http.post(f"{V1}/images/{image_id}/export", json={"bucket": bsrv.bucket, "key": "out/disk.raw",
                                                                "disk_format": "raw"})
        assert wait_job(http, raw.json()["job"]["id"])["status"] == "SUCCESS"
        exported = bsrv.s3.get_object(Bucket=bsrv.bucket, Key="out/disk.raw")["Body"].read()
        assert exported == (images_dir / "disk.raw").read_bytes()     # converted by qemu-img


def test_declared_format_that_does_not_match_fails_and_leaves_nothing(bsrv, images_dir):
    bsrv.s3.put_object(Bucket=bsrv.bucket, Key="in/really-qcow2",
                       Body=(images_dir / "disk.qcow2").read_bytes())
    before = set(bsrv.stored_blobs())
    with bsrv.client("demo") as http:
        resp = http.post(f"{V1}/images/import", json={"name": "liar", "bucket": bsrv.bucket,
                                                      "key": "in/really-qcow2", "disk_format": "vmdk"})
        job = wait_job(http, resp.json()["job"]["id"])
        assert job["status"] == "FAIL" and "qcow2" in job["fail_reason"]
        [image_id] = job["entities"]["image_ids"]
        assert http.get(f"/v2/images/{image_id}").status_code == 404
    reaped(lambda: set(bsrv.stored_blobs()) == before)


def test_missing_object_in_a_granted_bucket_fails_the_job(bsrv):
    with bsrv.client("demo") as http:
        resp = http.post(f"{V1}/images/import", json={"name": "nothing", "bucket": bsrv.bucket, "key": "nope"})
        job = wait_job(http, resp.json()["job"]["id"])
        assert job["status"] == "FAIL" and job["error_code"] == "not_found"


def test_buckets_not_granted_are_refused_alike_and_nothing_is_created(bsrv, images_dir):
    other = f"other-{uuid.uuid4().hex[:8]}"
    bsrv.s3.create_bucket(Bucket=other)
    bsrv.s3.put_object(Bucket=other, Key="disk.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    with bsrv.client("demo") as demo, bsrv.client("alt") as alt:
        count = image_count(demo), image_count(alt)
        mine = demo.post("/v2/images", json={"name": "x", "disk_format": "raw", "container_format": "bare"}).json()
        demo.put(f"/v2/images/{mine['id']}/file", content=b"data", headers={"Content-Type": "application/octet-stream"})
        messages = set()
        for http, bucket, key in ((demo, other, "disk.qcow2"), (demo, other, "missing"),
                                  (demo, "no-such-bucket", "disk.qcow2"), (alt, bsrv.bucket, "in/disk.qcow2")):
            resp = http.post(f"{V1}/images/import", json={"name": "n", "bucket": bucket, "key": key})
            assert resp.status_code == 400, resp.text
            messages.add(resp.json()["error"]["message"].replace(bucket, "B"))
        for bucket, key in ((other, "out"), ("no-such-bucket", "out")):
            resp = demo.post(f"{V1}/images/{mine['id']}/export", json={"bucket": bucket, "key": key})
            assert resp.status_code == 400, resp.text
            messages.add(resp.json()["error"]["message"].replace(bucket, "B"))
        assert messages == {"Bucket 'B' is not granted to this project"}
        assert (image_count(demo) - 1, image_count(alt)) == count
    assert [o["Key"] for o in bsrv.s3.list_objects_v2(Bucket=other)["Contents"]] == ["disk.qcow2"]
    assert bsrv.s3.list_buckets()["Buckets"] and "no-such-bucket" not in [
        b["Name"] for b in bsrv.s3.list_buckets()["Buckets"]]


def test_bad_bodies_are_refused(bsrv):
    with bsrv.client("demo") as http:
        for body in ({"name": "n", "bucket": bsrv.bucket}, {"name": "n", "bucket": bsrv.bucket, "key": "/abs"},
                     {"name": "n", "bucket": bsrv.bucket, "key": "k", "min_disk": "2"},
                     {"name": "n", "bucket": bsrv.bucket, "key": "k", "colour": "red"},
                     {"name": "n", "bucket": bsrv.bucket, "key": "k", "disk_format": "floppy"},
                     {"name": "n", "bucket": bsrv.bucket, "key": "k", "store": "nowhere"}):
            resp = http.post(f"{V1}/images/import", json=body)
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["error"]["code"]


def test_cli_import_export_and_revoke(bsrv, images_dir):
    bsrv.s3.put_object(Bucket=bsrv.bucket, Key="cli/disk.raw", Body=(images_dir / "disk.raw").read_bytes())
    env = {**bsrv.env, "VMIMAGE_URL": bsrv.url, "VMIMAGE_USER": "demo", "VMIMAGE_PASSWORD": "demo",
           "VMIMAGE_PROJECT": "demo"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*VMIMAGE, *args], env=env, capture_output=True, text=True, timeout=180)

    out = run("image", "import", "--name", "cli-imported", "--bucket", bsrv.bucket, "--key", "cli/disk.raw",
              "--disk-format", "raw", "--wait")
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["status"] == "SUCCESS"
    [image_id] = job["entities"]["image_ids"]
    out = run("image", "export", image_id, "--bucket", bsrv.bucket, "--key", "cli/out.qcow2",
              "--disk-format", "qcow2", "--wait")
    assert out.returncode == 0, out.stderr
    exported = bsrv.s3.get_object(Bucket=bsrv.bucket, Key="cli/out.qcow2")["Body"].read()
    assert exported[:4] == b"QFI\xfb"
    bsrv.admin_cli("bucket", "revoke", bsrv.bucket, "--project", "demo")
    try:
        out = run("image", "import", "--name", "again", "--bucket", bsrv.bucket, "--key", "cli/disk.raw")
        assert out.returncode == 1 and "is not granted to this project" in out.stderr
    finally:
        bsrv.admin_cli("bucket", "grant", bsrv.bucket, "--project", "demo")
