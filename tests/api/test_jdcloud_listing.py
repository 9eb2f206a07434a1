"""JD Cloud describeImages through the official SDK: every filter and the paging run in the
database, and agree with what the Image objects of the whole list show (a server of this
module's own, so every count is exact)."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest

from tests.api.test_huawei_ims import Key, glance_image
from tests.api.test_jdcloud import REGION, access_key, create_image, error_of, vm_client, wait_ready
from tests.conftest import start_server

V1 = "/vmimage/v1"
OCTET = {"Content-Type": "application/octet-stream"}
PAGE = 10           # the smallest page JD allows
PLAIN = 11          # images newer than the others: more than a page of them


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database_factory):
    server = start_server(tmp_path_factory.mktemp("jdlist"), database_factory())
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


def glance(srv, persona: str, name: str, data: bytes | None = None, **attrs) -> str:
    with srv.client(persona) as http:
        made = http.post("/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare",
                                             "visibility": "private", **attrs})
        assert made.status_code == 201, made.text
        image_id = made.json()["id"]
        if data is not None:
            assert http.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204
    return image_id


@pytest.fixture(scope="module")
def world(srv, images_dir):
    """demo's images of every kind JD shows (created first), then PLAIN newer plain ones;
    alt's shared, community and private images, and admin's public one."""
    demo = vm_client(srv, access_key(srv, "demo"))
    ims = Key(srv, "demo").client()
    with srv.client("demo") as http:
        http.timeout = 120
        base = http.post("/v2/images", json={"name": "base", "disk_format": "qcow2",
                                             "container_format": "bare"}).json()["id"]
        assert http.put(f"/v2/images/{base}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers=OCTET).status_code == 204
        machine = http.post(f"{V1}/servers", json={"name": "jd-list", "image_id": base,
                                                   "start": False}).json()["server"]
    resp = create_image(demo, machine["id"], "s-machine")
    assert resp.error is None, resp.error.message
    wait_ready(demo, resp.result["imageId"])
    glance(srv, "demo", "s-arm", architecture="arm64")
    glance(srv, "demo", "s-uefi", hw_firmware_type="uefi")
    glance_image(ims, "s-win", os_version="Windows Server 2019 Standard 64bit", container_format="bare")
    glance_image(ims, "s-ubuntu", os_version="Ubuntu 22.04 server 64bit", container_format="bare")
    glance(srv, "demo", "s-ready", data=b"\0" * 4096)
    deactivated = glance(srv, "demo", "s-deactivated", data=b"\1" * 4096)
    with srv.client("admin") as http:
        assert http.post(f"/v2/images/{deactivated}/actions/deactivate").status_code == 204
    glance(srv, "demo", "s-shared", visibility="shared")
    glance(srv, "demo", "s-community", visibility="community")
    alt_shared = glance(srv, "alt", "alt-shared", visibility="shared")
    with srv.client("alt") as http:
        assert http.post(f"/v2/images/{alt_shared}/members",
                         json={"member": srv.project_id("demo")}).status_code == 200
    glance(srv, "alt", "alt-community", visibility="community")
    glance(srv, "alt", "alt-private", visibility="private")
    glance(srv, "admin", "adm-public", visibility="public")
    time.sleep(1.1)          # creation times are in seconds: the plain ones are newer than all
    for n in range(PLAIN):
        glance(srv, "demo", f"plain-{n:02d}")
    return {"demo": demo, "server_id": machine["id"]}


def params(**filters) -> DescribeImagesParameters:
    p = DescribeImagesParameters(REGION)
    for key, value in filters.items():
        getattr(p, "set" + key[0].upper() + key[1:])(value)
    return p


def describe(client, **filters) -> dict:
    resp = client.send(DescribeImagesRequest(params(**filters)))
    assert resp.error is None, resp.error.message
    return resp.result


def every_page(client, **filters) -> list[dict]:
    """The pages of PAGE images, in order, up to the first empty one; totalCount on every
    page is the number of them all."""
    found, number = [], 1
    while True:
        result = describe(client, pageSize=PAGE, pageNumber=number, **filters)
        assert len(result["images"]) <= PAGE
        found.extend(result["images"])
        if not result["images"]:
            assert result["totalCount"] == len(found)
            return found
        assert result["totalCount"] >= len(found)
        number += 1


def names(images: list[dict]) -> list[str]:
    return [i["name"] for i in images]


def test_pages_are_cut_and_counted_in_the_database(world):
    demo = world["demo"]
    everything = describe(demo, imageSource="private", pageSize=100)
    mine = everything["images"]
    assert everything["totalCount"] == len(mine) == PLAIN + 10      # base, the machine, eight s-*
    assert not {"alt-shared", "alt-community", "alt-private", "adm-public"} & set(names(mine))
    first, second, third = (describe(demo, imageSource="private", pageSize=PAGE, pageNumber=n) for n in (1, 2, 3))
    assert [p["totalCount"] for p in (first, second, third)] == [len(mine)] * 3
    plain = {f"plain-{n:02d}" for n in range(PLAIN)}
    assert set(names(first["images"])) < plain and set(names(second["images"])) & plain   # newest first
    assert names(first["images"] + second["images"] + third["images"]) == names(mine)
    assert len(third["images"]) == len(mine) - 2 * PAGE
    beyond = describe(demo, imageSource="private", pageSize=PAGE, pageNumber=99)
    assert beyond["images"] == [] and beyond["totalCount"] == len(mine)
    assert every_page(demo, imageSource="private") == mine


@pytest.mark.parametrize("key,values", [
    ("platform", ["Windows Server", "Ubuntu", "Other Linux", "CentOS", "Windows"]),
    ("status", ["ready", "pending", "deactivated", "error", "deleting"]),
    ("architecture", ["x86_64", "arm64", "aarch64"]),
    ("bootMode", ["bios", "uefi"]),
    ("rootDeviceType", ["cloudDisk", "localDisk"]),
    ("launchPermission", ["ownerOnly", "specifiedUsers", "all", "nobody"]),
])
def test_each_filter_matches_what_the_images_show(world, key, values):
    """Filtered in the database, paged by PAGE: exactly the images of the whole list that
    show the value, in the same order, with their number as totalCount."""
    demo = world["demo"]
    mine = describe(demo, imageSource="private", pageSize=100)["images"]
    for value in values:
        expected = [i for i in mine if i[key] == value]
        assert every_page(demo, imageSource="private", **{key: value}) == expected, value


@pytest.mark.parametrize("filters,name", [
    ({"architecture": "arm64"}, "s-arm"), ({"bootMode": "uefi"}, "s-uefi"),
    ({"platform": "Windows Server"}, "s-win"), ({"platform": "Ubuntu"}, "s-ubuntu"),
    ({"status": "deactivated"}, "s-deactivated"), ({"launchPermission": "all"}, "s-community"),
])
def test_a_filter_matching_on_page_two_only_finds_it_on_page_one(world, filters, name):
    demo = world["demo"]
    unfiltered = names(describe(demo, imageSource="private", pageSize=PAGE, pageNumber=1)["images"])
    assert name not in unfiltered
    result = describe(demo, imageSource="private", pageSize=PAGE, pageNumber=1, **filters)
    assert (names(result["images"]), result["totalCount"]) == ([name], 1)
    assert describe(demo, imageSource="private", pageSize=PAGE, pageNumber=2, **filters) == {
        "images": [], "totalCount": 1}


def test_filters_combine_and_page(world):
    demo = world["demo"]
    mine = describe(demo, imageSource="private", pageSize=100)["images"]
    wanted = {"platform": "Other Linux", "status": "pending", "bootMode": "bios", "architecture": "x86_64",
              "launchPermission": "ownerOnly"}
    expected = [i for i in mine if all(i[k] == v for k, v in wanted.items())]
    assert len(expected) > PAGE            # the plain ones (and s-uefi, s-arm left out)
    assert every_page(demo, imageSource="private", **wanted) == expected
    named = describe(demo, imageSource="private", imageName="PLAIN-0", status="pending", pageSize=PAGE)
    assert named["totalCount"] == PAGE and len(named["images"]) == PAGE

    by_instance = describe(demo, imageSource="private", instanceIds=[world["server_id"]])
    assert names(by_instance["images"]) == ["s-machine"] and by_instance["totalCount"] == 1
    assert by_instance["images"][0]["instanceId"] == world["server_id"]
    assert describe(demo, imageSource="private", instanceIds=["i-other"])["totalCount"] == 0
    assert describe(demo, instanceIds=[world["server_id"]], ids=[by_instance["images"][0]["imageId"]],
                    status="ready")["totalCount"] == 1


def test_sources_relate_the_images_to_the_caller(world):
    demo = world["demo"]
    shared = describe(demo, imageSource="shared", pageSize=100)
    assert names(shared["images"]) == ["alt-shared"] and shared["totalCount"] == 1     # not demo's own shared one
    assert shared["images"][0]["imageSource"] == "shared"
    community = describe(demo, imageSource="community", pageSize=100)
    assert {i["name"]: i["imageSource"] for i in community["images"]} == {
        "alt-community": "community", "s-community": "private"}
    assert community["totalCount"] == 2
    assert describe(demo, imageSource="community", launchPermission="all")["totalCount"] == 2
    public = describe(demo, imageSource="public", pageSize=100)
    assert [(i["name"], i["imageSource"], i["launchPermission"]) for i in public["images"]] == [
        ("adm-public", "public", "all")]
    assert describe(demo, imageSource="thirdparty") == {"images": [], "totalCount": 0}


def test_paging_parameters_are_checked_as_before(world):
    demo = world["demo"]
    for bad in ({"pageNumber": 0}, {"pageSize": 9}, {"pageSize": 101}):
        resp = demo.send(DescribeImagesRequest(params(imageSource="private", **bad)))
        assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT"), bad
    resp = demo.send(DescribeImagesRequest(params(pageSize=10)))
    assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT")      # neither imageSource nor ids
    assert describe(demo, ids=[f"img-{uuid.uuid4().hex[:10]}"]) == {"images": [], "totalCount": 0}
