"""Glance's glance-download import method and store weights, over HTTP against a real server
with two file stores (the second one heavier), through openstacksdk and python-glanceclient."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from glanceclient import Client as GlanceClient
from glanceclient import exc as gexc

from tests.api.test_import import OCTET, new_image, stage, wait_import
from tests.conftest import auth_body, reaped, sdk_connect, start_server

REGION = "RegionOne"


@pytest.fixture(scope="module")
def weighed(tmp_path_factory, database_factory):
    tmp = tmp_path_factory.mktemp("weighed")
    srv = start_server(tmp, database_factory(), VMIMAGE_STORES=f"fast=file:{tmp}/fast,slow=file:{tmp}/slow",
                       VMIMAGE_STORE_WEIGHTS="slow=50,fast=5", VMIMAGE_SHOW_LOCATIONS="true",
                       VMIMAGE_CATALOG_EXTRA="image_remote=http://127.0.0.1:9/remote")
    srv.tmp = tmp
    yield srv
    srv.stop()


def glance(srv, persona: str = "demo") -> GlanceClient:
    return GlanceClient("2", endpoint=srv.url, token=srv.token(persona))


def active_source(client, data: bytes, **props: str) -> str:
    image_id = new_image(client)
    stage(client, image_id, data)
    assert client.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    assert wait_import(client, image_id)["status"] == "active"
    if props:
        patch = [{"op": "add", "path": f"/{k}", "value": v} for k, v in props.items()]
        resp = client.patch(f"/v2/images/{image_id}", json=patch,
                            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert resp.status_code == 200, resp.text
    return image_id


def download_import(client, image_id: str, source_id: str, region: str = REGION, interface: str = "public"):
    return client.post(f"/v2/images/{image_id}/import", json={"method": {
        "name": "glance-download", "glance_image_id": source_id, "glance_region": region,
        "glance_service_interface": interface}})


def wait_task(client, image_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            return tasks[0]
        time.sleep(0.1)
    raise AssertionError(f"task did not end: {tasks}")


def test_announced_in_discovery_and_on_create(weighed):
    c = weighed.client()
    assert "glance-download" in c.get("/v2/info/import").json()["import-methods"]["value"]
    resp = c.post("/v2/images", json={"name": "x", "disk_format": "raw", "container_format": "bare"})
    assert "glance-download" in resp.headers["OpenStack-image-import-methods"].split(",")


def test_glance_download_through_openstacksdk_copies_data_formats_and_boot_properties(weighed):
    c = weighed.client()
    data = os.urandom(3 << 20)
    src = active_source(c, data, hw_cpu_cores="5", **{"trait:STORAGE_DISK_SSD": "required"}, os_distro="rhel",
                        speed="88mph")
    dst = new_image(c, disk_format="iso", container_format="ovf", hw_cpu_cores="1", os_distro="windows")
    conn = sdk_connect(weighed)
    conn.image.import_image(conn.image.get_image(dst), method="glance-download", remote_region=REGION,
                            remote_image_id=src, remote_service_interface="public")
    body = wait_import(c, dst)
    source = c.get(f"/v2/images/{src}").json()
    assert body["status"] == "active", body
    assert (body["disk_format"], body["container_format"]) == ("raw", "bare")
    assert (body["hw_cpu_cores"], body["trait:STORAGE_DISK_SSD"], body["os_distro"]) == ("5", "required", "rhel")
    assert "speed" not in body
    assert (body["os_hash_value"], body["checksum"], body["size"]) == (
        source["os_hash_value"], source["checksum"], len(data))
    assert hashlib.sha256(c.get(f"/v2/images/{dst}/file").content).digest() == hashlib.sha256(data).digest()
    assert wait_task(c, dst)["status"] == "success"
    assert c.get(f"/v2/images/{src}").json()["status"] == "active"      # the source untouched


def test_a_non_uuid_source_is_refused_at_the_call_through_glanceclient(weighed):
    c = weighed.client()
    dst = new_image(c)
    with pytest.raises(gexc.HTTPBadRequest) as err:
        glance(weighed).images.image_import(dst, method="glance-download", remote_region=REGION,
                                            remote_image_id="foo", remote_service_interface="public")
    assert "image id does not look like a UUID" in str(err.value)
    assert c.get(f"/v2/images/{dst}").json()["status"] == "queued"
    assert c.post(f"/v2/images/{dst}/import", json={"method": {"name": "glance-download",
                                                               "glance_image_id": src_like()}}).status_code == 400


def src_like() -> str:
    return "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"


@pytest.mark.parametrize("region, interface, source", [
    ("not a region", "public", "good"),          # no endpoint in the catalog
    (REGION, "not an interface", "good"),
    (REGION, "public", "missing"),               # no such image there
    (REGION, "public", "queued"),                # not active
    (REGION, "public", "foreign"),               # another project's private image
])
def test_a_source_that_cannot_be_read_fails_the_task_and_leaves_the_image_queued(weighed, region, interface,
                                                                                  source):
    c = weighed.client()
    if source == "good":
        source_id = active_source(c, os.urandom(1 << 20))
    elif source == "missing":
        source_id = src_like()
    elif source == "queued":
        source_id = new_image(c)
    else:
        source_id = active_source(weighed.client("alt"), os.urandom(1 << 20))
    dst = new_image(c, disk_format="iso", container_format="ovf", hw_cpu_cores="1", os_distro="windows")
    assert download_import(c, dst, source_id, region, interface).status_code == 202
    task = wait_task(c, dst)
    assert task["status"] == "failure" and task["message"]
    body = c.get(f"/v2/images/{dst}").json()
    assert body["status"] == "queued"
    assert (body["disk_format"], body["container_format"]) == ("iso", "ovf")
    assert (body["hw_cpu_cores"], body["os_distro"]) == ("1", "windows")
    assert "os_glance_import_task" not in body
    # Nothing staged or written for the target.
    reaped(lambda: not [p for p in weighed.tmp.rglob(f"*{dst}*") if p.is_file()])


def test_source_data_that_does_not_match_its_hash_fails_with_nothing_written(weighed):
    c = weighed.client()
    src = active_source(c, os.urandom(1 << 20))
    for store in ("fast", "slow"):      # both copies altered, the size kept
        path = weighed.tmp / store / src
        raw = bytearray(path.read_bytes())
        raw[1000] ^= 0xFF
        path.write_bytes(bytes(raw))
    dst = new_image(c)
    assert download_import(c, dst, src).status_code == 202
    task = wait_task(c, dst)
    assert task["status"] == "failure" and "hash" in task["message"]
    assert c.get(f"/v2/images/{dst}").json()["status"] == "queued"
    reaped(lambda: not [p for p in weighed.tmp.rglob(f"*{dst}*") if p.is_file()])


def test_store_weights_order_stores_and_locations_and_pick_the_copy_a_download_reads(weighed):
    c = weighed.client()
    stores = {s["id"]: s for s in c.get("/v2/info/stores").json()["stores"]}
    assert (stores["slow"]["weight"], stores["fast"]["weight"], stores["web"]["weight"]) == (50, 5, 0)
    data = os.urandom(2 << 20)
    image_id = new_image(c)
    stage(c, image_id, data)
    resp = c.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}, "all_stores": True})
    assert resp.status_code == 202
    admin = weighed.client("admin")
    body = wait_import(admin, image_id)
    # Written to the default store (fast) first, listed heaviest first.
    assert body["stores"] == "slow,fast"
    assert [loc["metadata"]["store"] for loc in body["locations"]] == ["slow", "fast"]
    assert body["direct_url"] == body["locations"][0]["url"]
    # The lighter copy altered: a download still reads the heavier one, whole and right.
    light = weighed.tmp / "fast" / image_id
    light.write_bytes(b"\0" * light.stat().st_size)
    got = c.get(f"/v2/images/{image_id}/file")
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert glance(weighed).images.get(image_id)["stores"] == "slow,fast"
    # A location's index counts in that order: /locations/1 is the lighter store's copy.
    resp = admin.patch(f"/v2/images/{image_id}", json=[{"op": "remove", "path": "/locations/1"}],
                   headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["stores"] == "slow"


def test_the_catalog_lists_the_extra_image_remote_service(weighed):
    token = weighed.client().post("/identity/v3/auth/tokens", json=auth_body("demo", "demo", "demo"))
    assert token.status_code == 201, token.text
    catalog = {s["type"]: s for s in token.json()["token"]["catalog"]}
    remote = catalog["image_remote"]["endpoints"]
    assert {e["interface"] for e in remote} == {"public", "internal", "admin"}
    assert {e["url"] for e in remote} == {"http://127.0.0.1:9/remote"}
    assert {e["region"] for e in remote} == {REGION}
