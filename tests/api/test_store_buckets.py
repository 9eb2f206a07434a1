"""The bucket an S3 store keeps images in is never a project's bucket (on a real Swift s3api):
`vmimage admin bucket grant` refuses it, and `vmimage serve` refuses to start on a store
bucket granted earlier, each with a message saying what to do."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import VMIMAGE, start_server


def admin(env: dict, data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VMIMAGE, "admin", "--data-dir", str(data_dir), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_bucket_a_store_uses_is_never_granted(tmp_path, database_factory, swift_s3):
    store_bucket = f"store-{uuid.uuid4().hex[:8]}"
    srv = start_server(tmp_path, database_factory(), **swift_s3.env,
                       VMIMAGE_STORES=f"obj=s3://{store_bucket}/images,spare=s3://{store_bucket}/spare")
    try:
        with srv.client("demo") as http:          # the store works, and keeps images in that bucket
            image = http.post("/v2/images", json={"name": "x", "disk_format": "raw", "container_format": "bare"})
            assert http.put(f"/v2/images/{image.json()['id']}/file", content=b"bytes of demo",
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
        refused = admin(srv.env, srv.data_dir, "bucket", "grant", store_bucket, "--project", "alt")
        assert refused.returncode != 0
        assert (f"Bucket '{store_bucket}' holds the images of store 'obj', 'spare' (VMIMAGE_STORES)"
                in refused.stderr), refused.stderr
        assert "read and overwrite every project's image data" in refused.stderr
        assert json.loads(srv.admin_cli("bucket", "list")) == []
        # Any other bucket is granted as before.
        other = f"users-{uuid.uuid4().hex[:8]}"
        assert json.loads(srv.admin_cli("bucket", "grant", other, "--project", "alt"))["bucket"] == other
        with srv.client("alt") as http:
            resp = http.post("/vmimage/v1/images/import", json={"name": "steal", "bucket": store_bucket,
                                                                 "key": "images/anything"})
            assert resp.status_code == 400 and "not granted" in resp.text, resp.text
    finally:
        srv.stop()


def test_serve_refuses_to_start_on_a_store_bucket_granted_to_a_project(tmp_path, database_factory, swift_s3):
    db = database_factory()
    srv = start_server(tmp_path, db, **swift_s3.env)     # file store; the bucket is a project's
    bucket = f"shared-{uuid.uuid4().hex[:8]}"
    srv.admin_cli("bucket", "grant", bucket, "--project", "demo")
    demo = srv.project_id("demo")
    srv.stop()

    env = {**srv.env, "VMIMAGE_STORES": f"obj=s3://{bucket}/images"}
    port = str(srv.url.rsplit(":", 1)[1])
    refused = subprocess.run([*VMIMAGE, "serve", "--data-dir", str(srv.data_dir), "--port", port], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert (f"Refusing to start: bucket '{bucket}' of store 'obj' is granted to project {demo}"
            in refused.stderr), refused.stderr
    assert f"vmimage admin bucket revoke {bucket} --project {demo}" in refused.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{srv.url}/versions", timeout=2)

    # Once the grant is revoked, the store serves.
    assert admin(env, srv.data_dir, "bucket", "revoke", bucket, "--project", "demo").returncode == 0
    started = start_server(tmp_path, db, provision=False, data_dir=srv.data_dir, **env)
    try:
        assert httpx.get(f"{started.url}/v2/info/stores", headers={"X-Auth-Token": started.token("demo")},
                         timeout=30).json()["stores"][0]["id"] == "obj"
    finally:
        started.stop()
