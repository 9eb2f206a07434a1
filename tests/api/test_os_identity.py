"""An image made from a server, a volume or a snapshot keeps the operating system of the image
its disk came from, and every face shows it in its own terms: JD (jdcloud-sdk), Huawei IMS
(huaweicloudsdkims), Glance (openstacksdk) and Aries (httpx)."""

from __future__ import annotations

import httpx
import pytest
from jdcloud_sdk.services.vm.apis.CreateImageFromSnapshotsRequest import (CreateImageFromSnapshotsParameters,
                                                                          CreateImageFromSnapshotsRequest)
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest
from jdcloud_sdk.services.vm.models.CloudDiskSpec import CloudDiskSpec

from tests.api.test_huawei_ims import Key, glance_image, m, wait_job
from tests.api.test_jdcloud import REGION, access_key, create_image, vm_client, wait_ready
from tests.api.test_servers_and_images import wait_job as wait_native_job
from tests.conftest import sdk_connect

V1 = "/vmimage/v1"
OCTET = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def centos(server, images_dir):
    """A CentOS 7.9 image (IMS's catalogue name, UEFI, x86_64) with data, a stopped server of
    it with a data disk, and a snapshot of that server's system disk."""
    ims = Key(server, "demo").client()
    made = glance_image(ims, "centos-7.9-base", os_version="CentOS 7.9 64bit", container_format="bare")
    with server.client("demo") as http:
        http.timeout = 120
        patched = http.patch(f"/v2/images/{made.id}", headers=PATCH, json=[
            {"op": "add", "path": "/hw_firmware_type", "value": "uefi"},
            {"op": "add", "path": "/architecture", "value": "x86_64"}])
        assert patched.status_code == 200, patched.text
        assert http.put(f"/v2/images/{made.id}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers=OCTET).status_code == 204
        srv = http.post(f"{V1}/servers", json={"name": "centos-machine", "image_id": made.id, "start": False,
                                               "data_disks": [{"device": "vdb", "size_gb": 20}]}).json()["server"]
        snap = http.post(f"{V1}/snapshots", json={"volume_id": srv["system_disk"]["id"]}).json()["snapshot"]
    return {"image_id": made.id, "server": srv, "snapshot": snap, "ims": ims,
            "jd": vm_client(server, access_key(server, "demo"))}


def glance_id(server, name: str) -> str:
    with server.client("demo") as http:
        (found,) = [i for i in http.get("/v2/images", params={"limit": 1000}).json()["images"] if i["name"] == name]
    return found["id"]


def test_an_image_from_an_instance_of_centos_shows_centos_79_everywhere(server, centos):
    jd = centos["jd"]
    resp = create_image(jd, centos["server"]["id"], "centos-from-instance")
    assert resp.error is None, resp.error.message
    image = wait_ready(jd, resp.result["imageId"])
    assert (image["status"], image["platform"], image["osVersion"], image["osType"]) == (
        "ready", "CentOS", "7.9", "linux")
    assert (image["architecture"], image["bootMode"]) == ("x86_64", "uefi")

    params = DescribeImagesParameters(REGION)      # JD's platform filter finds it
    params.setImageSource("private")
    params.setPlatform("CentOS")
    params.setInstanceIds([centos["server"]["id"]])
    assert [i["imageId"] for i in jd.send(DescribeImagesRequest(params)).result["images"]] == [image["imageId"]]
    params.setPlatform("Other Linux")
    assert jd.send(DescribeImagesRequest(params)).result["totalCount"] == 0

    ims = centos["ims"]                             # so does IMS's
    (shown,) = ims.list_images(m.ListImagesRequest(platform="CentOS", name="centos-from-instance")).images
    assert (shown.os_version, shown.platform, shown.os_type, shown.os_bit) == ("CentOS 7.9 64bit", "CentOS",
                                                                               "Linux", "64")
    assert ims.list_images(m.ListImagesRequest(platform="Ubuntu", name="centos-from-instance")).images == []
    # the data disk came from no image: it has no operating system
    (vdb,) = ims.list_images(m.ListImagesRequest(name="centos-from-instance-vdb")).images
    assert vdb.os_version is None

    conn = sdk_connect(server)                      # Glance shows the well-known properties
    try:
        glance = conn.image.get_image(shown.id)
        assert (glance.os_distro, glance.os_version, glance.architecture) == ("centos", "7.9", "x86_64")
        assert glance.properties["hw_firmware_type"] == "uefi"
    finally:
        conn.close()

    listed = httpx.get(f"{server.url}/aries/api/v1/image/list",      # and Aries its os_type and os_name
                       params={"os_type": "linux", "os_name": "centos"},
                       headers={"Authorization": f"Bearer {server.token('demo')}"}).json()
    assert "centos-from-instance" in {i["name"] for i in listed}


def test_ims_images_of_a_server_and_a_volume_inherit_too(server, centos):
    ims = centos["ims"]
    job = ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="centos-ims-server", instance_id=centos["server"]["id"]))).job_id
    assert wait_job(ims, job).status == "SUCCESS"
    with server.client("demo") as http:
        made = http.post(f"{V1}/volumes/{centos['server']['system_disk']['id']}/images",
                         json={"name": "centos-volume"}).json()["job"]
        assert wait_native_job(http, made["id"])["status"] == "SUCCESS"
    for name in ("centos-ims-server", "centos-volume"):
        (shown,) = ims.list_images(m.ListImagesRequest(name=name)).images
        assert (shown.os_version, shown.platform, shown.os_bit) == ("CentOS 7.9 64bit", "CentOS", "64"), name


