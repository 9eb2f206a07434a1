"""Huawei IMS in a two-region service (tests/api/test_regions.py's server): projects in a region
(`vmimage admin project create NAME --region R`), an access key acting in another project of
its user (X-Project-Id), and the three copy operations through huaweicloudsdkims's own methods,
their refusals in IMS's codes with nothing created."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import httpx
import pytest

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402

from tests.api.test_regions import ONE, TWO, files_in, payload, region_url, upload_image  # noqa: E402
from tests.conftest import reaped  # noqa: E402
from tests.api.test_regions import server  # noqa: E402,F401  (a server of this module's own, two regions)


class Key:
    def __init__(self, server, persona: str) -> None:
        made = json.loads(server.admin_cli("access-key", "create", "--user", persona))
        self.ak, self.sk, self.project = made["access_key"], made["secret_key"], made["project_id"]
        self.url = server.url

    def client(self, project: str | None = None) -> ImsClient:
        credentials = BasicCredentials(self.ak, self.sk, project or self.project)
        return ImsClient.new_builder().with_credentials(credentials).with_endpoints([self.url]).build()


@pytest.fixture(scope="module")
def demo_key(server) -> Key:
    return Key(server, "demo")


@pytest.fixture(scope="module")
def projects(server) -> dict[str, str]:
    return {p["name"]: p["id"] for p in json.loads(server.admin_cli("project", "list"))}


def wait_job(client: ImsClient, job_id: str, timeout: float = 180) -> m.ShowJobResponse:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.show_job(m.ShowJobRequest(job_id=job_id))
        if job.status in ("SUCCESS", "FAIL"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def error_of(call) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    return info.value


def ims_names(client: ImsClient) -> set[str]:
    return {i.name for i in client.list_images(m.ListImagesRequest()).images}


def test_an_access_key_acts_in_the_project_the_request_names(server, demo_key, projects):
    """demo's key (project demo, RegionOne) acts in demo-two (RegionTwo) when the request names
    it; a project demo holds no role in is refused in IMS's envelope."""
    two = upload_image(server, TWO, f"ims-two-{uuid.uuid4().hex[:6]}", b"t" * 4096)
    one = upload_image(server, ONE, f"ims-one-{uuid.uuid4().hex[:6]}", b"o" * 4096)
    in_two = ims_names(demo_key.client(projects["demo-two"]))
    in_one = ims_names(demo_key.client())
    # demo-two is another project: demo's images in RegionTwo are demo's, not demo-two's.
    assert one["name"] in in_one and two["name"] not in in_one
    assert one["name"] not in in_two
    err = error_of(lambda: demo_key.client(projects["alt"]).list_images(m.ListImagesRequest()))
    assert err.status_code == 403 and err.error_code == "IMG.0067"


def test_ims_copies_in_region_v1_and_v21_with_the_same_bytes(server, demo_key):
    data = payload()
    source = upload_image(server, ONE, f"ims-src-{uuid.uuid4().hex[:6]}", data)
    ims = demo_key.client()
    before = files_in(server.data_dir / "images")
    names = {version: f"copy-{version.replace('.', '')}-{uuid.uuid4().hex[:6]}" for version in ("v1", "v2.1")}
    v1 = ims.copy_image_in_region(m.CopyImageInRegionRequest(
        image_id=source["id"], body=m.CopyImageInRegionRequestBody(name=names["v1"], description="a copy")))
    v21 = ims.copy_image_in_region_in_safe_mode(m.CopyImageInRegionInSafeModeRequest(
        image_id=source["id"], body=m.CopyImageInRegionRequestBody(name=names["v2.1"], description="a copy")))
    for version, job_id in (("v1", v1.job_id), ("v2.1", v21.job_id)):
        name = names[version]
        job = wait_job(ims, job_id)
        assert job.status == "SUCCESS", job.fail_reason
        assert job.job_type == "imsCopyImageInRegionJob"
        copy_id = job.entities.image_id
        assert copy_id != source["id"]
        shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=copy_id))
        assert shown.name == name and shown.status == "active" and shown.checksum == source["checksum"]
        with server.client("demo") as http:
            assert hashlib.sha512(http.get(f"/v2/images/{copy_id}/file").content).hexdigest() \
                == hashlib.sha512(data).hexdigest()
        assert copy_id in files_in(server.data_dir / "images")
    with server.client("demo") as http:
        again = http.get(f"/v2/images/{source['id']}").json()
    assert again["status"] == "active" and again["os_hash_value"] == source["os_hash_value"]
    assert set(before) <= set(files_in(server.data_dir / "images"))


