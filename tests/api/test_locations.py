"""Image locations: PATCH /locations (Glance's show_multiple_locations) and the v2.17
POST /v2/images/{id}/locations with its hash-verifying task."""

from __future__ import annotations

import hashlib
import time

from tests.api.test_import import multi, new_image, web  # noqa: F401 - module fixtures reused

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def patch(client, image_id, *ops):
    return client.patch(f"/v2/images/{image_id}", json=list(ops), headers=PATCH)


def wait_tasks(client, image_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and all(t["status"] in ("success", "failure") for t in tasks):
            return tasks
        time.sleep(0.1)
    raise AssertionError("location task did not finish")


def test_locations_are_shown_to_the_owner_only(multi):  # noqa: F811
    c = multi.client()
    image_id = new_image(c, visibility="shared")
    assert c.get(f"/v2/images/{image_id}").json()["locations"] == []
    assert c.put(f"/v2/images/{image_id}/file", content=b"data",
                 headers={"Content-Type": "application/octet-stream"}).status_code == 204
    body = c.get(f"/v2/images/{image_id}").json()
    assert len(body["locations"]) == 1 and body["locations"][0]["metadata"] == {"store": "fast"}
    assert body["direct_url"] == body["locations"][0]["url"]
    c.post(f"/v2/images/{image_id}/members", json={"member": multi.project_id("alt")})
    shared = multi.client("alt").get(f"/v2/images/{image_id}").json()
    assert "locations" not in shared and "direct_url" not in shared


def test_patch_add_replace_remove(multi, web):  # noqa: F811
    c, admin = multi.client(), multi.client("admin")
    url = f"{web[0]}/disk.raw"
    image_id = new_image(c)
    resp = patch(c, image_id, {"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"a": "1"}}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "active" and body["size"] == (web[1] / "disk.raw").stat().st_size
    assert body["os_hash_value"] is None and body["stores"] == "web"
    assert c.get(f"/v2/images/{image_id}/file").content == (web[1] / "disk.raw").read_bytes()
    second = {"url": url + "#b", "metadata": {}}
    assert patch(c, image_id, {"op": "add", "path": "/locations/-", "value": second}).status_code == 200
    locs = c.get(f"/v2/images/{image_id}").json()["locations"]
    # Metadata may change; URLs may not; a location may not disappear by replace.
    locs[0]["metadata"]["b"] = "2"
    assert patch(c, image_id, {"op": "replace", "path": "/locations", "value": locs}).status_code == 200
    assert patch(c, image_id, {"op": "replace", "path": "/locations", "value": locs[:1]}).status_code == 400
    swapped = [locs[0], {"url": url + "#other", "metadata": {}}]
    assert patch(c, image_id, {"op": "replace", "path": "/locations", "value": swapped}).status_code == 400
    after = c.get(f"/v2/images/{image_id}").json()["locations"]
    assert [loc["url"] for loc in after] == [url, url + "#b"] and after[0]["metadata"]["b"] == "2"
    # Removing: administrators only, never the last one.
    assert patch(c, image_id, {"op": "remove", "path": "/locations/0"}).status_code == 403
    assert patch(admin, image_id, {"op": "remove", "path": "/locations/0"}).status_code == 200
    assert patch(admin, image_id, {"op": "remove", "path": "/locations/0"}).status_code == 403
    assert len(c.get(f"/v2/images/{image_id}").json()["locations"]) == 1


def test_patch_refusals_change_nothing(multi, web):  # noqa: F811
    c = multi.client()
    image_id = new_image(c)
    before = c.get(f"/v2/images/{image_id}").json()
    cases = [
        ({"url": "gopher://info.cern.ch", "metadata": {}}, 400),
        ({"url": "file:///etc/passwd", "metadata": {}}, 400),
        ({"url": "http://169.254.169.254/latest", "metadata": {}}, 400),
        ({"url": f"{web[0]}/missing.img", "metadata": {}}, 400),
        ({"url": f"{web[0]}/disk.raw", "metadata": {}, "validation_data": {"os_hash_algo": "sha256"}}, 409),
        ({"url": f"{web[0]}/disk.raw", "metadata": {}, "validation_data": {"checksum": "xyz"}}, 409),
    ]
    for value, status in cases:
        resp = patch(c, image_id, {"op": "add", "path": "/locations/-", "value": value})
        assert resp.status_code == status, (value, resp.text)
    assert c.get(f"/v2/images/{image_id}").json() == before


def test_patch_validation_data_must_agree(multi, web):  # noqa: F811
    c = multi.client()
    url = f"{web[0]}/disk.raw"
    image_id = new_image(c)
    vouched = {"checksum": "1" * 32, "os_hash_algo": "sha512", "os_hash_value": "ab" * 64}
    value = {"url": url, "metadata": {}, "validation_data": vouched}
    assert patch(c, image_id, {"op": "add", "path": "/locations/-", "value": value}).status_code == 200
    body = c.get(f"/v2/images/{image_id}").json()
    assert (body["checksum"], body["os_hash_value"]) == ("1" * 32, "ab" * 64)
    other = {"url": url + "#2", "metadata": {}, "validation_data": {**vouched, "checksum": "2" * 32}}
    assert patch(c, image_id, {"op": "add", "path": "/locations/-", "value": other}).status_code == 409
    assert len(c.get(f"/v2/images/{image_id}").json()["locations"]) == 1


def test_post_location_verifies_hashes(multi, web):  # noqa: F811
    c = multi.client()
    url = f"{web[0]}/disk.raw"
    data = (web[1] / "disk.raw").read_bytes()
    image_id = new_image(c)
    for bad in ({"os_hash_value": "ab" * 64}, {"os_hash_algo": "sha123", "os_hash_value": "ab"},
                {"os_hash_algo": "sha512", "os_hash_value": "ab" * 10}):
        resp = c.post(f"/v2/images/{image_id}/locations", json={"url": url, "validation_data": bad})
        assert resp.status_code == 400, bad
    assert c.post(f"/v2/images/{image_id}/locations", json={"url": "http://10.0.0.1/x"}).status_code == 400
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    sha256 = hashlib.sha256(data).hexdigest()
    resp = c.post(f"/v2/images/{image_id}/locations",
                  json={"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": sha256}})
    assert resp.status_code == 202
    assert wait_tasks(c, image_id)[0]["status"] == "success"
    body = c.get(f"/v2/images/{image_id}").json()
    assert body["status"] == "active" and body["os_hash_algo"] == "sha256" and body["os_hash_value"] == sha256
    assert body["checksum"] == hashlib.md5(data).hexdigest() and body["size"] == len(data)
    # A second location through this API needs a queued image.
    assert c.post(f"/v2/images/{image_id}/locations", json={"url": url + "#2"}).status_code == 409

    wrong = new_image(c)
    resp = c.post(f"/v2/images/{wrong}/locations",
                  json={"url": url, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "be" * 64}})
    assert resp.status_code == 202
    assert wait_tasks(c, wrong)[0]["status"] == "failure"
    body = c.get(f"/v2/images/{wrong}").json()
    assert body["status"] == "queued" and body["checksum"] is None and body["os_hash_value"] is None


def test_get_locations_is_for_services(multi, web):  # noqa: F811
    c, admin = multi.client(), multi.client("admin")
    image_id = new_image(c)
    c.patch(f"/v2/images/{image_id}", headers=PATCH,
            json=[{"op": "add", "path": "/locations/-", "value": {"url": f"{web[0]}/disk.raw", "metadata": {}}}])
    assert c.get(f"/v2/images/{image_id}/locations").status_code == 403
    locs = admin.get(f"/v2/images/{image_id}/locations").json()
    assert locs == [{"url": f"{web[0]}/disk.raw", "metadata": {"store": "web"}}]


def test_locations_are_hidden_from_everyone_by_default(server):
    """VMIMAGE_SHOW_LOCATIONS defaults to false: no file:// path reaches the owner or an admin."""
    c = server.client()
    image_id = c.post("/v2/images", json={"name": "hidden", "disk_format": "raw",
                                          "container_format": "bare"}).json()["id"]
    assert c.put(f"/v2/images/{image_id}/file", content=b"data",
                 headers={"Content-Type": "application/octet-stream"}).status_code == 204
    for persona in ("demo", "admin"):
        with server.client(persona) as http:
            shown = http.get(f"/v2/images/{image_id}")
            listed = [i for i in http.get("/v2/images").json()["images"] if i["id"] == image_id]
        assert shown.status_code == 200 and listed
        for body in (shown.json(), listed[0]):
            assert "locations" not in body and "direct_url" not in body, body
            assert "file://" not in str(body)
