"""Bodies of the wrong shape get 400 in the face's envelope and change nothing (issue 11,
item 9): typed models with bounds on every face — 63-bit integers, names of at most 255
characters, booleans that are booleans."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import auth_body

V1 = "/vmimage/v1"
TOKENS = "/identity/v3/auth/tokens"
HUGE = 18446744073709551616      # 2**64


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def glance_400(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == 400 and error["message"]


def native_400(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["status"] == 400 and error["code"] == "invalid" and error["message"]


def aries_400(resp: httpx.Response, code: str = "InvalidParameter") -> None:
    assert (resp.status_code, resp.json()["code"]) == (400, code), resp.text


@pytest.fixture
def http(server):
    with server.client("demo") as c:
        yield c


def _password_auth(**user_overrides) -> dict:
    body = auth_body("demo", "demo", "demo")
    body["auth"]["identity"]["password"]["user"].update(user_overrides)
    return body


@pytest.mark.parametrize("body", [
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "password": "demo", "domain": {"name": "Default"}}}}, "scope": {"project": "demo"}}},
    _password_auth(domain="Default"),
    {"auth": {"identity": {"methods": ["token"], "token": "abc"}}},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": "x"},
    [],
    _password_auth(password=123),
    _password_auth(name="x" * 10000),
], ids=["project-string", "domain-string", "token-string", "methods-string", "auth-string", "list",
        "password-int", "name-10000"])
def test_keystone_auth_bodies_of_the_wrong_shape_are_400(server, body):
    glance_400(httpx.post(f"{server.url}{TOKENS}", json=body))


def test_keystone_well_formed_bodies_still_work(server):
    assert httpx.post(f"{server.url}{TOKENS}", json=auth_body("demo", "demo", "demo")).status_code == 201
    unscoped = auth_body("demo", "demo", "demo")
    unscoped["auth"]["scope"] = "unscoped"
    resp = httpx.post(f"{server.url}{TOKENS}", json=unscoped)
    assert resp.status_code == 201 and "project" not in resp.json()["token"]
    nulls = auth_body("demo", "demo", "demo")
    nulls["auth"]["scope"] = {"project": None}
    assert httpx.post(f"{server.url}{TOKENS}", json=nulls).status_code == 201
    assert httpx.post(f"{server.url}{TOKENS}", json=_password_auth(password="wrong")).status_code == 401


@pytest.mark.parametrize("field,value", [("min_disk", HUGE), ("min_ram", HUGE), ("min_disk", 1 << 31),
                                         ("min_disk", -1), ("min_disk", "1"), ("protected", "no"),
                                         ("name", "n" * 256)])
def test_glance_create_out_of_bounds_is_400_and_creates_nothing(http, field, value):
    before = len(http.get("/v2/images").json()["images"])
    glance_400(http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", field: value}))
    assert len(http.get("/v2/images").json()["images"]) == before


def test_glance_patch_and_queries_out_of_bounds_are_400(http):
    image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    patch = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    glance_400(http.patch(f"/v2/images/{image['id']}", headers=patch,
                          json=[{"op": "replace", "path": "/min_disk", "value": HUGE}]))
    assert http.get(f"/v2/images/{image['id']}").json()["min_disk"] == 0
    for query in ("size_min", "size_max", "limit", "min_disk", "size"):
        glance_400(http.get("/v2/images", params={query: str(HUGE)}))
    glance_400(http.get("/v2/metadefs/namespaces", params={"limit": str(HUGE)}))


def test_glance_member_bodies_are_typed(server, http):
    image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare",
                                          "visibility": "shared"}).json()
    for body in ({"member": "p" * 1000}, {"member": 5}, {"member": ["a"]}, ["member"]):
        glance_400(http.post(f"/v2/images/{image['id']}/members", json=body))
    assert http.get(f"/v2/images/{image['id']}/members").json()["members"] == []
    alt = server.project_id("alt")
    assert http.post(f"/v2/images/{image['id']}/members", json={"member": alt}).status_code == 200
    with server.client("alt") as other:
        glance_400(other.put(f"/v2/images/{image['id']}/members/{alt}", json={"status": True}))
        assert other.put(f"/v2/images/{image['id']}/members/{alt}", json={"status": "accepted"}).status_code == 200


@pytest.mark.parametrize("body", [
    {"size_gb": 1, "snapshot_id": ["snap-1"]},
    {"size_gb": 1, "snapshot_id": {"id": "snap-1"}},
    {"size_gb": 1, "name": "v" * 10000},
    {"size_gb": HUGE},
    {"size_gb": "1"},
    {"size_gb": 1, "encrypted": "no"},
    {"size_gb": 1, "type": ["ssd.gp1"]},
], ids=["snapshot-list", "snapshot-object", "name-10000", "size-2**64", "size-string", "encrypted-string",
        "type-list"])
def test_native_volume_bodies_of_the_wrong_shape_are_400(http, body):
    before = len(http.get(f"{V1}/volumes").json()["volumes"])
    native_400(http.post(f"{V1}/volumes", json=body))
    assert len(http.get(f"{V1}/volumes").json()["volumes"]) == before


@pytest.mark.parametrize("body", [
    {"name": "s", "image_id": "x", "start": "no"},
    {"name": "s", "image_id": "x", "start": 0},
    {"name": "s" * 256, "image_id": "x"},
    {"name": "s", "image_id": ["x"]},
    {"name": "s", "image_id": "x", "memory_mb": HUGE},
    {"name": "s", "image_id": "x", "system_disk": "big"},
    {"name": "s", "image_id": "x", "data_disks": [{"device": "vdb", "size_gb": 1, "snapshot_id": [1]}]},
    {"name": "s", "image_id": "x", "data_disks": [{"device": "vdb", "size_gb": 1}] * 26},
], ids=["start-no", "start-0", "name-256", "image-list", "memory-2**64", "system-string",
        "disk-snapshot-list", "26-disks"])
def test_native_server_bodies_of_the_wrong_shape_are_400(http, body):
    before = len(http.get(f"{V1}/servers").json()["servers"])
    native_400(http.post(f"{V1}/servers", json=body))
    assert len(http.get(f"{V1}/servers").json()["servers"]) == before


def test_native_other_bodies_are_typed(http):
    native_400(http.post(f"{V1}/snapshots", json={"volume_id": ["vol-1"]}))
    native_400(http.post(f"{V1}/snapshots", json={}))
    native_400(http.post(f"{V1}/volumes/vol-x/attach", json={"server_id": 5}))
    native_400(http.post(f"{V1}/servers/i-x/images", json={"name": "n", "data_disks": [{"exclude": "yes"}]}))
    native_400(http.post(f"{V1}/volumes/vol-x/images", json={"name": "n", "description": "d" * 2000}))


@pytest.mark.parametrize("path,body,code", [
    ("/image/create", {"name": "n" * 256, "os_type": "linux", "os_name": "x"}, "InvalidParameter"),
    ("/image/create", {"name": "n", "os_type": "linux", "os_name": "x", "uuid": ["u"]}, "InvalidParameter"),
    ("/image/create", {"name": "n", "os_type": "linux", "os_name": "x", "source_path": "/" + "a" * 5000},
     "InvalidSourcePath"),
    ("/image", {"id": HUGE, "name": "n"}, "InvalidParameter"),
    ("/server/create", {"compute": {"cpu_core_count": "1", "memory_size": 128},
                        "storage": {"volumes": [{"type": 0, "size": 1, "image_ref": "x"}]}}, "InvalidCPUCore"),
    ("/server/create", {"compute": {"cpu_core_count": 1, "memory_size": HUGE},
                        "storage": {"volumes": [{"type": 0, "size": 1, "image_ref": "x"}]}}, "InvalidMemorySize"),
    ("/server/create", {"compute": {"cpu_core_count": 1, "memory_size": 128},
                        "storage": {"volumes": [{"type": 0, "size": 1, "image_ref": "x"}]},
                        "option": {"boot_when_created": "no"}}, "InvalidParameter"),
    ("/server/create", {"compute": {"cpu_core_count": 1, "memory_size": 128},
                        "storage": {"volumes": [{"type": 0, "size": 1, "image_ref": {"a": 1}}]}},
     "InvalidParameter"),
    ("/volume/create", {"name": "v" * 10000, "type": 1, "size": 1}, "InvalidParameter"),
    ("/volume/create", {"name": "v", "type": 1, "size": HUGE}, "InvalidDiskSize"),
    ("/volume/create", {"name": "v", "type": True, "size": 1}, "InvalidDiskType"),
], ids=["image-name-256", "image-uuid-list", "image-path-5000", "update-id-2**64", "cpu-string",
        "memory-2**64", "boot-no", "image-ref-object", "volume-name-10000", "volume-size-2**64",
        "volume-type-bool"])
def test_aries_bodies_of_the_wrong_shape_are_400(server, path, body, code):
    url = f"{server.url}/aries/api/v1"
    auth = basic("demo", "demo")

    def counts() -> tuple[int, int, int]:
        return (len(httpx.get(f"{url}/image/list", headers=auth).json()),
                len(httpx.get(f"{url}/server", headers=auth, params={"page_size": 1000}).json()),
                len(httpx.get(f"{url}/volume", headers=auth).json()["volumes"]))
    before = counts()
    method = httpx.put if path == "/image" else httpx.post
    aries_400(method(url + path, json=body, headers=auth), code)
    assert counts() == before


def test_nul_characters_are_refused_not_500(server, http):
    """PostgreSQL text cannot hold NUL: the database adapter refuses it as invalid input."""
    image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    answers = [
        http.put("/v2/images/%00/tags/x"),
        http.put(f"/v2/images/{image['id']}/tags/a%00b"),
        http.get("/v2/images", params={"name": "a\0b"}),
        http.get("/v2/metadefs/namespaces", params={"resource_types": "a\0b"}),
        http.post("/v2/images", json={"name": "a\0b", "disk_format": "raw", "container_format": "bare"}),
        http.post(f"{V1}/volumes", json={"size_gb": 1, "name": "a\0b"}),
    ]
    for resp in answers:
        assert resp.status_code < 500, (resp.request.url, resp.text)
        if resp.status_code >= 400:
            assert resp.json()["error"]["message"]
    assert http.get(f"/v2/images/{image['id']}").json()["tags"] in ([], ["a\0b"])