def test_a_user_property_wins_over_the_inherited_one_in_glance(server, centos):
    with server.client("demo") as http:
        made = http.post(f"{V1}/volumes/{centos['server']['system_disk']['id']}/images",
                         json={"name": "centos-relabelled"}).json()["job"]
        assert wait_native_job(http, made["id"])["status"] == "SUCCESS"
        image_id = glance_id(server, "centos-relabelled")
        assert http.get(f"/v2/images/{image_id}").json()["os_version"] == "7.9"
        assert http.patch(f"/v2/images/{image_id}", headers=PATCH, json=[
            {"op": "add", "path": "/os_version", "value": "7.9.2009"}]).status_code == 200
        assert http.get(f"/v2/images/{image_id}").json()["os_version"] == "7.9.2009"
    conn = sdk_connect(server)      # openstacksdk replaces what it was shown (os_distro, from the OS)
    try:
        conn.image.update_image(image_id, os_distro="rocky")
        assert conn.image.get_image(image_id).os_distro == "rocky"
    finally:
        conn.close()


def test_an_image_from_snapshots_inherits_and_keeps_what_jd_asks(server, centos):
    jd = centos["jd"]
    snapshot = centos["snapshot"]["id"]

    def from_snapshots(name: str, platform: str, version: str | None) -> dict:
        params = CreateImageFromSnapshotsParameters(REGION, name, platform, "x86_64", "uefi")
        if version is not None:
            params.setOsVersion(version)
        params.setCloudDisks([CloudDiskSpec(snapshotId=snapshot, deviceName="vda")])
        resp = jd.send(CreateImageFromSnapshotsRequest(params))
        assert resp.error is None, resp.error.message
        return wait_ready(jd, resp.result["imageId"])

    same = from_snapshots("centos-snap", "CentOS", None)      # the snapshot's own OS
    assert (same["platform"], same["osVersion"], same["bootMode"]) == ("CentOS", "7.9", "uefi")
    other = from_snapshots("ubuntu-snap", "Ubuntu", "22.04")   # another one, asked for
    assert (other["platform"], other["osVersion"]) == ("Ubuntu", "22.04")
    (shown,) = centos["ims"].list_images(m.ListImagesRequest(name="ubuntu-snap")).images
    assert shown.os_version == "Ubuntu 22.04 server 64bit"
    plain = from_snapshots("other-snap", "Other Linux", None)
    assert (plain["platform"], plain["osVersion"]) == ("Other Linux", None)