def test_ims_cross_region_copy_lands_in_the_other_region(server, demo_key, projects):
    data = payload()
    source = upload_image(server, ONE, f"ims-x-{uuid.uuid4().hex[:6]}", data)
    ims = demo_key.client()
    name = f"crossed-{uuid.uuid4().hex[:6]}"
    body = m.CopyImageCrossRegionRequestBody(name=name, description="over there", region=TWO,
                                             project_name="demo-two", agency_name="ims_admin_agency")
    job = wait_job(ims, ims.copy_image_cross_region(
        m.CopyImageCrossRegionRequest(image_id=source["id"], body=body)).job_id)
    assert job.status == "SUCCESS", job.fail_reason
    assert job.job_type == "imsCrossRegionCopyImageJob"
    copy_id = job.entities.image_id
    assert copy_id in files_in(server.data_dir / f"images-{TWO}")
    two = demo_key.client(projects["demo-two"])
    shown = two.glance_show_image(m.GlanceShowImageRequest(image_id=copy_id))
    assert shown.name == name and shown.status == "active" and shown.owner == projects["demo-two"]
    assert name not in ims_names(ims) and name in ims_names(two)
    err = error_of(lambda: ims.glance_show_image(m.GlanceShowImageRequest(image_id=copy_id)))
    assert err.status_code == 404
    with httpx.Client(base_url=region_url(server, TWO), headers={"X-Auth-Token": server.token("admin")}) as http:
        got = http.get(f"/v2/images/{copy_id}/file")
        assert got.status_code == 200 and hashlib.sha512(got.content).digest() == hashlib.sha512(data).digest()
    with server.client("demo") as http:
        assert http.get(f"/v2/images/{source['id']}").json()["status"] == "active"


def test_ims_copy_refusals_create_nothing(server, demo_key, projects):
    ims = demo_key.client()
    source = upload_image(server, ONE, f"ims-bad-{uuid.uuid4().hex[:6]}", b"q" * 8192)
    taken = upload_image(server, ONE, f"ims-taken-{uuid.uuid4().hex[:6]}", b"r" * 8192)
    alt_image = upload_image(server, ONE, f"alt-{uuid.uuid4().hex[:6]}", b"s" * 8192, persona="alt")
    with server.client("demo") as http:
        queued = http.post("/v2/images", json={"name": "never-filled", "disk_format": "raw",
                                               "container_format": "bare"}).json()
    count = len(ims_names(ims)) + len(ims_names(demo_key.client(projects["demo-two"])))
    stored = files_in(server.data_dir / "images") + files_in(server.data_dir / f"images-{TWO}")

    def cross(**fields):
        body = m.CopyImageCrossRegionRequestBody(**{"name": "nope", "region": TWO, "project_name": "demo-two",
                                                    "agency_name": "a", **fields})
        return lambda: ims.copy_image_cross_region(m.CopyImageCrossRegionRequest(image_id=source["id"], body=body))

    def in_region(image_id: str, name: str = "nope"):
        body = m.CopyImageInRegionRequestBody(name=name)
        return lambda: ims.copy_image_in_region(m.CopyImageInRegionRequest(image_id=image_id, body=body))

    cases = [
        (cross(region="Nowhere"), 400, "IMG.0001"),                       # unknown region
        (cross(description="a <b>"), 400, "IMG.0054"),                    # a description IMS refuses
        (cross(region=ONE, project_name="demo"), 400, "IMG.0001"),        # the same region, cross-region route
        (cross(project_name="alt"), 403, "IMG.0067"),                     # a project demo holds no role in
        (in_region(queued["id"]), 400, "IMG.0046"),                       # not active
        (in_region(alt_image["id"]), 404, "IMG.0027"),                    # another project's (private)
        (in_region(source["id"], taken["name"]), 400, "IMG.0009"),        # the name is taken
        (in_region(source["id"], "bad<name>"), 400, "IMG.0003"),          # a name IMS refuses
    ]
    for call, status, code in cases:
        err = error_of(call)
        assert (err.status_code, err.error_code) == (status, code), err.error_msg
    server.admin_cli("quota", "set", "--project", "demo-two", "--bytes", "4096")
    err = error_of(cross())
    assert (err.status_code, err.error_code) == (400, "IMG.0015")
    server.admin_cli("quota", "set", "--project", "demo-two", "--bytes", "-1")
    assert len(ims_names(ims)) + len(ims_names(demo_key.client(projects["demo-two"]))) == count
    assert files_in(server.data_dir / "images") + files_in(server.data_dir / f"images-{TWO}") == stored




def test_a_copy_that_does_not_hash_as_its_source_fails_and_leaves_nothing(server, demo_key, projects):
    """The source's stored bytes changed behind the service's back (same length): the copy's
    hashes differ from the source's, so the job fails and the target region keeps no data."""
    source = upload_image(server, ONE, f"ims-rot-{uuid.uuid4().hex[:6]}", b"a" * (1 << 20))
    blob = server.data_dir / "images" / source["id"]
    blob.write_bytes(b"b" * (1 << 20))
    ims = demo_key.client()
    name = f"rotten-{uuid.uuid4().hex[:6]}"
    body = m.CopyImageCrossRegionRequestBody(name=name, region=TWO, project_name="demo-two", agency_name="a")
    job = wait_job(ims, ims.copy_image_cross_region(
        m.CopyImageCrossRegionRequest(image_id=source["id"], body=body)).job_id)
    assert job.status == "FAIL" and job.error_code
    copy_id = job.entities.image_id
    reaped(lambda: copy_id not in files_in(server.data_dir / f"images-{TWO}"))
    assert name not in ims_names(demo_key.client(projects["demo-two"]))
    with server.client("demo") as http:
        assert http.get(f"/v2/images/{source['id']}").json()["status"] == "active"
