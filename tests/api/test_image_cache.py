"""Glance's image cache API over this node's real cache directory."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest

from tests.conftest import start_server

OCTET = {"Content-Type": "application/octet-stream"}
CLEAR = "x-image-cache-clear-target"


@pytest.fixture
def admin(server):
    with server.client("admin") as c:
        yield c


@pytest.fixture
def demo(server):
    with server.client("demo") as c:
        yield c


def active_image(http: httpx.Client, data: bytes | None = None) -> dict:
    data = os.urandom(300_000) if data is None else data
    image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    assert http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 204
    image = http.get(f"/v2/images/{image['id']}").json()
    image["data"] = data
    return image


def state(admin: httpx.Client) -> dict:
    resp = admin.get("/v2/cache")
    assert resp.status_code == 200, resp.text
    return resp.json()


def cached(admin: httpx.Client) -> dict[str, dict]:
    return {e["image_id"]: e for e in state(admin)["cached_images"]}


def wait_cached(admin: httpx.Client, image_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = cached(admin)
        if image_id in entries:
            return entries[image_id]
        time.sleep(0.1)
    raise AssertionError(f"{image_id} not cached after {timeout}s: {state(admin)}")


def cache_file(server, image: dict):
    return server.data_dir / "cache" / "data" / f"{image['id']}.{image['os_hash_value']}"


def test_queued_image_gets_cached_and_downloads_come_from_the_cache(server, admin, demo):
    image = active_image(demo)
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
    entry = wait_cached(admin, image["id"])
    assert set(entry) == {"image_id", "hits", "last_accessed", "last_modified", "size"}
    assert entry["size"] == len(image["data"]) and entry["hits"] == 0
    assert isinstance(entry["last_modified"], float)
    assert image["id"] not in state(admin)["queued_images"]
    assert cache_file(server, image).read_bytes() == image["data"]
    assert not list((server.data_dir / "cache" / "incomplete").iterdir())

    before = entry["last_accessed"]
    time.sleep(0.01)
    resp = demo.get(f"/v2/images/{image['id']}/file")
    assert resp.status_code == 200 and resp.content == image["data"]
    assert resp.headers["Content-MD5"] == image["checksum"]
    part = demo.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == image["data"][10:20]
    entry = cached(admin)[image["id"]]
    assert entry["hits"] == 2 and entry["last_accessed"] > before

    # Queueing what is cached changes nothing.
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
    assert image["id"] not in state(admin)["queued_images"]


def test_a_full_download_from_this_nodes_files_is_not_cached(server, admin, demo):
    """The cache is for stores that are not this node's files (S3, http: see
    tests/api/test_s3_store.py); a file store's repeated reads come from the page cache."""
    image = active_image(demo)
    assert demo.get(f"/v2/images/{image['id']}/file").content == image["data"]
    time.sleep(0.5)
    assert image["id"] not in cached(admin)
    assert not cache_file(server, image).exists()


def test_delete_entry_and_clear_targets(server, admin, demo):
    one, two = active_image(demo), active_image(demo)
    for image in (one, two):
        assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
        wait_cached(admin, image["id"])
    assert admin.delete(f"/v2/cache/{one['id']}").status_code == 204
    assert one["id"] not in cached(admin) and two["id"] in cached(admin)
    assert not cache_file(server, one).exists()
    assert demo.get(f"/v2/images/{one['id']}/file").content == one["data"]   # from the store again

    # Without its bytes in the store the prefetcher cannot fill it: it stays queued.
    third = active_image(demo)
    shutil.move(server.store_dir / third["id"], server.data_dir / "moved-away")
    try:
        assert admin.put(f"/v2/cache/{third['id']}").status_code == 202
        time.sleep(0.5)
        assert state(admin)["queued_images"] == [third["id"]]
        assert admin.delete("/v2/cache", headers={CLEAR: "queue"}).status_code == 204
        assert state(admin)["queued_images"] == []
        assert two["id"] in cached(admin)
    finally:
        shutil.move(server.data_dir / "moved-away", server.store_dir / third["id"])

    assert admin.delete("/v2/cache", headers={CLEAR: "cache"}).status_code == 204
    assert state(admin)["cached_images"] == []
    assert not list((server.data_dir / "cache" / "data").iterdir())

    assert admin.put(f"/v2/cache/{two['id']}").status_code == 202
    wait_cached(admin, two["id"])
    assert admin.delete("/v2/cache").status_code == 204
    assert state(admin) == {"cached_images": [], "queued_images": []}


