"""Regions: one service, two regions (VMIMAGE_REGIONS), each with its own file store; every
face scoped by region, users in several projects, and copies within and across regions
through the official SDKs (openstacksdk, huaweicloudsdkims, jdcloud-sdk) against a real
server process."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

pytest.importorskip("jdcloud_sdk")
from jdcloud_sdk.core.config import Config  # noqa: E402
from jdcloud_sdk.core.credential import Credential  # noqa: E402
from jdcloud_sdk.services.vm.apis.CopyImagesRequest import CopyImagesParameters, CopyImagesRequest  # noqa: E402
from jdcloud_sdk.services.vm.apis.DescribeImageRequest import (DescribeImageParameters,  # noqa: E402
                                                              DescribeImageRequest)
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import (DescribeImagesParameters,  # noqa: E402
                                                               DescribeImagesRequest)
from jdcloud_sdk.services.vm.client.VmClient import VmClient  # noqa: E402

from tests.conftest import PERSONAS, VMIMAGE, start_server  # noqa: E402

ONE, TWO = "RegionOne", "RegionTwo"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_factory):
    srv = start_server(tmp_path_factory.mktemp("regions"), database_factory(), VMIMAGE_REGIONS=f"{ONE},{TWO}")
    # demo's IMS project in RegionTwo (Huawei has a project per region), demo a member of it.
    srv.admin_cli("project", "create", "demo-two", "--region", TWO)
    srv.admin_cli("role", "grant", "--user", "demo", "--project", "demo-two", "--role", "member")
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


def files_in(directory) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def region_url(server, region: str) -> str:
    return server.url if region == ONE else f"{server.url}/region/{region}"


def upload_image(server, region: str, name: str, data: bytes, persona: str = "demo") -> dict:
    """A raw image made through the Glance endpoint of a region (one token for both)."""
    with httpx.Client(base_url=region_url(server, region), headers={"X-Auth-Token": server.token(persona)},
                      timeout=120) as http:
        image = http.post("/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare"})
        assert image.status_code == 201, image.text
        assert http.put(f"/v2/images/{image.json()['id']}/file", content=data, headers=OCTET).status_code == 204
        return http.get(f"/v2/images/{image.json()['id']}").json()


def payload(size: int = 3 << 20) -> bytes:
    return uuid.uuid4().bytes * (size // 16)


# --- configuration, catalog, Glance ------------------------------------------------------------

def test_each_region_has_its_own_file_store_and_catalog_endpoint(server):
    resp = httpx.post(f"{server.url}/identity/v3/auth/tokens",
                      json={"auth": {"identity": {"methods": ["password"], "password": {"user": {
                          "name": "demo", "password": "demo", "domain": {"name": "Default"}}}},
                          "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
    image = next(s for s in resp.json()["token"]["catalog"] if s["type"] == "image")
    public = {e["region"]: e["url"] for e in image["endpoints"] if e["interface"] == "public"}
    assert public == {ONE: server.url, TWO: f"{server.url}/region/{TWO}"}
    one = upload_image(server, ONE, "in-one", b"1" * 4096)
    two = upload_image(server, TWO, "in-two", b"2" * 4096)
    assert one["id"] in files_in(server.data_dir / "images")
    assert two["id"] in files_in(server.data_dir / f"images-{TWO}")
    assert two["id"] not in files_in(server.data_dir / "images")


def test_glance_answers_for_its_endpoints_region_only(server):
    two = upload_image(server, TWO, "only-two", b"x" * 4096)
    with server.client("demo") as root, httpx.Client(base_url=region_url(server, TWO),
                                                     headers={"X-Auth-Token": server.token("demo")}) as regional:
        assert root.get(f"/v2/images/{two['id']}").status_code == 404
        assert root.get(f"/v2/images/{two['id']}/file").status_code == 404
        assert root.delete(f"/v2/images/{two['id']}").status_code == 404
        assert two["id"] not in [i["id"] for i in root.get("/v2/images").json()["images"]]
        assert regional.get(f"/v2/images/{two['id']}").status_code == 200
        assert regional.get(f"/v2/images/{two['id']}/file").content == b"x" * 4096
        # Links stay under the region's prefix; the version document too.
        assert regional.get("/versions").json()["versions"][0]["links"][0]["href"].startswith(
            f"{server.url}/region/{TWO}")
        assert regional.get("/region-less").status_code == 404
        assert httpx.get(f"{server.url}/region/Nowhere/v2/images",
                         headers={"X-Auth-Token": server.token("demo")}).status_code == 404


def test_openstacksdk_with_region_name_sees_each_regions_images_only(server):
    import openstack

    one = upload_image(server, ONE, f"sdk-one-{uuid.uuid4().hex[:6]}", b"a" * 4096)
    two = upload_image(server, TWO, f"sdk-two-{uuid.uuid4().hex[:6]}", b"b" * 4096)
    password, project, _ = PERSONAS["demo"]

    def connect(region: str):
        return openstack.connect(auth_url=f"{server.url}/identity/v3", username="demo", password=password,
                                 project_name=project, user_domain_name="Default", project_domain_name="Default",
                                 region_name=region, identity_api_version="3", image_api_version="2")

    seen = {region: {i.id for i in connect(region).image.images()} for region in (ONE, TWO)}
    assert one["id"] in seen[ONE] and one["id"] not in seen[TWO]
    assert two["id"] in seen[TWO] and two["id"] not in seen[ONE]
    made = connect(TWO).image.create_image(name="sdk-made-in-two", data=b"c" * 8192, disk_format="raw",
                                           container_format="bare", allow_duplicates=True)
    assert made.id in {i.id for i in connect(TWO).image.images()}
    assert made.id not in {i.id for i in connect(ONE).image.images()}
    assert made.id in files_in(server.data_dir / f"images-{TWO}")


# --- roles ---------------------------------------------------------------------------------------

def test_role_grant_list_revoke_scope_tokens_and_audit(server):
    server.admin_cli("project", "create", "extra")
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alt", "password": "alt", "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "extra", "domain": {"name": "Default"}}}}}
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body).status_code == 401
    granted = json.loads(server.admin_cli("role", "grant", "--user", "alt", "--project", "extra", "--role", "reader"))
    assert granted["role"] == "reader" and granted["project"] == "extra"
    resp = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body)
    assert resp.status_code == 201 and [r["name"] for r in resp.json()["token"]["roles"]] == ["reader"]
    token = resp.headers["X-Subject-Token"]
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 200
    listed = json.loads(server.admin_cli("role", "list", "--user", "alt"))
    assert {(r["project"], r["role"]) for r in listed} == {("alt", "member"), ("extra", "reader")}
    server.admin_cli("role", "revoke", "--user", "alt", "--project", "extra", "--role", "reader")
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 401
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body).status_code == 401
    again = subprocess.run([*VMIMAGE, "admin", "--data-dir", str(server.data_dir), "role", "revoke", "--user", "alt",
                            "--project", "extra", "--role", "reader"], env=server.env, capture_output=True, text=True)
    assert again.returncode == 1
    for kind in ("role.grant", "role.revoke"):
        lines = server.admin_cli("audit", "list", "--json", "--kind", kind).splitlines()
        assert any(json.loads(line)["detail"] == "reader" and json.loads(line)["target_project_id"]
                   == granted["project_id"] for line in lines), kind


# --- JD Cloud ------------------------------------------------------------------------------------

def jd_client(server, key: dict) -> VmClient:
    return VmClient(Credential(key["access_key"], key["secret_key"]),
                    Config(server.url.removeprefix("http://"), scheme="http", timeout=60))


@pytest.fixture(scope="module")
def jd(server) -> VmClient:
    return jd_client(server, json.loads(server.admin_cli("access-key", "create", "--user", "demo")))


def jd_describe(client: VmClient, region: str, image_id: str):
    return client.send(DescribeImageRequest(DescribeImageParameters(region, image_id)))


def test_jd_lists_by_the_paths_region_and_copies_across(server, jd):
    data = payload()
    source = upload_image(server, ONE, f"jd-src-{uuid.uuid4().hex[:6]}", data)
    private = DescribeImagesParameters(ONE)
    private.setImageSource("private")
    private.setPageSize(100)
    refs = {i["name"]: i["imageId"] for i in jd.send(DescribeImagesRequest(private)).result["images"]}
    assert source["name"] in refs
    ref = refs[source["name"]]
    assert jd_describe(jd, TWO, ref).error.status == "NOT_FOUND"
    resp = jd.send(CopyImagesRequest(CopyImagesParameters(ONE, [ref], TWO)))
    assert resp.error is None, resp.error.message
    ((pair,),) = [resp.result["copyImages"]]
    assert pair["sourceImageId"] == ref
    deadline = time.monotonic() + 120
    while True:
        copy = jd_describe(jd, TWO, pair["destinationImageId"])
        assert copy.error is None, copy.error.message
        if copy.result["image"]["status"] != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert copy.result["image"]["status"] == "ready"
    assert jd_describe(jd, ONE, pair["destinationImageId"]).error.status == "NOT_FOUND"
    listed_two = DescribeImagesParameters(TWO)
    listed_two.setImageSource("private")
    listed_two.setPageSize(100)
    in_two = {i["imageId"] for i in jd.send(DescribeImagesRequest(listed_two)).result["images"]}
    assert pair["destinationImageId"] in in_two and ref not in in_two
    with httpx.Client(base_url=region_url(server, TWO), headers={"X-Auth-Token": server.token("demo")}) as http:
        found = [i for i in http.get("/v2/images").json()["images"] if i["name"] == source["name"]]
        assert len(found) == 1 and found[0]["checksum"] == source["checksum"]
        assert hashlib.sha512(http.get(f"/v2/images/{found[0]['id']}/file").content).digest() \
            == hashlib.sha512(data).digest()


def test_jd_copy_refusals_create_nothing(server, jd):
    source = upload_image(server, ONE, f"jd-bad-{uuid.uuid4().hex[:6]}", b"z" * 8192)
    private = DescribeImagesParameters(TWO)
    private.setImageSource("private")
    private.setPageSize(100)
    before = jd.send(DescribeImagesRequest(private)).result["totalCount"]
    stored = files_in(server.data_dir / f"images-{TWO}")
    refs = {i["name"]: i["imageId"] for i in jd.send(DescribeImagesRequest(
        _private_params(ONE))).result["images"]}
    ref = refs[source["name"]]
    for params, status in ((CopyImagesParameters(ONE, [ref], "Nowhere"), "INVALID_ARGUMENT"),
                           (CopyImagesParameters("Nowhere", [ref], TWO), "INVALID_ARGUMENT"),
                           (CopyImagesParameters(ONE, [ref] * 11, TWO), "INVALID_ARGUMENT"),
                           (CopyImagesParameters(ONE, [ref, "img-nosuchimag"], TWO), "NOT_FOUND")):
        resp = jd.send(CopyImagesRequest(params))
        assert resp.error is not None and resp.error.status == status, resp.error
    with server.client("demo") as http:     # an image with no data yet: not ready
        queued = http.post("/v2/images", json={"name": f"jd-queued-{uuid.uuid4().hex[:6]}", "disk_format": "raw",
                                               "container_format": "bare"}).json()
    queued_ref = {i["name"]: i["imageId"] for i in jd.send(DescribeImagesRequest(
        _private_params(ONE))).result["images"]}[queued["name"]]
    resp = jd.send(CopyImagesRequest(CopyImagesParameters(ONE, [ref, queued_ref], TWO)))
    assert resp.error is not None and resp.error.status == "FAILED_PRECONDITION", resp.error
    server.admin_cli("quota", "set", "--project", "demo", "--bytes", "1")
    try:
        resp = jd.send(CopyImagesRequest(CopyImagesParameters(ONE, [ref], TWO)))
        assert resp.error is not None and resp.error.status == "QUOTA_EXCEEDED", resp.error
    finally:
        server.admin_cli("quota", "set", "--project", "demo", "--bytes", "-1")
    assert jd.send(DescribeImagesRequest(private)).result["totalCount"] == before
    assert files_in(server.data_dir / f"images-{TWO}") == stored


def _private_params(region: str) -> DescribeImagesParameters:
    params = DescribeImagesParameters(region)
    params.setImageSource("private")
    params.setPageSize(100)
    return params


def test_named_stores_serve_their_region(tmp_path_factory, database_factory):
    """VMIMAGE_STORES with `name@REGION`: each region's Glance endpoint offers its own stores
    (and the read-only web store), its data goes there, another region's store is refused."""
    where = tmp_path_factory.mktemp("named-stores")
    srv = start_server(where, database_factory(), VMIMAGE_REGIONS="East,West",
                       VMIMAGE_STORES=f"e1=file:{where}/e1,w1@West=file:{where}/w1,w2@West=file:{where}/w2")
    try:
        token = {"X-Auth-Token": srv.token("demo")}
        with httpx.Client(base_url=srv.url, headers=token) as east, \
                httpx.Client(base_url=f"{srv.url}/region/West", headers=token) as west:
            assert [(s["id"], s.get("default")) for s in east.get("/v2/info/stores").json()["stores"]] \
                == [("e1", "true"), ("web", None)]
            assert [(s["id"], s.get("default")) for s in west.get("/v2/info/stores").json()["stores"]] \
                == [("w1", "true"), ("w2", None), ("web", None)]
            made = west.post("/v2/images", json={"name": "w", "disk_format": "raw", "container_format": "bare"})
            assert made.headers["OpenStack-image-store-ids"] == "w1,w2"
            image_id = made.json()["id"]
            refused = west.put(f"/v2/images/{image_id}/file", content=b"w" * 4096,
                               headers={**OCTET, "X-Image-Meta-Store": "e1"})
            assert refused.status_code == 400 and west.get(f"/v2/images/{image_id}").json()["status"] == "queued"
            assert west.put(f"/v2/images/{image_id}/file", content=b"w" * 4096,
                            headers={**OCTET, "X-Image-Meta-Store": "w2"}).status_code == 204
            assert west.get(f"/v2/images/{image_id}").json()["stores"] == "w2"
            assert files_in(where / "w2") == [image_id] and files_in(where / "e1") == []
            other = west.post("/v2/images", json={"name": "w-default", "disk_format": "raw",
                                                  "container_format": "bare"}).json()["id"]
            assert west.put(f"/v2/images/{other}/file", content=b"v" * 4096, headers=OCTET).status_code == 204
            assert files_in(where / "w1") == [other]
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
