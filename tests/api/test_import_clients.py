"""Import and stores through the official clients: python-glanceclient and the openstack CLI."""

from __future__ import annotations

import hashlib
import io
import json

from tests.api.test_import import multi, wait_import, web  # noqa: F401 - module fixtures reused
from tests.api.test_lifecycle_glanceclient import glance
from tests.conftest import openstack_cli


def test_glanceclient_discovers_and_imports(multi, web):  # noqa: F811
    gc = glance(multi, "demo")
    assert gc.images.get_import_info()["import-methods"]["value"] == [
        "glance-direct", "web-download", "copy-image", "glance-download"]
    assert [s["id"] for s in gc.images.get_stores_info()["stores"]] == ["fast", "slow", "web"]

    image = gc.images.create(name="gc-web", disk_format="qcow2", container_format="bare")
    gc.images.image_import(image.id, method="web-download", uri=f"{web[0]}/disk.qcow2")
    body = wait_import(multi.client(), image.id)
    assert body["status"] == "active"
    assert body["checksum"] == hashlib.md5((web[1] / "disk.qcow2").read_bytes()).hexdigest()

    staged = gc.images.create(name="gc-direct", disk_format="raw", container_format="bare")
    data = b"glanceclient" * 1000
    gc.images.stage(staged.id, io.BytesIO(data))
    assert gc.images.get(staged.id).status == "uploading"
    gc.images.image_import(staged.id, method="glance-direct", stores=["slow"])
    assert wait_import(multi.client(), staged.id)["stores"] == "slow"
    assert b"".join(gc.images.data(staged.id)) == data
    tasks = gc.images.get_associated_image_tasks(staged.id)["tasks"]
    assert [t["status"] for t in tasks] == ["success"]


def test_openstack_cli_stages_and_imports(multi, tmp_path):  # noqa: F811
    cli = openstack_cli(multi, tmp_path)

    payload = tmp_path / "disk.raw"
    payload.write_bytes(b"cli import" * 5000)
    # --import: create, stage and import with glance-direct instead of a direct upload.
    image = json.loads(cli("image", "create", "--import", "--file", str(payload), "--disk-format", "raw",
                           "--container-format", "bare", "cli-import", "-f", "json"))
    body = wait_import(multi.client(), image["id"])
    assert body["status"] == "active" and body["stores"] == "fast,slow"
    tasks = multi.client().get(f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert [t["input"]["import_req"]["method"]["name"] for t in tasks] == ["glance-direct"]
    assert body["os_hash_value"] == hashlib.sha512(payload.read_bytes()).hexdigest()
