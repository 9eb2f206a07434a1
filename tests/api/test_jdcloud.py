"""The JD Cloud face driven by the official SDK (jdcloud-sdk) against a real server process."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import get_default_logger
from jdcloud_sdk.core.signer import Signer
from jdcloud_sdk.services.common.models.Filter import Filter
from jdcloud_sdk.services.disk.models.DiskSpec import DiskSpec
from jdcloud_sdk.services.vm.apis.CopyImagesRequest import CopyImagesParameters, CopyImagesRequest
from jdcloud_sdk.services.vm.apis.CreateImageFromSnapshotsRequest import (CreateImageFromSnapshotsParameters,
                                                                          CreateImageFromSnapshotsRequest)
from jdcloud_sdk.services.vm.apis.CreateImageRequest import CreateImageParameters, CreateImageRequest
from jdcloud_sdk.services.vm.apis.DeleteImageRequest import DeleteImageParameters, DeleteImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImageConstraintsRequest import (DescribeImageConstraintsParameters,
                                                                          DescribeImageConstraintsRequest)
from jdcloud_sdk.services.vm.apis.DescribeImageMembersRequest import (DescribeImageMembersParameters,
                                                                      DescribeImageMembersRequest)
from jdcloud_sdk.services.vm.apis.DescribeImageRequest import DescribeImageParameters, DescribeImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest
from jdcloud_sdk.services.vm.apis.DescribeQuotasRequest import DescribeQuotasParameters, DescribeQuotasRequest
from jdcloud_sdk.services.vm.apis.ModifyImageAttributeRequest import (ModifyImageAttributeParameters,
                                                                      ModifyImageAttributeRequest)
from jdcloud_sdk.services.vm.apis.ReleaseImageRequest import ReleaseImageParameters, ReleaseImageRequest
from jdcloud_sdk.services.vm.apis.ShareImageRequest import ShareImageParameters, ShareImageRequest
from jdcloud_sdk.services.vm.apis.UnReleaseImageRequest import UnReleaseImageParameters, UnReleaseImageRequest
from jdcloud_sdk.services.vm.apis.UnShareImageRequest import UnShareImageParameters, UnShareImageRequest
from jdcloud_sdk.services.vm.client.VmClient import VmClient
from jdcloud_sdk.services.vm.models.CloudDiskSpec import CloudDiskSpec
from jdcloud_sdk.services.vm.models.InstanceDiskAttachmentSpec import InstanceDiskAttachmentSpec

from tests.conftest import reaped

V1 = "/vmimage/v1"
REGION = "cn-north-1"
OCTET = {"Content-Type": "application/octet-stream"}


def access_key(server, persona: str) -> dict:
    return json.loads(server.admin_cli("access-key", "create", "--user", persona))


def vm_client(server, key: dict, secret: str | None = None) -> VmClient:
    return VmClient(Credential(key["access_key"], secret or key["secret_key"]),
                    Config(server.url.removeprefix("http://"), scheme="http", timeout=60))


def disk(device: str, no_device: bool | None = None, **spec) -> InstanceDiskAttachmentSpec:
    cloud = DiskSpec(az="cn-north-1a", name="d", diskType=spec.pop("diskType", None),
                     diskSizeGB=spec.pop("diskSizeGB", None), **spec) if spec else None
    return InstanceDiskAttachmentSpec(diskCategory="cloud" if cloud else None, cloudDiskSpec=cloud,
                                      deviceName=device, noDevice=no_device)


def create_image(client, instance_id: str, name: str, disks=None):
    params = CreateImageParameters(REGION, instance_id, name)
    params.setDescription("from the SDK")
    if disks is not None:
        params.setDataDisks(disks)
    return client.send(CreateImageRequest(params))


def describe(client, image_id: str):
    return client.send(DescribeImageRequest(DescribeImageParameters(REGION, image_id)))


def wait_ready(client, image_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = describe(client, image_id)
        assert resp.error is None, resp.error.message
        image = resp.result["image"]
        if image["status"] in ("ready", "error"):
            return image
        time.sleep(0.3)
    raise AssertionError(f"{image_id} never became ready")


def error_of(resp) -> tuple[int, str, str]:
    assert resp.error is not None
    return resp.error.code, resp.error.status, resp.error.message


@pytest.fixture(scope="module")
def keys(server):
    return {p: access_key(server, p) for p in ("demo", "alt")}


@pytest.fixture(scope="module")
def demo(server, keys):
    return vm_client(server, keys["demo"])


@pytest.fixture(scope="module")
def machine(server, images_dir):
    """A stopped server (base image on vda) with two cloud data disks of 2 GB, and a snapshot
    of its system disk."""
    with server.client("demo") as http:
        http.timeout = 120
        image = http.post("/v2/images", json={"name": "jd-base", "disk_format": "qcow2",
                                              "container_format": "bare"}).json()
        assert http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers=OCTET).status_code == 204
        srv = http.post(f"{V1}/servers", json={
            "name": "jd-machine", "image_id": image["id"], "start": False,
            "data_disks": [{"device": "vdb", "size_gb": 30}, {"device": "vdc", "size_gb": 30}]}).json()["server"]
        snap = http.post(f"{V1}/snapshots", json={"volume_id": srv["system_disk"]["id"]}).json()["snapshot"]
    return {"server": srv, "snapshot": snap, "base_image": image["id"]}


def raw_head(path: Path, out: Path, length: int) -> bytes:
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(out)], check=True)
    with out.open("rb") as f:
        return f.read(length)


def test_create_image_excludes_resizes_and_inserts_from_a_snapshot(server, demo, machine, images_dir, tmp_path):
    resp = create_image(demo, machine["server"]["id"], "seed.image-1", [
        disk("vdb", no_device=True),
        disk("vdc", diskSizeGB=40),
        disk("vdd", snapshotId=machine["snapshot"]["id"], diskType="ssd.io1", diskSizeGB=40, iops=500),
    ])
    assert resp.error is None, resp.error.message
    image_id = resp.result["imageId"]
    assert image_id.startswith("img-") and len(image_id) == 14 and image_id[4:].isalnum()
    assert resp.request_id and len(resp.request_id) == 32
    image = wait_ready(demo, image_id)
    assert image["status"] == "ready" and image["progress"] == 100
    assert image["name"] == "seed.image-1" and image["desc"] == "from the SDK"
    assert image["instanceId"] == machine["server"]["id"] and image["imageSource"] == "private"
    assert [d["deviceName"] for d in image["dataDisks"]] == ["vdc", "vdd"]
    vdc, vdd = (d["cloudDisk"] for d in image["dataDisks"])
    assert vdc["diskSizeGB"] == 40
    assert (vdd["diskSizeGB"], vdd["diskType"], vdd["iops"]) == (40, "ssd.io1", 500)

    with server.client("demo") as http:   # each disk is an image of the project, seen through Glance
        glance = {i["name"]: i for i in http.get("/v2/images", params={"limit": 1000}).json()["images"]}
        assert {"seed.image-1", "seed.image-1-vdc", "seed.image-1-vdd"} <= set(glance)
        assert "seed.image-1-vdb" not in glance
        assert glance["seed.image-1-vdc"]["virtual_size"] == 40 << 30
        assert glance["seed.image-1-vdd"]["virtual_size"] == 40 << 30
        data = http.get(f"/v2/images/{glance['seed.image-1-vdd']['id']}/file", timeout=120).content
    (tmp_path / "vdd.qcow2").write_bytes(data)
    expected = raw_head(images_dir / "disk.qcow2", tmp_path / "base.raw", 64 << 20)
    assert raw_head(tmp_path / "vdd.qcow2", tmp_path / "vdd.raw", 64 << 20) == expected


def test_omitted_data_disks_take_every_cloud_data_disk(demo, machine):
    resp = create_image(demo, machine["server"]["id"], "all-disks")
    assert resp.error is None, resp.error.message
    image = wait_ready(demo, resp.result["imageId"])
    assert [(d["deviceName"], d["cloudDisk"]["diskSizeGB"]) for d in image["dataDisks"]] == [("vdb", 30), ("vdc", 30)]


def test_describe_images_by_ids_filters_and_pages(demo, machine):
    made = []
    for name in ("list-alpha", "list-beta"):
        resp = create_image(demo, machine["server"]["id"], name, [disk("vdb", no_device=True),
                                                                   disk("vdc", no_device=True)])
        assert resp.error is None, resp.error.message
        made.append(resp.result["imageId"])
        wait_ready(demo, made[-1])
    params = DescribeImagesParameters(REGION)
    params.setIds(made)
    resp = demo.send(DescribeImagesRequest(params))
    assert resp.error is None
    assert sorted(i["imageId"] for i in resp.result["images"]) == sorted(made)
    assert resp.result["totalCount"] == 2

    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    params.setImageName("ALPHA")
    params.setStatus("ready")
    resp = demo.send(DescribeImagesRequest(params))
    assert [i["imageId"] for i in resp.result["images"]] == [made[0]]

    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    params.setPageSize(10)
    params.setPageNumber(1)
    everything = demo.send(DescribeImagesRequest(params)).result
    assert everything["totalCount"] >= 2 and len(everything["images"]) == min(10, everything["totalCount"])
    params.setPageNumber(99)
    beyond = demo.send(DescribeImagesRequest(params)).result
    assert beyond["images"] == [] and beyond["totalCount"] == everything["totalCount"]

    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    params.setInstanceIds([machine["server"]["id"]])
    params.setPlatform("Other Linux")
    params.setPageSize(100)
    by_instance = demo.send(DescribeImagesRequest(params)).result["images"]
    assert set(made) <= {i["imageId"] for i in by_instance}
    assert all(i["instanceId"] == machine["server"]["id"] for i in by_instance)
    params.setInstanceIds(["i-other"])
    assert demo.send(DescribeImagesRequest(params)).result["totalCount"] == 0

    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    params.setStatus("error")
    assert demo.send(DescribeImagesRequest(params)).result["totalCount"] == 0


def test_modify_share_constraints_quotas_and_delete(server, demo, keys, machine):
    resp = create_image(demo, machine["server"]["id"], "to-modify", [disk("vdb", no_device=True)])
    image_id = resp.result["imageId"]
    wait_ready(demo, image_id)
    params = ModifyImageAttributeParameters(REGION, image_id)
    params.setName("modified")
    params.setDescription("new words")
    resp = demo.send(ModifyImageAttributeRequest(params))
    assert resp.error is None and resp.request_id
    image = describe(demo, image_id).result["image"]
    assert (image["name"], image["desc"]) == ("modified", "new words")

    resp = demo.send(DescribeImageConstraintsRequest(DescribeImageConstraintsParameters(REGION, image_id)))
    assert resp.result["imageConstraints"]["imageId"] == image_id

    resp = demo.send(DescribeQuotasRequest(DescribeQuotasParameters(REGION)))
    (quota,) = resp.result["quotas"]
    assert quota["resourceType"] == "image" and quota["used"] >= 2

    alt = vm_client(server, keys["alt"])
    assert error_of(describe(alt, image_id))[:2] == (404, "NOT_FOUND")
    params = ShareImageParameters(REGION, image_id)
    params.setPins([keys["alt"]["project_id"]])
    assert demo.send(ShareImageRequest(params)).error is None
    shared = describe(alt, image_id).result["image"]
    assert shared["imageSource"] == "shared" and shared["launchPermission"] == "specifiedUsers"
    assert error_of(alt.send(DeleteImageRequest(DeleteImageParameters(REGION, image_id))))[0] == 403
    members = demo.send(DescribeImageMembersRequest(DescribeImageMembersParameters(REGION, image_id))).result
    assert members["pins"] == [keys["alt"]["project_id"]]
    params = DescribeQuotasParameters(REGION)
    params.setFilters([Filter("resourceTypes", ["image", "imageShare"])])
    params.setImageId(image_id)
    quotas = {q["resourceType"]: q for q in demo.send(DescribeQuotasRequest(params)).result["quotas"]}
    assert quotas["imageShare"]["used"] == 1 and quotas["imageShare"]["limit"] == 128
    assert quotas["image"]["used"] >= 2
    params.setImageId(None)
    assert error_of(demo.send(DescribeQuotasRequest(params)))[:2] == (400, "INVALID_ARGUMENT")
    params = UnShareImageParameters(REGION, image_id)
    params.setPins(["alt"])          # a pin may be the project's name
    assert demo.send(UnShareImageRequest(params)).error is None
    assert error_of(describe(alt, image_id))[:2] == (404, "NOT_FOUND")

    # release: a community image every project sees (and no longer a share); unrelease: back
    assert error_of(alt.send(ReleaseImageRequest(ReleaseImageParameters(REGION, image_id))))[0] in (403, 404)
    assert demo.send(ReleaseImageRequest(ReleaseImageParameters(REGION, image_id))).error is None
    released = describe(alt, image_id).result["image"]
    assert (released["imageSource"], released["launchPermission"]) == ("community", "all")
    params = DescribeImagesParameters(REGION)
    params.setImageSource("community")
    assert image_id in [i["imageId"] for i in alt.send(DescribeImagesRequest(params)).result["images"]]
    assert demo.send(UnReleaseImageRequest(UnReleaseImageParameters(REGION, image_id))).error is None
    assert error_of(describe(alt, image_id))[:2] == (404, "NOT_FOUND")
    assert describe(demo, image_id).result["image"]["launchPermission"] == "ownerOnly"

    resp = demo.send(DeleteImageRequest(DeleteImageParameters(REGION, image_id)))
    assert resp.error is None and resp.request_id
    assert error_of(describe(demo, image_id)) == (404, "NOT_FOUND", f"Image '{image_id}' not found")
    with server.client("demo") as http:
        names = {i["name"] for i in http.get("/v2/images", params={"limit": 1000}).json()["images"]}
    assert "modified" not in names and "modified-vdc" not in names


def test_copy_images_and_an_image_from_snapshots(server, demo, machine):
    resp = create_image(demo, machine["server"]["id"], "to-copy", [disk("vdb", no_device=True)])
    source = resp.result["imageId"]
    original = wait_ready(demo, source)
    params = CopyImagesParameters(REGION, [source], REGION)
    params.setName("the-copy")
    resp = demo.send(CopyImagesRequest(params))
    assert resp.error is None, resp.error.message
    ((pair),) = resp.result["copyImages"]
    assert pair["sourceImageId"] == source and pair["destinationImageId"] != source
    copy = wait_ready(demo, pair["destinationImageId"])
    assert copy["name"] == "the-copy" and copy["desc"] == original["desc"]
    assert [(d["deviceName"], d["cloudDisk"]["diskSizeGB"]) for d in copy["dataDisks"]] == [("vdc", 30)]
    assert copy["sizeMB"] == original["sizeMB"]
    params = CopyImagesParameters(REGION, [source], "cn-south-9")
    assert error_of(demo.send(CopyImagesRequest(params)))[:2] == (400, "INVALID_ARGUMENT")

    params = CreateImageFromSnapshotsParameters(REGION, "from-snapshots", "Ubuntu", "x86_64", "bios")
    params.setCloudDisks([CloudDiskSpec(snapshotId=machine["snapshot"]["id"], deviceName="vda"),
                          CloudDiskSpec(snapshotId=machine["snapshot"]["id"], deviceName="vdb", diskSizeGB=20)])
    resp = demo.send(CreateImageFromSnapshotsRequest(params))
    assert resp.error is None, resp.error.message
    image = wait_ready(demo, resp.result["imageId"])
    assert image["systemDiskSizeGB"] == machine["snapshot"]["size_gb"]
    assert [(d["deviceName"], d["cloudDisk"]["diskSizeGB"]) for d in image["dataDisks"]] == [("vdb", 20)]


def test_a_failed_image_shows_error_until_deleted(server, demo, machine, images_dir):
    """A disk that cannot be read fails the job: the image stays `error` without data (its
    disks `killed` through Glance), the instance is free again, and DeleteImage removes it."""
    with server.client("demo") as http:
        srv = http.post(f"{V1}/servers", json={"name": "jd-broken", "image_id": machine["base_image"],
                                               "start": False, "data_disks": [{"device": "vdb", "size_gb": 1}]}
                        ).json()["server"]
    volume_file = server.data_dir / "disks" / "volumes" / f"{srv['data_disks'][0]['id']}.qcow2"
    volume_file.write_bytes(b"not a qcow2 at all" * 4096)      # what a broken volume looks like
    resp = create_image(demo, srv["id"], "doomed")
    assert resp.error is None, resp.error.message
    image = wait_ready(demo, resp.result["imageId"])
    assert image["status"] == "error" and image["progress"] < 100
    with server.client("demo") as http:
        doomed = [i for i in http.get("/v2/images", params={"limit": 1000}).json()["images"]
                  if (i["name"] or "").startswith("doomed")]
        assert len(doomed) == 2 and {(i["status"], i["size"]) for i in doomed} == {("killed", None)}
        assert http.get(f"{V1}/servers/{srv['id']}").json()["server"]["task"] is None
    reaped(lambda: not [f for f in server.store_dir.rglob("*") if f.is_file() and f.name in {i["id"] for i in doomed}])
    assert demo.send(DeleteImageRequest(DeleteImageParameters(REGION, resp.result["imageId"]))).error is None
    assert error_of(describe(demo, resp.result["imageId"]))[:2] == (404, "NOT_FOUND")
    with server.client("demo") as http:
        assert all(http.get(f"/v2/images/{i['id']}").status_code == 404 for i in doomed)


@pytest.mark.parametrize("disks,expected", [
    ([disk("vdb", diskSizeGB=40), disk("vdb", diskSizeGB=50)], (400, "DUPLICATE", "Duplicate deviceName")),
    ([disk("vdb", no_device=True), disk("vdb", no_device=True)], (400, "DUPLICATE", "Duplicate deviceName")),
    ([disk("vdb", no_device=True), disk("vdb", diskType="ssd.gp1", diskSizeGB=40),
      disk("vdb", diskType="ssd.gp1", diskSizeGB=50)], (400, "DUPLICATE", "Duplicate deviceName")),
    ([disk("vde", no_device=True), disk("vde", diskType="ssd.gp1", diskSizeGB=40)],
     (404, "NOT_FOUND", "No disk vde to exclude")),
    # the page: data disks are cloud disks only; vmimage encrypts nothing, so an encrypted disk is refused
    ([InstanceDiskAttachmentSpec(diskCategory="local", deviceName="vde",
                                 cloudDiskSpec=DiskSpec(az="cn-north-1a", name="d", diskType="ssd.gp1",
                                                        diskSizeGB=40))],
     (400, "INVALID_ARGUMENT", "Parameter dataDisks.diskCategory must be cloud: data disks are cloud disks only")),
    ([disk("vde", diskType="ssd.gp1", diskSizeGB=40, encrypt=True)],
     (400, "INVALID_ARGUMENT", "Disk vde: encrypted disks are not supported")),
    ([disk("vdbn", diskType="ssd.gp1", diskSizeGB=40)],
     (400, "INVALID_ARGUMENT", "Invalid data disk device 'vdbn': expected vdb to vdbm")),
    ([disk("vdc", diskSizeGB=20)],
     (400, "OUT_OF_RANGE", "Device 'vdc' size can only be larger than the original size")),
    ([disk("vde", diskSizeGB=20)], (400, "INVALID_ARGUMENT", "Parameter DataDisks.CloudDiskSpec.DiskType missing")),
    ([disk("vde", diskType="ssd.gp1")], (400, "OUT_OF_RANGE", "DataDisks.CloudDiskSpec.DiskSizeGB out of range")),
    ([disk("vde", diskType="ssd.gp1", diskSizeGB=25)],      # JD sizes go in steps of 10 GB
     (400, "OUT_OF_RANGE", "DataDisks.CloudDiskSpec.DiskSizeGB out of range")),
    ([disk("vdc", diskSizeGB=16010)], (400, "OUT_OF_RANGE", "DataDisks.CloudDiskSpec.DiskSizeGB out of range")),
    ([disk("vde", diskType="ssd.io1", diskSizeGB=40, iops=2005)],
     (400, "OUT_OF_RANGE", "DataDisks.CloudDiskSpec.Iops out of range.")),
    ([disk("vde", diskType="ssd.io1", diskSizeGB=40, iops=2010)],
     (400, "OUT_OF_RANGE", "DataDisks.CloudDiskSpec.Iops out of range.")),
    ([disk("vde", snapshotId="snap-missing")], (404, "NOT_FOUND", "Snapshot 'snap-missing' not found")),
])
def test_create_image_errors_change_nothing(server, demo, machine, disks, expected):
    with server.client("demo") as http:
        before = len(http.get("/v2/images", params={"limit": 1000}).json()["images"])
        assert error_of(create_image(demo, machine["server"]["id"], "refused", disks)) == expected
        assert len(http.get("/v2/images", params={"limit": 1000}).json()["images"]) == before


def test_a_device_replaced_in_the_same_data_disks_carries_the_snapshots_bytes(server, demo, machine, images_dir,
                                                                              tmp_path):
    """Seed 004: to replace a device, exclude it and name it again with new attributes; the
    new vdb is made from the snapshot of the system disk. autoDelete is kept as asked (vdc:
    a cloud disk, which stays when its server goes, by default), vda is ignored as the page
    says, and devices go up to vdbm."""
    replaced = InstanceDiskAttachmentSpec(
        autoDelete=True, deviceName="vdb",
        cloudDiskSpec=DiskSpec(az="cn-north-1a", name="d", diskType="ssd.gp1", diskSizeGB=40,
                               snapshotId=machine["snapshot"]["id"]))
    resp = create_image(demo, machine["server"]["id"], "replaced", [
        disk("vdb", no_device=True), replaced, disk("vda", diskType="ssd.gp1", diskSizeGB=100),
        disk("vdbm", diskType="hdd.std1", diskSizeGB=20), disk("vdaa", diskType="ssd.gp1", diskSizeGB=20)])
    assert resp.error is None, resp.error.message
    image = wait_ready(demo, resp.result["imageId"])
    assert image["status"] == "ready"
    assert [d["deviceName"] for d in image["dataDisks"]] == ["vdb", "vdc", "vdaa", "vdbm"]
    assert [d["autoDelete"] for d in image["dataDisks"]] == [True, False, False, False]
    assert image["systemDisk"]["autoDelete"] is True and image["systemDiskSizeGB"] != 100
    assert image["loginName"] == "demo" and image["chargeInfo"] == {"serviceCode": None, "formula": None}
    with server.client("demo") as http:
        (vdb,) = [i for i in http.get("/v2/images", params={"limit": 1000}).json()["images"]
                  if i["name"] == "replaced-vdb"]
        data = http.get(f"/v2/images/{vdb['id']}/file", timeout=120).content
    (tmp_path / "vdb.qcow2").write_bytes(data)
    expected = raw_head(images_dir / "disk.qcow2", tmp_path / "base.raw", 64 << 20)
    assert raw_head(tmp_path / "vdb.qcow2", tmp_path / "vdb.raw", 64 << 20) == expected


def test_a_busy_instance_and_a_busy_disk_answer_as_the_page_says(server, demo, machine):
    with server.client("demo") as http:
        srv = http.post(f"{V1}/servers", json={"name": "jd-busy", "image_id": machine["base_image"], "start": False,
                                               "data_disks": [{"device": "vdb", "size_gb": 20}]}).json()["server"]
        vdb = srv["data_disks"][0]["id"]
        job = http.post(f"{V1}/volumes/{vdb}/images", json={"name": "busy-vdb"}).json()["job"]
        code, status, message = error_of(create_image(demo, srv["id"], "busy-disk"))
        assert (code, status, message) == (400, "FAILED_PRECONDITION", f"Disk '{vdb}' busy in '{job['id']}'")
        http.get(f"{V1}/jobs/{job['id']}")
        while http.get(f"{V1}/jobs/{job['id']}").json()["job"]["status"] not in ("SUCCESS", "FAIL"):
            time.sleep(0.2)
    first = create_image(demo, srv["id"], "busy-first")
    assert first.error is None, first.error.message
    code, status, message = error_of(create_image(demo, srv["id"], "busy-second"))
    assert (code, status) == (400, "FAILED_PRECONDITION") and message.startswith("Conflict with underlay task ")
    assert wait_ready(demo, first.result["imageId"])["status"] == "ready"


def test_the_native_api_takes_provisioned_iops(server):
    with server.client("demo") as http:
        vol = http.post(f"{V1}/volumes", json={"size_gb": 40, "type": "ssd.io1", "iops": 500})
        assert vol.status_code == 201 and vol.json()["volume"]["iops"] == 500
        http.delete(f"{V1}/volumes/{vol.json()['volume']['id']}")
        bad = http.post(f"{V1}/volumes", json={"size_gb": 40, "type": "ssd.io1", "iops": 2010})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "out_of_range"


def test_unknown_instance_region_and_image(server, demo):
    assert error_of(create_image(demo, "i-nothere", "nope")) == (404, "NOT_FOUND", "Instance 'i-nothere' not found.")
    resp = demo.send(DescribeImageRequest(DescribeImageParameters("cn-south-9", "img-abcdefghij")))
    assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(describe(demo, "img-abcdefghij")) == (404, "NOT_FOUND", "Image 'img-abcdefghij' not found")
    assert error_of(create_image(demo, "i-nothere", "x"))[:2] == (400, "INVALID_ARGUMENT")


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed")
def test_a_running_local_disk_instance_must_be_stopped(server, demo, machine):
    with server.client("demo") as http:
        http.timeout = 120
        srv = http.post(f"{V1}/servers", json={"name": "jd-running", "image_id": machine["base_image"]}).json()
        try:
            assert srv["server"]["status"] == "running"
            assert error_of(create_image(demo, srv["server"]["id"], "running")) == (
                400, "FAILED_PRECONDITION", "Please stop the instance first")
        finally:
            http.delete(f"{V1}/servers/{srv['server']['id']}")


def test_image_quota(server, keys, images_dir):
    alt = vm_client(server, keys["alt"])
    with server.client("alt") as http:
        http.timeout = 120
        image = http.post("/v2/images", json={"name": "alt-base", "disk_format": "qcow2",
                                              "container_format": "bare"}).json()
        http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(), headers=OCTET)
        srv = http.post(f"{V1}/servers", json={"name": "alt-machine", "image_id": image["id"],
                                               "start": False}).json()["server"]
    server.admin_cli("quota", "set", "--project", keys["alt"]["project_id"], "--images", "1")
    try:
        assert error_of(create_image(alt, srv["id"], "over")) == (429, "QUOTA_EXCEEDED", "Image quota limit exceeded")
    finally:
        server.admin_cli("quota", "set", "--project", keys["alt"]["project_id"], "--images", "-1")


def test_projects_are_isolated(server, demo, keys, machine):
    alt = vm_client(server, keys["alt"])
    assert error_of(create_image(alt, machine["server"]["id"], "theft"))[:2] == (404, "NOT_FOUND")
    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    mine = {i["imageId"] for i in demo.send(DescribeImagesRequest(params)).result["images"]}
    theirs = {i["imageId"] for i in (alt.send(DescribeImagesRequest(params)).result or {}).get("images", [])}
    assert mine and not mine & theirs
    params = DescribeImagesParameters(REGION)
    params.setIds(sorted(mine))
    assert (alt.send(DescribeImagesRequest(params)).result or {}).get("totalCount", 0) == 0


# --- signatures ---------------------------------------------------------------------------------

def signed(server, key: dict, method: str, path: str, body: str = "", secret: str | None = None,
           date: datetime | None = None) -> dict[str, str]:
    headers = {"User-Agent": "test", "Content-Type": "application/json"}
    if date is not None:
        headers["x-jdcloud-date"] = date.strftime("%Y%m%dT%H%M%SZ")
    Signer(get_default_logger()).sign(method=method, service="vm", region=REGION, uri=server.url + path,
                                      headers=headers, data=body,
                                      credential=Credential(key["access_key"], secret or key["secret_key"]),
                                      security_token="")
    return headers


def send(server, method: str, path: str, headers: dict, body: str = "") -> httpx.Response:
    return httpx.request(method, server.url + path, headers=headers, content=body.encode(), timeout=30)


def assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401
    body = resp.json()
    assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert body["requestId"] == resp.headers["x-jdcloud-request-id"]


def test_tampered_requests_are_unauthenticated(server, keys, demo):
    key = keys["demo"]
    path = f"/v1/regions/{REGION}/images?imageSource=private"
    ok = signed(server, key, "GET", path)
    resp = send(server, "GET", path, ok)
    assert resp.status_code == 200 and resp.headers["x-jdcloud-request-id"] == resp.json()["requestId"]
    assert_401(send(server, "GET", path, ok))                                       # the nonce replayed
    assert_401(send(server, "GET", path, signed(server, key, "GET", path, secret="wrong")))
    assert_401(send(server, "GET", path, signed(server, {**key, "access_key": "AKNOBODY"}, "GET", path)))
    stale = datetime.now(timezone.utc) - timedelta(minutes=20)
    assert_401(send(server, "GET", path, signed(server, key, "GET", path, date=stale)))
    post = f"/v1/regions/{REGION}/instances/i-x:createImage"
    body = json.dumps({"name": "abc"})
    headers = signed(server, key, "POST", post, body)
    headers.pop("x-jdcloud-content-sha256")
    assert_401(send(server, "POST", post, headers, body.replace("abc", "abd")))
    assert_401(send(server, "GET", path, {"Authorization": "JDCLOUD3-HMAC-SHA256 nonsense"}))
    assert_401(send(server, "GET", path, {}))
    # a wrong secret through the SDK: resp.error, never an exception
    resp = vm_client(server, key, secret="wrong").send(DescribeImageRequest(DescribeImageParameters(REGION, "img-x")))
    assert resp.error.code == 401 and resp.error.status == "UNAUTHENTICATED"


def test_replay_is_refused_by_another_process(server, keys, database_factory, tmp_path):
    """The nonce memory is the database's: a second process sharing it refuses a replay."""
    if server.env.get("VMIMAGE_DATABASE_URL") is None:
        pytest.skip("SQLite in a data dir is one process's; PostgreSQL shares it")
    from tests.conftest import start_server
    other = start_server(tmp_path, server.env["VMIMAGE_DATABASE_URL"], provision=False,
                         data_dir=server.data_dir)
    try:
        path = f"/v1/regions/{REGION}/images?imageSource=private&n={uuid.uuid4().hex}"
        headers = signed(server, keys["demo"], "GET", path)
        assert send(server, "GET", path, headers).status_code == 200
        assert_401(httpx.get(other.url + path, headers=headers))
    finally:
        other.stop()
