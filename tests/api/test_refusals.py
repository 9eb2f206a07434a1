"""Bad input gets Glance's status code and changes nothing."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import reaped, start_server

OCTET = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def new_image(http: httpx.Client, **body) -> dict:
    resp = http.post("/v2/images", json={"disk_format": "qcow2", "container_format": "bare", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def assert_untouched(server, http: httpx.Client, image_id: str) -> None:
    """Back to queued, no data attributes, and nothing of it in the store."""
    image = http.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None and image["virtual_size"] is None
    reaped(lambda: not [b for b in server.stored_blobs() if image_id in b])
    assert http.get(f"/v2/images/{image_id}/file").status_code == 204


@pytest.fixture
def http(server):
    with server.client("demo") as c:
        yield c


@pytest.mark.parametrize("name", ["backing.qcow2", "datafile.qcow2", "encrypted.qcow2"])
def test_unsafe_qcow2_is_refused(server, http, images_dir, name):
    image = new_image(http)
    resp = http.put(f"/v2/images/{image['id']}/file", content=(images_dir / name).read_bytes(), headers=OCTET)
    assert resp.status_code == 415, resp.text
    assert_untouched(server, http, image["id"])


def test_vmdk_pointing_at_a_host_file_is_refused(server, http, images_dir):
    image = new_image(http, disk_format="vmdk")
    resp = http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "hostfile.vmdk").read_bytes(),
                    headers=OCTET)
    assert resp.status_code == 415, resp.text
    assert_untouched(server, http, image["id"])


def test_valid_vmdk_is_accepted(http, images_dir):
    image = new_image(http, disk_format="vmdk")
    resp = http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.vmdk").read_bytes(),
                    headers=OCTET)
    assert resp.status_code == 204, resp.text
    assert http.get(f"/v2/images/{image['id']}").json()["virtual_size"] == 8 << 20


def test_format_mismatch_is_refused(server, http, images_dir):
    image = new_image(http, disk_format="vhd")
    resp = http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                    headers=OCTET)
    assert resp.status_code == 415
    assert_untouched(server, http, image["id"])
    raw_as_qcow2 = new_image(http)
    resp = http.put(f"/v2/images/{raw_as_qcow2['id']}/file", content=b"\0" * 65536, headers=OCTET)
    assert resp.status_code == 415
    assert_untouched(server, http, raw_as_qcow2["id"])


def test_qcow2_hidden_in_raw_is_stored_raw_with_its_true_size(http, images_dir):
    """Upstream accepts richer content declared raw; the virtual size is then the byte size."""
    data = (images_dir / "disk.qcow2").read_bytes()
    image = new_image(http, disk_format="raw")
    assert http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 204
    assert http.get(f"/v2/images/{image['id']}").json()["virtual_size"] == len(data)


def test_wrong_content_type(server, http):
    image = new_image(http)
    resp = http.put(f"/v2/images/{image['id']}/file", content=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    resp = http.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/name", "value": "n"}])
    assert resp.status_code == 415
    assert "openstack-images-v2.1-json-patch" in resp.headers["Accept-Patch"]
    assert http.get(f"/v2/images/{image['id']}").json()["name"] is None
    assert_untouched(server, http, image["id"])


def test_declared_size_mismatch_and_upload_twice(server, http, images_dir):
    data = (images_dir / "disk.qcow2").read_bytes()
    image = new_image(http)
    resp = http.put(f"/v2/images/{image['id']}/file", content=data,
                    headers={**OCTET, "x-openstack-image-size": str(len(data) + 1)})
    assert resp.status_code == 400
    assert_untouched(server, http, image["id"])
    assert http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 204
    assert http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 409


def test_upload_needs_formats(http):
    resp = http.post("/v2/images", json={"name": "no-format"})
    image = resp.json()
    assert http.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=OCTET).status_code == 400


def test_oversize_is_refused_while_streaming(strict_server):
    with strict_server.client("demo") as http:
        image = new_image(http, disk_format="raw")
        # declared too large: refused before any byte is stored
        resp = http.put(f"/v2/images/{image['id']}/file", content=b"x",
                        headers={**OCTET, "x-openstack-image-size": str(5 << 20)})
        assert resp.status_code == 413

        def body():
            for _ in range(8):
                yield b"\1" * (1 << 20)
        resp = http.put(f"/v2/images/{image['id']}/file", content=body(), headers=OCTET)
        assert resp.status_code == 413
        assert_untouched(strict_server, http, image["id"])
        http.delete(f"/v2/images/{image['id']}")


def test_image_count_quota(strict_server):
    with strict_server.client("alt") as http:
        made = [http.post("/v2/images", json={"name": f"q{i}"}) for i in range(5)]
        assert [r.status_code for r in made] == [201, 201, 201, 413, 413]
        listed = http.get("/v2/images").json()["images"]
        assert len(listed) == 3
        usage = http.get("/v2/info/usage").json()["usage"]
        assert usage["image_count_total"] == {"limit": 3, "usage": 3}
        for r in made[:3]:
            assert http.delete(f"/v2/images/{r.json()['id']}").status_code == 204


def test_concurrent_creates_respect_the_quota(strict_server):
    strict_server.token("reader")
    with strict_server.client("demo") as http:
        for image in http.get("/v2/images").json()["images"]:
            http.delete(f"/v2/images/{image['id']}")
    codes: list[int] = []

    def create():
        with strict_server.client("demo") as c:
            codes.append(c.post("/v2/images", json={"name": "race"}).status_code)
    threads = [threading.Thread(target=create) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] * 3 + [413] * 9
    with strict_server.client("demo") as http:
        for image in http.get("/v2/images").json()["images"]:
            http.delete(f"/v2/images/{image['id']}")


def test_a_projects_own_image_limit_overrides_the_default(server, strict_server):
    # Default unlimited, the project's own limit set: the create that adds at once must see it.
    with server.client("alt") as http:
        used = http.get("/v2/info/usage").json()["usage"]["image_count_total"]["usage"]
        server.admin_cli("quota", "set", "--project", "alt", "--images", str(used + 1))
        made = []
        try:
            made = [http.post("/v2/images", json={"name": f"own{i}"}) for i in range(3)]
            assert [r.status_code for r in made] == [201, 413, 413]
        finally:
            server.admin_cli("quota", "set", "--project", "alt", "--images", "-1")
            for r in made:
                if r.status_code == 201:
                    http.delete(f"/v2/images/{r.json()['id']}")
        assert http.post("/v2/images", json={"name": "free"}).status_code == 201
    # Default 3, the project's own limit unlimited: more than 3 go in.
    strict_server.admin_cli("quota", "set", "--project", "alt", "--images", "-1")
    with strict_server.client("alt") as http:
        made = []
        try:
            made = [http.post("/v2/images", json={"name": f"free{i}"}) for i in range(5)]
            assert [r.status_code for r in made] == [201] * 5
        finally:
            strict_server.admin_cli("quota", "set", "--project", "alt", "--images", "3")
            for r in made:
                if r.status_code == 201:
                    http.delete(f"/v2/images/{r.json()['id']}")
        assert http.get("/v2/info/usage").json()["usage"]["image_count_total"]["limit"] == 3


def test_expired_token(tmp_path, database_factory):
    # a server of its own: 2-second tokens would expire under the other tests on a busy machine
    srv = start_server(tmp_path, database_factory(), VMIMAGE_TOKEN_TTL="2")
    try:
        with srv.client("demo") as http:
            assert http.get("/v2/images").status_code == 200
            time.sleep(2.5)
            assert http.get("/v2/images").status_code == 401
            assert http.post("/v2/images", json={"name": "late"}).status_code == 401
    finally:
        srv.stop()


def test_no_or_bad_token(server):
    assert httpx.get(f"{server.url}/v2/images").status_code == 401
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": "nope"}).status_code == 401
    assert httpx.post(f"{server.url}/v2/images", json={}).status_code == 401


def test_reserved_and_read_only_properties(http):
    for body in ({"os_glance_import_task": "x"}, {"status": "active"}, {"size": 4}, {"location": "x"},
                 {"checksum": "x"}, {"self": "x"}, {"deleted": "x"}):
        assert http.post("/v2/images", json=body).status_code == 403, body
    image = new_image(http)
    for path in ("/os_glance_failed_import", "/status", "/id", "/size", "/created_at", "/deleted_at"):
        resp = http.patch(f"/v2/images/{image['id']}", headers=PATCH,
                          json=[{"op": "add", "path": path, "value": "x"}])
        assert resp.status_code == 403, path
    assert http.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_patch_rules(http):
    image = new_image(http, name="p")
    url = f"/v2/images/{image['id']}"
    ok = http.patch(url, headers=PATCH, json=[{"op": "add", "path": "/k", "value": "v"},
                                              {"op": "replace", "path": "/name", "value": "q"}])
    assert ok.status_code == 200 and ok.json()["k"] == "v" and ok.json()["name"] == "q"
    # atomic: a failing op leaves the earlier ones unapplied
    bad = http.patch(url, headers=PATCH, json=[{"op": "replace", "path": "/name", "value": "z"},
                                               {"op": "remove", "path": "/missing"}])
    assert bad.status_code == 409
    assert http.get(url).json()["name"] == "q"
    assert http.patch(url, headers=PATCH, json=[{"op": "remove", "path": "/name"}]).status_code == 403
    assert http.patch(url, headers=PATCH, json=[{"op": "replace", "path": "/min_ram", "value": "x"}]).status_code == 400
    assert http.patch(url, headers=PATCH, json=[{"op": "move", "path": "/name"}]).status_code == 400
    assert http.patch(url, headers=PATCH, json=[{"op": "add", "path": "/a/b", "value": "x"}]).status_code == 400
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    assert http.patch(url, headers=v20, json=[{"replace": "/name", "value": "old-style"}]).json()["name"] == "old-style"
    assert http.patch(url, headers=PATCH, json=[{"op": "replace", "path": "/visibility", "value": "public"}]
                      ).status_code == 403
    too_many = [{"op": "add", "path": f"/p{i}", "value": "v"} for i in range(130)]
    assert http.patch(url, headers=PATCH, json=too_many).status_code == 413
    assert "p0" not in http.get(url).json()


def test_listing_errors_and_operators(http):
    a = new_image(http, name="list-a", disk_format="raw")
    b = new_image(http, name="list-b", disk_format="iso")
    assert http.get("/v2/images", params={"marker": "00000000-0000-0000-0000-000000000000"}).status_code == 400
    assert http.get("/v2/images", params={"limit": "-1"}).status_code == 400
    assert http.get("/v2/images", params={"sort_key": "bogus"}).status_code == 400
    assert http.get("/v2/images", params={"sort": "name:asc", "sort_key": "name"}).status_code == 400
    got = http.get("/v2/images", params={"name": 'in:list-a,list-b', "sort": "name:asc"}).json()
    assert [i["id"] for i in got["images"]] == [a["id"], b["id"]]
    got = http.get("/v2/images", params={"disk_format": "in:iso", "name": "list-b"}).json()
    assert [i["id"] for i in got["images"]] == [b["id"]]
    first = http.get("/v2/images", params={"limit": 1, "name": "in:list-a,list-b", "sort_key": "name",
                                           "sort_dir": "asc"}).json()
    assert [i["id"] for i in first["images"]] == [a["id"]]
    second = http.get(first["next"]).json()
    assert [i["id"] for i in second["images"]] == [b["id"]]
    created = http.get(f"/v2/images/{a['id']}").json()["created_at"]
    later = http.get("/v2/images", params={"created_at": f"gt:{created}", "name": "list-a"}).json()
    assert later["images"] == []
    same = http.get("/v2/images", params={"created_at": f"lte:{created}", "name": "list-a"}).json()
    assert [i["id"] for i in same["images"]] == [a["id"]]


def test_other_projects_private_image_is_invisible(server, http):
    image = new_image(http, visibility="private", name="secret")
    with server.client("alt") as alt:
        assert alt.get(f"/v2/images/{image['id']}").status_code == 404
        assert alt.delete(f"/v2/images/{image['id']}").status_code == 404
        assert alt.patch(f"/v2/images/{image['id']}", headers=PATCH,
                         json=[{"op": "replace", "path": "/name", "value": "x"}]).status_code == 404
        assert image["id"] not in [i["id"] for i in alt.get("/v2/images", params={"visibility": "all"}).json()["images"]]
    assert http.get(f"/v2/images/{image['id']}").json()["name"] == "secret"


def test_reader_may_read_but_not_write(server, http):
    image = new_image(http, name="readable")
    with server.client("reader") as reader:
        assert reader.get(f"/v2/images/{image['id']}").status_code == 200
        assert reader.post("/v2/images", json={"name": "x"}).status_code == 403
        assert reader.delete(f"/v2/images/{image['id']}").status_code == 403
        assert reader.put(f"/v2/images/{image['id']}/tags/t").status_code == 403


def test_wrong_method_gets_405_with_allow(http):
    resp = http.post("/v2/images/00000000-0000-0000-0000-000000000000/file")
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) >= {"GET", "PUT"}
    assert http.get("/v2/images/").status_code == 404


def test_range_download(http, images_dir):
    data = (images_dir / "disk.qcow2").read_bytes()
    image = new_image(http)
    http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET)
    full = http.get(f"/v2/images/{image['id']}/file")
    assert full.content == data and full.headers["Content-MD5"] == image_checksum(http, image["id"])
    part = http.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    tail = http.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    bad = http.get(f"/v2/images/{image['id']}/file", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416


def image_checksum(http, image_id: str) -> str:
    return http.get(f"/v2/images/{image_id}").json()["checksum"]


def test_image_deleted_mid_upload_gets_410_and_leaves_nothing(server, http):
    image = new_image(http, disk_format="raw")
    halfway = threading.Event()

    def body():
        for i in range(16):
            if i == 4:
                halfway.set()
                time.sleep(2.0)
            yield b"\2" * (1 << 20)
    result = {}

    def upload():
        with server.client("demo") as c:
            result["resp"] = c.put(f"/v2/images/{image['id']}/file", content=body(), headers=OCTET)
    t = threading.Thread(target=upload)
    t.start()
    halfway.wait(10)
    for _ in range(50):   # the server may not have read the first bytes yet
        if http.get(f"/v2/images/{image['id']}").json()["status"] == "saving":
            break
        time.sleep(0.05)
    assert http.get(f"/v2/images/{image['id']}").json()["status"] == "saving"
    assert http.delete(f"/v2/images/{image['id']}").status_code == 204
    t.join(30)
    assert result["resp"].status_code == 410
    assert http.get(f"/v2/images/{image['id']}").status_code == 404
    reaped(lambda: not [b for b in server.stored_blobs() if image["id"] in b])


def test_duplicate_id_and_bad_values(http):
    image = new_image(http)
    assert http.post("/v2/images", json={"id": image["id"]}).status_code == 409
    assert http.post("/v2/images", json={"id": "not-a-uuid"}).status_code == 400
    assert http.post("/v2/images", json={"disk_format": "floppy"}).status_code == 400
    assert http.post("/v2/images", json={"min_disk": -1}).status_code == 400
    assert http.post("/v2/images", json={"name": "x" * 256}).status_code == 400
    assert http.post("/v2/images", content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    http.delete(f"/v2/images/{image['id']}")
    assert http.post("/v2/images", json={"id": image["id"]}).status_code == 409  # ids are never reused


def test_extra_properties_named_like_core_attributes_stay_properties(http):
    image = new_image(http)
    url = f"/v2/images/{image['id']}"
    resp = http.patch(url, headers=PATCH, json=[{"op": "add", "path": "/description", "value": "d"},
                                                {"op": "add", "path": "/kind", "value": "anything"}])
    assert resp.status_code == 200, resp.text
    shown = http.get(url).json()
    assert shown["description"] == "d" and shown["kind"] == "anything"
    assert http.patch(url, headers=PATCH, json=[{"op": "remove", "path": "/kind"}]).status_code == 200
    assert "kind" not in http.get(url).json()
