"""JD Cloud images:import, :exportImage and imageTasks through the official SDK, on a real
OpenStack Swift s3api with buckets granted to projects."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from jdcloud_sdk.services.vm.apis.DeleteImageRequest import DeleteImageParameters, DeleteImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImageRequest import DescribeImageParameters, DescribeImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest
from jdcloud_sdk.services.vm.apis.ExportImageRequest import ExportImageParameters, ExportImageRequest
from jdcloud_sdk.services.vm.apis.ImageTasksRequest import ImageTasksParameters, ImageTasksRequest
from jdcloud_sdk.services.vm.apis.ImportImageRequest import ImportImageParameters, ImportImageRequest

from huaweicloudsdkims.v2 import model as m

from tests.api.test_huawei_ims import Key
from tests.api.test_jdcloud import REGION, access_key, error_of, vm_client
from tests.conftest import start_server


@pytest.fixture(scope="module")
def jsrv(tmp_path_factory, database_factory, swift_s3):
    srv = start_server(tmp_path_factory.mktemp("jdbuckets"), database_factory(), **swift_s3.env)
    srv.s3 = swift_s3.client()
    srv.endpoint = swift_s3.endpoint
    srv.bucket, srv.other = f"jd-{uuid.uuid4().hex[:8]}", f"jd-other-{uuid.uuid4().hex[:8]}"
    for bucket in (srv.bucket, srv.other):
        srv.s3.create_bucket(Bucket=bucket)
    json.loads(srv.admin_cli("bucket", "grant", srv.bucket, "--project", "demo"))
    srv.demo = vm_client(srv, access_key(srv, "demo"))
    srv.alt = vm_client(srv, access_key(srv, "alt"))
    yield srv
    srv.stop()


def import_params(url: str, name: str, fmt: str = "qcow2") -> ImportImageParameters:
    params = ImportImageParameters(REGION, "x86_64", "linux", "Ubuntu", fmt, 40, url, name)
    params.setOsVersion("Ubuntu 22.04 server 64bit")
    params.setDescription("imported")
    return params


def task(client, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        params = ImageTasksParameters(REGION)
        params.setTaskIds([task_id])
        resp = client.send(ImageTasksRequest(params))
        assert resp.error is None, resp.error.message
        (found,) = resp.result["taskSet"]
        if found["taskStatus"] in ("finished", "failed"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def glance_image(srv, name: str) -> dict:
    with srv.client("demo") as http:
        (image,) = [i for i in http.get("/v2/images", params={"limit": 1000}).json()["images"] if i["name"] == name]
    return image


def test_import_to_ready_then_export(jsrv, images_dir):
    qcow2 = (images_dir / "disk.qcow2").read_bytes()
    jsrv.s3.put_object(Bucket=jsrv.bucket, Key="in/disk.qcow2", Body=qcow2)
    resp = jsrv.demo.send(ImportImageRequest(import_params(f"{jsrv.endpoint}/{jsrv.bucket}/in/disk.qcow2",
                                                           "imported-1")))
    assert resp.error is None, resp.error.message
    image_id, task_id = resp.result["imageId"], resp.result["importTaskId"]
    assert image_id.startswith("img-") and len(image_id) == 14
    jsrv.imported = image_id
    done = task(jsrv.demo, task_id)
    assert (done["taskStatus"], done["action"], done["imageId"]) == ("finished", "ImportImage", image_id)
    image = jsrv.demo.send(DescribeImageRequest(DescribeImageParameters(REGION, image_id))).result["image"]
    assert (image["status"], image["name"], image["platform"], image["osVersion"]) == (
        "ready", "imported-1", "Ubuntu", "Ubuntu 22.04 server 64bit")
    assert image["imported"] is True and image["systemDiskSizeGB"] == 40 and image["architecture"] == "x86_64"
    with jsrv.client("demo") as http:
        assert http.get(f"/v2/images/{glance_image(jsrv, 'imported-1')['id']}/file").content == qcow2

    params = ExportImageParameters(REGION, image_id, "any-role", f"s3://{jsrv.bucket}")
    params.setOssPrefix("exp/")
    resp = jsrv.demo.send(ExportImageRequest(params))
    assert resp.error is None, resp.error.message
    done = task(jsrv.demo, resp.result["exportTaskId"])
    assert (done["taskStatus"], done["action"]) == ("finished", "ExportImage")
    assert done["ossObject"].startswith("exp/")
    assert jsrv.s3.get_object(Bucket=jsrv.bucket, Key=done["ossObject"])["Body"].read() == qcow2

    params = ImageTasksParameters(REGION)
    params.setTaskAction("ExportImage")
    assert {t["action"] for t in jsrv.demo.send(ImageTasksRequest(params)).result["taskSet"]} == {"ExportImage"}


def test_import_with_a_jd_os_version_keeps_it_and_maps_it_to_the_catalogue(jsrv, images_dir):
    """JD's osVersion is the distribution's version, free text: shown back as given; Ubuntu
    22.04 is the catalogue's "Ubuntu 22.04 server 64bit", which Huawei IMS shows."""
    jsrv.s3.put_object(Bucket=jsrv.bucket, Key="in/ubuntu.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    url = f"{jsrv.endpoint}/{jsrv.bucket}/in/ubuntu.qcow2"

    def imported(platform: str, version: str, name: str) -> dict:
        params = ImportImageParameters(REGION, "x86_64", "linux", platform, "qcow2", 40, url, name)
        params.setOsVersion(version)
        resp = jsrv.demo.send(ImportImageRequest(params))
        assert resp.error is None, resp.error.message
        assert task(jsrv.demo, resp.result["importTaskId"])["taskStatus"] == "finished"
        return jsrv.demo.send(DescribeImageRequest(DescribeImageParameters(REGION, resp.result["imageId"]))).result[
            "image"]

    image = imported("Ubuntu", "22.04", "jammy")
    assert (image["status"], image["platform"], image["osVersion"], image["osType"]) == (
        "ready", "Ubuntu", "22.04", "linux")
    ims = Key(jsrv, "demo").client()
    (shown,) = ims.list_images(m.ListImagesRequest(name="jammy")).images
    assert (shown.os_version, shown.platform, shown.os_type, shown.os_bit) == (
        "Ubuntu 22.04 server 64bit", "Ubuntu", "Linux", "64")

    image = imported("Other Linux", "Alpine 3.19 (edge)", "own-distro")
    assert (image["platform"], image["osVersion"]) == ("Other Linux", "Alpine 3.19 (edge)")
    (shown,) = ims.list_images(m.ListImagesRequest(name="own-distro")).images
    assert shown.os_version is None      # no catalogue entry: IMS shows none rather than a wrong one


@pytest.mark.parametrize("platform,version,field", [
    ("Debian", "12", "platform"), ("Ubuntu", "x" * 65, "osVersion"), ("ubuntu", "22.04", "platform")])
def test_import_refuses_what_jd_does_not_list(jsrv, platform, version, field):
    params = ImportImageParameters(REGION, "x86_64", "linux", platform, "qcow2", 40,
                                   f"s3://{jsrv.bucket}/in/ubuntu.qcow2", "refused-os")
    params.setOsVersion(version)
    code, status, message = error_of(jsrv.demo.send(ImportImageRequest(params)))
    assert (code, status) == (400, "INVALID_ARGUMENT") and f"Parameter {field} " in message


def image_tasks(client, **filters) -> dict:
    params = ImageTasksParameters(REGION)
    for key, value in filters.items():
        getattr(params, "set" + key[0].upper() + key[1:])(value)
    resp = client.send(ImageTasksRequest(params))
    assert resp.error is None, resp.error.message
    return resp.result


def test_image_tasks_filter_and_page_in_the_database(jsrv):
    # Times are kept to the second: the exports below must be newer than the module's imports
    # (an import of the test before may have ended within this second).
    time.sleep(1.1)
    exports = []
    for n in range(12):
        params = ExportImageParameters(REGION, jsrv.imported, "any-role", f"s3://{jsrv.bucket}")
        params.setOssPrefix(f"pages/{n}/")
        resp = jsrv.demo.send(ExportImageRequest(params))
        assert resp.error is None, resp.error.message
        exports.append(resp.result["exportTaskId"])
    for task_id in exports:
        assert task(jsrv.demo, task_id)["taskStatus"] == "finished"

    whole = image_tasks(jsrv.demo, taskIds=exports, pageSize=100)
    assert whole["totalCount"] == 12 and {t["taskId"] for t in whole["taskSet"]} == set(exports)
    created = [t["createdTime"] for t in whole["taskSet"]]
    assert created == sorted(created, reverse=True)                  # newest first
    pages = [image_tasks(jsrv.demo, taskIds=exports, pageSize=5, pageNumber=n) for n in (1, 2, 3, 4)]
    assert [len(p["taskSet"]) for p in pages] == [5, 5, 2, 0] and {p["totalCount"] for p in pages} == {12}
    assert [t for p in pages for t in p["taskSet"]] == whole["taskSet"]

    assert image_tasks(jsrv.demo, taskIds=exports, taskAction="ExportImage")["totalCount"] == 12
    assert image_tasks(jsrv.demo, taskIds=exports, taskAction="ImportImage") == {"taskSet": [], "totalCount": 0}
    assert image_tasks(jsrv.demo, taskIds=exports, taskStatus="finished", pageSize=100) == whole
    for status in ("failed", "running", "bogus"):
        assert image_tasks(jsrv.demo, taskIds=exports, taskStatus=status)["totalCount"] == 0
    assert image_tasks(jsrv.alt, taskIds=exports)["totalCount"] == 0      # another project's

    # the import is older than a page of exports: filtered, it is on the first page
    everything = image_tasks(jsrv.demo, pageSize=100)["taskSet"]
    imports = [t for t in everything if t["action"] == "ImportImage"]
    assert imports and all(everything.index(t) >= 10 for t in imports)
    first = image_tasks(jsrv.demo, taskAction="ImportImage", pageSize=10)
    assert first == {"taskSet": imports, "totalCount": len(imports)}


def test_declared_format_is_checked_against_the_bytes(jsrv, images_dir):
    jsrv.s3.put_object(Bucket=jsrv.bucket, Key="in/really.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    resp = jsrv.demo.send(ImportImageRequest(import_params(f"s3://{jsrv.bucket}/in/really.qcow2", "liar", "vmdk")))
    assert resp.error is None, resp.error.message
    done = task(jsrv.demo, resp.result["importTaskId"])
    assert done["taskStatus"] == "failed" and done["errorInfo"]
    # the failed image stays, `error` and without data, until its owner deletes it
    image_id = resp.result["imageId"]
    assert done["imageId"] == image_id
    image = jsrv.demo.send(DescribeImageRequest(DescribeImageParameters(REGION, image_id))).result["image"]
    assert (image["status"], image["name"]) == ("error", "liar")
    failed = glance_image(jsrv, "liar")
    assert failed["status"] == "killed" and failed["size"] is None
    with jsrv.client("demo") as http:
        assert http.get(f"/v2/images/{failed['id']}/file").status_code in (204, 404)
    params = DescribeImagesParameters(REGION)
    params.setImageSource("private")
    params.setStatus("error")
    assert image_id in [i["imageId"] for i in jsrv.demo.send(DescribeImagesRequest(params)).result["images"]]
    assert jsrv.demo.send(DeleteImageRequest(DeleteImageParameters(REGION, image_id))).error is None
    resp = jsrv.demo.send(DescribeImageRequest(DescribeImageParameters(REGION, image_id)))
    assert error_of(resp)[:2] == (404, "NOT_FOUND")


def test_buckets_not_granted_are_refused_and_nothing_is_created(jsrv, images_dir):
    jsrv.s3.put_object(Bucket=jsrv.other, Key="in/disk.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    with jsrv.client("demo") as http:
        before = len(http.get("/v2/images").json()["images"])
        resp = jsrv.demo.send(ImportImageRequest(import_params(f"s3://{jsrv.other}/in/disk.qcow2", "nope")))
        assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT")
        assert jsrv.other in error_of(resp)[2]
        # another project's key cannot use demo's bucket either
        resp = jsrv.alt.send(ImportImageRequest(import_params(f"s3://{jsrv.bucket}/in/disk.qcow2", "theft")))
        assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT")
        assert len(http.get("/v2/images").json()["images"]) == before
    resp = jsrv.demo.send(ImportImageRequest(import_params("ftp://x/y", "bad-url")))
    assert error_of(resp)[:2] == (400, "INVALID_ARGUMENT")
    params = ExportImageParameters(REGION, jsrv.imported, "any-role", f"http://127.0.0.1:1/{jsrv.other}")
    assert error_of(jsrv.demo.send(ExportImageRequest(params)))[:2] == (400, "INVALID_ARGUMENT")
    assert "Contents" not in jsrv.s3.list_objects_v2(Bucket=jsrv.other, Prefix="exp")