def test_refusals_change_nothing(server, admin, demo):
    image = active_image(demo)
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
    wait_cached(admin, image["id"])
    queued = demo.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    before = state(admin)

    with server.client("reader") as reader:
        for who in (demo, reader):
            assert who.get("/v2/cache").status_code == 403
            assert who.put(f"/v2/cache/{image['id']}").status_code == 403
            assert who.delete(f"/v2/cache/{image['id']}").status_code == 403
            assert who.delete("/v2/cache").status_code == 403
    assert httpx.get(f"{server.url}/v2/cache").status_code == 401
    for unknown in ("non-existing-image-id", "00000000-0000-0000-0000-000000000000"):
        resp = admin.put(f"/v2/cache/{unknown}")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == 404
        assert admin.delete(f"/v2/cache/{unknown}").status_code == 404
    resp = admin.put(f"/v2/cache/{queued['id']}")
    assert resp.status_code == 400, resp.text
    assert "active" in resp.json()["error"]["message"]
    resp = admin.delete("/v2/cache", headers={CLEAR: "invalid"})
    assert resp.status_code == 400
    assert admin.post("/v2/cache").status_code == 405

    after = state(admin)
    assert after["queued_images"] == before["queued_images"]
    assert {e["image_id"]: e["size"] for e in after["cached_images"]} == \
        {e["image_id"]: e["size"] for e in before["cached_images"]}
    assert cache_file(server, image).read_bytes() == image["data"]


def test_a_deleted_image_leaves_the_cache(server, admin, demo):
    image = active_image(demo)
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
    wait_cached(admin, image["id"])
    assert demo.delete(f"/v2/images/{image['id']}").status_code == 204
    assert image["id"] not in cached(admin)
    assert not cache_file(server, image).exists()
    assert demo.get(f"/v2/images/{image['id']}/file").status_code == 404
    # Nor can it be queued again; its id still counts as unknown.
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 404


def test_an_entry_of_other_bytes_is_never_served(server, admin, demo):
    """Entries are found by the image's hash: a copy of other bytes under its id stays unused."""
    image = active_image(demo)
    planted = server.data_dir / "cache" / "data" / f"{image['id']}.{'0' * 128}"
    planted.write_bytes(b"\0" * len(image["data"]))
    assert demo.get(f"/v2/images/{image['id']}/file").content == image["data"]
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
    wait_cached(admin, image["id"], timeout=30)     # the prefetch made the right entry
    assert not planted.exists()                     # and the other one went
    assert cache_file(server, image).read_bytes() == image["data"]


def test_deactivated_image_cannot_be_queued(server, admin, demo):
    image = active_image(demo)
    assert admin.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert admin.put(f"/v2/cache/{image['id']}").status_code == 400
    assert admin.post(f"/v2/images/{image['id']}/actions/reactivate").status_code == 204


def test_size_limit_prunes_the_least_recently_used(tmp_path, database_factory):
    srv = start_server(tmp_path, database_factory(), VMIMAGE_CACHE_MAX_BYTES=str(700_000))
    try:
        with srv.client("admin") as admin, srv.client("demo") as demo:
            a, b, c = (active_image(demo) for _ in range(3))
            for image in (a, b):
                assert admin.put(f"/v2/cache/{image['id']}").status_code == 202
                wait_cached(admin, image["id"])
            demo.get(f"/v2/images/{a['id']}/file")          # a is now more recent than b
            assert admin.put(f"/v2/cache/{c['id']}").status_code == 202
            wait_cached(admin, c["id"])
            assert set(cached(admin)) == {a["id"], c["id"]}
            big = active_image(demo, os.urandom(800_000))     # larger than the whole cache
            assert admin.put(f"/v2/cache/{big['id']}").status_code == 202
            deadline = time.monotonic() + 20
            while big["id"] in state(admin)["queued_images"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert set(cached(admin)) == {a["id"], c["id"]}
            assert demo.get(f"/v2/images/{big['id']}/file").content == big["data"]
            assert set(cached(admin)) == {a["id"], c["id"]}
    finally:
        srv.stop()


def test_cache_disabled_has_no_api(tmp_path, database_factory):
    srv = start_server(tmp_path, database_factory(), VMIMAGE_CACHE_ENABLED="false")
    try:
        with srv.client("admin") as admin, srv.client("demo") as demo:
            image = active_image(demo)
            assert admin.get("/v2/cache").status_code == 404
            assert admin.put(f"/v2/cache/{image['id']}").status_code == 404
            assert admin.delete("/v2/cache").status_code == 404
            assert demo.get(f"/v2/images/{image['id']}/file").content == image["data"]
            # (provisioning personas built a container without the server's environment)
            assert not [p for p in (srv.data_dir / "cache").rglob("*") if p.is_file()]
    finally:
        srv.stop()
