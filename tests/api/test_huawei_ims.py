"""The Huawei IMS face driven by the official SDK (huaweicloudsdkims), unpatched, against a real
vmimage process: signed with access keys from `vmimage admin access-key create`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.sdk_request import SdkRequest  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer  # noqa: E402
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402

from tests.conftest import start_server  # noqa: E402

V1 = "/vmimage/v1"
OCTET = "application/octet-stream"
GiB = 1 << 30
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed")


class Key:
    def __init__(self, server, persona: str) -> None:
        made = json.loads(server.admin_cli("access-key", "create", "--user", persona))
        self.ak, self.sk, self.project = made["access_key"], made["secret_key"], made["project_id"]
        self.url = server.url

    def client(self, sk: str | None = None, ak: str | None = None, project: str | None = None) -> ImsClient:
        credentials = BasicCredentials(ak or self.ak, sk or self.sk, project or self.project)
        return ImsClient.new_builder().with_credentials(credentials).with_endpoints([self.url]).build()

    def signed(self, method: str, path: str, body: bytes = b"", query: list | None = None,
               content_type: str = "application/json;charset=utf-8", unsigned_payload: bool = False,
               sk: str | None = None, extra: dict | None = None) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) signed by the SDK's own Signer, for requests the SDK has no method for."""
        headers = {"Content-Type": content_type, "X-Project-Id": self.project,
                   "User-Agent": "huaweicloud-usdk-python/3.0", **(extra or {})}
        if unsigned_payload:
            headers["X-Sdk-Content-Sha256"] = "UNSIGNED-PAYLOAD"
        host = self.url.removeprefix("http://")
        request = SdkRequest(method=method, schema="http", host=host, resource_path=path, uri=path,
                             query_params=list(query or []), header_params=headers, body=body)
        Signer(BasicCredentials(self.ak, sk or self.sk, self.project)).sign(request)
        return f"{self.url}{request.uri}", dict(request.header_params), body


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_factory):
    """A server of this module's own: its images, quotas and names touch no other test."""
    srv = start_server(tmp_path_factory.mktemp("ims"), database_factory())
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(server) -> Key:
    return Key(server, "demo")


@pytest.fixture(scope="module")
def alt(server) -> Key:
    return Key(server, "alt")


@pytest.fixture(scope="module")
def ims(demo) -> ImsClient:
    return demo.client()


def error_of(call) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    return info.value


def wait_job(client: ImsClient, job_id: str, timeout: float = 180) -> m.ShowJobResponse:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.show_job(m.ShowJobRequest(job_id=job_id))
        if job.status in ("SUCCESS", "FAIL"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def upload(key: Key, image_id: str, data: bytes) -> httpx.Response:
    url, headers, body = key.signed("PUT", f"/v2/images/{image_id}/file", data, content_type=OCTET,
                                    unsigned_payload=True)
    return httpx.put(url, headers=headers, content=body, timeout=120)


def glance_image(client: ImsClient, name: str, **fields) -> m.GlanceCreateImageMetadataResponse:
    body = m.GlanceCreateImageMetadataRequestBody(name=name, **{"disk_format": "qcow2", **fields})
    return client.glance_create_image_metadata(m.GlanceCreateImageMetadataRequest(body=body))


def next_second() -> None:
    """Wait for the signer's clock to turn a second: the very same signed write is served once
    (vmimage/faces/signed.py), and an identical call signed within one second is the same."""
    time.sleep(1.01 - time.time() % 1)


def to_raw(src: Path, dst: Path, fmt: str = "qcow2") -> bytes:
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(src), str(dst)], check=True)
    return dst.read_bytes()


# --- signatures ----------------------------------------------------------------------------------

def test_signed_request_gets_ims_dialect_and_request_id(server, demo, ims):
    reply = ims.show_image_quota(m.ShowImageQuotaRequest())
    types = {r.type: r for r in reply.quotas.resources}
    assert "image" in types and types["image"].used >= 0
    url, headers, _ = demo.signed("GET", "/v1/cloudimages/quota")
    resp = httpx.get(url, headers=headers)
    assert resp.status_code == 200
    assert len(resp.headers["X-Request-Id"]) == 32 and int(resp.headers["X-Request-Id"], 16) >= 0


def test_unsigned_and_keystone_requests(server):
    resp = httpx.get(f"{server.url}/v2/cloudimages")
    assert resp.status_code == 401 and resp.json()["error_code"] == "APIGW.0301"
    assert len(resp.headers["X-Request-Id"]) == 32
    # A Keystone token on /v2/images is Glance's, unchanged.
    with server.client("demo") as http:
        resp = http.get("/v2/images")
        assert resp.status_code == 200 and "x-openstack-request-id" in resp.headers
        assert "X-Request-Id" not in resp.headers


def _nothing_made(ims: ImsClient, name: str) -> None:
    assert ims.list_images(m.ListImagesRequest(name=name)).images == []


def test_tampered_signatures_are_refused_and_change_nothing(server, demo, ims):
    body = json.dumps({"name": "tamper", "disk_format": "qcow2"}).encode()
    # wrong secret key
    err = error_of(lambda: demo.client(sk="not-the-secret").glance_create_image_metadata(
        m.GlanceCreateImageMetadataRequest(body=m.GlanceCreateImageMetadataRequestBody(name="tamper"))))
    assert err.status_code == 401 and err.error_code == "APIGW.0301" and len(err.request_id) == 32
    # unknown access key
    err = error_of(lambda: demo.client(ak="NOSUCHACCESSKEY0000").list_images(m.ListImagesRequest()))
    assert err.status_code == 401
    # the body changed after signing
    url, headers, _ = demo.signed("POST", "/v2/images", body)
    resp = httpx.post(url, headers=headers, content=body.replace(b"tamper", b"tamperX"))
    assert resp.status_code == 401, resp.text
    # the query changed after signing
    url, headers, _ = demo.signed("GET", "/v2/cloudimages", query=[("name", "a")])
    assert httpx.get(url.replace("name=a", "name=b"), headers=headers).status_code == 401
    # a stale date: the request signed 20 minutes ago
    url, headers, _ = demo.signed("POST", "/v2/images", body)
    stale = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
    request = SdkRequest(method="POST", schema="http", host=demo.url.removeprefix("http://"), resource_path="/v2/images",
                         uri="/v2/images", query_params=[], body=body,
                         header_params={"Content-Type": "application/json;charset=utf-8", "X-Project-Id": demo.project,
                                        "X-Sdk-Date": stale})
    Signer(BasicCredentials(demo.ak, demo.sk, demo.project)).sign(request)
    resp = httpx.post(url, headers=request.header_params, content=body)
    assert resp.status_code == 401 and "time" in resp.json()["error_msg"]
    # the signature is right, but a JSON body must not be sent unsigned
    url, headers, _ = demo.signed("POST", "/v2/images", body, unsigned_payload=True)
    assert httpx.post(url, headers=headers, content=body).status_code == 401
    _nothing_made(ims, "tamper")
    _nothing_made(ims, "tamperX")


def test_utf8_header_and_cjk_name(demo, ims):
    created = glance_image(ims, "镜像 一号")
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=created.id)).name == "镜像 一号"
    url, headers, _ = demo.signed("GET", f"/v2/images/{created.id}", extra={"X-Note": "中文 ünï"})
    # The signer leaves values as UTF-8 bytes in latin-1 text, what requests puts on the wire.
    sent = {k: v.encode("latin-1") for k, v in headers.items()}
    assert sent["X-Note"] == "中文 ünï".encode()
    resp = httpx.get(url, headers=sent)
    assert resp.status_code == 200 and resp.json()["name"] == "镜像 一号", resp.text
    url, headers, _ = demo.signed("GET", f"/v2/images/{created.id}", extra={"X-Note": "中文"})
    assert httpx.get(url, headers={**{k: v.encode("latin-1") for k, v in headers.items()}, "X-Note": b"other"}
                     ).status_code == 401


def test_project_must_be_the_keys(demo, alt):
    err = error_of(lambda: demo.client(project=alt.project).list_images(m.ListImagesRequest()))
    assert err.status_code == 403 and err.error_code == "IMG.0067"
    err = error_of(lambda: demo.client(project=alt.project).show_job(m.ShowJobRequest(job_id="0" * 32)))
    assert err.status_code == 403


# --- Glance-native images ---------------------------------------------------------------------

def test_glance_native_create_upload_show_update_delete(server, demo, ims, images_dir, tmp_path):
    created = glance_image(ims, "glance-img", os_version="Ubuntu 22.04 server 64bit", container_format="bare",
                           min_disk=40, min_ram=1024, protected=False, tags=["t1", "k=v"], visibility="private")
    assert created.status == "queued" and created.visibility == "private" and created.min_disk == 40
    assert (created.os_version, created.platform, created.os_type, created.os_bit) == \
        ("Ubuntu 22.04 server 64bit", "Ubuntu", "Linux", "64")
    assert created.imagetype == "private" and created.isregistered == "true" and created.file.endswith("/file")
    assert sorted(created.tags) == ["k=v", "t1"]

    data = (images_dir / "disk.qcow2").read_bytes()
    resp = upload(demo, created.id, data)
    assert resp.status_code == 204, resp.text
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=created.id))
    assert shown.status == "active" and shown.size == len(data)
    assert shown.image_size == str(len(data)) and shown.virtual_size == 64 << 20
    with server.client("demo") as http:     # the same bytes through Glance
        assert http.get(f"/v2/images/{created.id}/file").content == data

    patched = ims.update_image(m.UpdateImageRequest(image_id=created.id, body=[
        m.UpdateImageRequestBody(op="replace", path="/name", value="renamed"),
        m.UpdateImageRequestBody(op="add", path="/__description", value="first"),
        m.UpdateImageRequestBody(op="add", path="/__support_kvm", value="true"),
        m.UpdateImageRequestBody(op="replace", path="/min_ram", value=2048)]))
    assert patched.name == "renamed" and patched.description == "first" and patched.min_ram == 2048
    assert patched.support_kvm == "true"
    err = error_of(lambda: ims.update_image(m.UpdateImageRequest(image_id=created.id, body=[
        m.UpdateImageRequestBody(op="replace", path="/status", value="killed")])))
    assert err.error_code == "IMG.0001"

    listed = ims.glance_list_images(m.GlanceListImagesRequest(name="renamed"))
    assert [i.id for i in listed.images] == [created.id]

    ims.glance_create_tag(m.GlanceCreateTagRequest(image_id=created.id, tag="extra"))
    assert "extra" in ims.glance_show_image(m.GlanceShowImageRequest(image_id=created.id)).tags
    ims.glance_delete_tag(m.GlanceDeleteTagRequest(image_id=created.id, tag="extra"))
    ims.add_image_tag(m.AddImageTagRequest(image_id=created.id, body=m.AddImageTagRequestBody(
        tag=m.ResourceTag(key="env", value="prod"))))
    tags = ims.list_image_tags(m.ListImageTagsRequest(image_id=created.id)).tags
    assert {"key": "env", "value": "prod"} in [t.to_dict() for t in tags]
    ims.delete_image_tag(m.DeleteImageTagRequest(image_id=created.id, key="env"))
    assert "env=prod" not in ims.glance_show_image(m.GlanceShowImageRequest(image_id=created.id)).tags

    ims.glance_delete_image(m.GlanceDeleteImageRequest(
        image_id=created.id, body=m.GlanceDeleteImageRequestBody(delete_backup=False)))
    err = error_of(lambda: ims.glance_show_image(m.GlanceShowImageRequest(image_id=created.id)))
    assert err.status_code == 404


def test_glance_native_refusals(demo, ims):
    def code(**fields):
        return error_of(lambda: glance_image(ims, **fields)).error_code
    assert code(name=" lead") == "IMG.0003"
    assert code(name="x" * 256) == "IMG.0002"       # 1-255 on this route (seed 003)
    assert code(name="bad<name>") == "IMG.0003"
    assert code(name="osv", os_version="Plan9 64bit") == "IMG.0056"
    assert code(name="disk", min_disk=2000) == "IMG.0055"
    glance_image(ims, "taken-name")
    next_second()
    assert code(name="taken-name") == "IMG.0009"
    protected = glance_image(ims, "protected-one", protected=True)
    err = error_of(lambda: ims.glance_delete_image(m.GlanceDeleteImageRequest(
        image_id=protected.id, body=m.GlanceDeleteImageRequestBody(delete_backup=False))))
    assert err.error_code == "IMG.0028"
    # the catalogue default and derived fields when no os_version is given
    plain = glance_image(ims, "plain")
    assert plain.os_version == "Other Linux(64 bit)" and plain.os_type == "Linux" and plain.os_bit == "64"


def test_hostile_upload_is_refused(demo, ims, images_dir):
    image = glance_image(ims, "hostile")
    resp = upload(demo, image.id, (images_dir / "backing.qcow2").read_bytes())
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "IMG.0057"
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=image.id)).status == "queued"


# --- lists, quota, catalogue ----------------------------------------------------------------------

def test_list_filters(ims):
    a = glance_image(ims, "list-a", os_version="CentOS 7.9 64bit")
    b = glance_image(ims, "list-b", os_version="Windows Server 2016 Standard 64bit")
    mine = ims.list_images(m.ListImagesRequest(imagetype="private", limit=500)).images
    assert {a.id, b.id} <= {i.id for i in mine}
    assert all(i.imagetype == "private" for i in mine)
    by_platform = {i.id for i in ims.list_images(m.ListImagesRequest(platform="CentOS")).images}
    assert a.id in by_platform and b.id not in by_platform
    by_os = {i.id for i in ims.list_images(m.ListImagesRequest(os_type="Windows")).images}
    assert b.id in by_os and a.id not in by_os
    assert [i.id for i in ims.list_images(m.ListImagesRequest(name="list-a", status="queued")).images] == [a.id]
    assert ims.list_images(m.ListImagesRequest(name="list-a", status="active")).images == []
    ordered = ims.list_images(m.ListImagesRequest(imagetype="private", sort_key="name", sort_dir="asc")).images
    names = [i.name for i in ordered]
    assert names == sorted(names)
    page = ims.list_images(m.ListImagesRequest(imagetype="private", sort_key="name", sort_dir="asc", limit=1,
                                               marker=ordered[0].id)).images
    assert [i.id for i in page] == [ordered[1].id]
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ims.list_images(m.ListImagesRequest(created_at=f"gt:{future}")).images == []
    assert a.id in {i.id for i in ims.list_images(m.ListImagesRequest(created_at=f"lt:{future}")).images}


def test_os_versions_and_versions(ims):
    catalogue = ims.list_os_versions(m.ListOsVersionsRequest()).body
    centos = next(p for p in catalogue if p.platform == "CentOS")
    entry = next(v for v in centos.version_list if v.os_version == "CentOS 7.9 64bit")
    assert entry.os_bit == 64 and entry.os_type == "Linux"
    versions = ims.list_versions(m.ListVersionsRequest()).versions
    assert {v.id for v in versions} >= {"v1", "v2"}


def test_quota_exhausted(server, demo, ims):
    server.admin_cli("quota", "set", "--project", demo.project, "--images", "0")
    try:
        err = error_of(lambda: glance_image(ims, "over-quota"))
        assert err.error_code == "IMG.0015"
        reply = ims.show_image_quota(m.ShowImageQuotaRequest())
        assert reply.quotas.resources[0].quota == 0
    finally:
        server.admin_cli("quota", "set", "--project", demo.project, "--images", "-1")


# --- images of servers and volumes (native servers with real disks) ----------------------------------

@pytest.fixture(scope="module")
def base_image(server, images_dir):
    with server.client("demo") as http:
        image = http.post("/v2/images", json={"name": "ims-base", "disk_format": "qcow2",
                                              "container_format": "bare"}).json()
        assert http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers={"Content-Type": OCTET}).status_code == 204
    return image["id"]


def native_server(server, base_image, start: bool, data_disks: list[dict], category: str = "cloud") -> dict:
    with server.client("demo") as http:
        http.timeout = 120
        resp = http.post(f"{V1}/servers", json={
            "name": "ims-src", "image_id": base_image, "system_disk": {"size_gb": 1, "category": category},
            "data_disks": data_disks, "start": start})
        assert resp.status_code == 201, resp.text
        return resp.json()["server"]


def image_bytes(server, image_id: str, path: Path) -> bytes:
    with server.client("demo") as http:
        http.timeout = 120
        path.write_bytes(http.get(f"/v2/images/{image_id}/file").content)
    return to_raw(path, path.with_suffix(".raw"))


@needs_qemu
def test_image_from_running_server_with_two_data_volumes(server, ims, base_image, images_dir, tmp_path):
    seed = native_server(server, base_image, start=False, data_disks=[])
    with server.client("demo") as http:     # vdb starts as a copy of the base image's bytes
        snap = http.post(f"{V1}/snapshots", json={"volume_id": seed["system_disk"]["id"]}).json()["snapshot"]
    srv = native_server(server, base_image, start=True, data_disks=[
        {"device": "vdb", "size_gb": 1, "snapshot_id": snap["id"]}, {"device": "vdc", "size_gb": 2}])
    assert srv["status"] == "running"
    vdb, vdc = srv["data_disks"]
    body = m.CreateImageRequestBody(name="img-from-ecs", instance_id=srv["id"], description="d",
                                    image_tags=[m.TagKeyValue(key="k1", value="v1")], max_ram=0, min_ram=0,
                                    data_images=[m.CreateDataImage(name="dimg-b", volume_id=vdb["id"]),
                                                 m.CreateDataImage(name="dimg-c", volume_id=vdc["id"])])
    job_id = ims.create_image(m.CreateImageRequest(body=body)).job_id
    assert len(job_id) == 32
    # busy while the job runs
    err = error_of(lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="img-busy", instance_id=srv["id"]))))
    assert err.error_code == "IMG.0010"
    job = wait_job(ims, job_id)
    assert job.status == "SUCCESS", job
    assert job.job_type == "imsCreateImageByInstance" and job.entities.process_percent == 100
    assert job.entities.image_name == "img-from-ecs"
    subs = job.entities.sub_jobs_result
    assert len(subs) == 3 and all(s.status == "SUCCESS" for s in subs)
    names = [s.entities.image_name for s in subs]
    assert names == ["img-from-ecs", "dimg-b", "dimg-c"]
    for sub in subs:     # each sub-job is a job of its own
        again = ims.show_job_progress(m.ShowJobProgressRequest(job_id=sub.job_id))
        assert again.status == "SUCCESS" and again.entities.image_id == sub.entities.image_id

    system_raw = to_raw(images_dir / "disk.qcow2", tmp_path / "src.raw")
    got = image_bytes(server, job.entities.image_id, tmp_path / "sys.qcow2")
    assert got[:len(system_raw)] == system_raw and got[len(system_raw):].count(0) == GiB - len(system_raw)
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id)).tags == ["k1=v1"]
    b = ims.glance_show_image(m.GlanceShowImageRequest(image_id=subs[1].entities.image_id))
    c = ims.glance_show_image(m.GlanceShowImageRequest(image_id=subs[2].entities.image_id))
    assert (b.virtual_size, c.virtual_size) == (GiB, 2 * GiB)
    assert b.virtual_env_type == "DataImage" and b.status == "active"
    assert image_bytes(server, b.id, tmp_path / "b.qcow2") == got            # the snapshot's bytes
    assert image_bytes(server, c.id, tmp_path / "c.qcow2").count(0) == 2 * GiB   # a fresh empty disk
    # the name is now taken
    err = error_of(lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="img-from-ecs", instance_id=srv["id"]))))
    assert err.error_code == "IMG.0009"


@needs_qemu
def test_image_from_volume_and_server_errors(server, ims, alt, base_image, images_dir, tmp_path):
    with server.client("demo") as http:
        vol = http.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"]
    job_id = ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="img-from-vol", volume_id=vol["id"], os_version="CentOS 7.9 64bit"))).job_id
    job = wait_job(ims, job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsVolumeCreateImageJob"
    image = ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id))
    assert image.os_version == "CentOS 7.9 64bit" and image.platform == "CentOS" and image.virtual_size == GiB
    assert image_bytes(server, image.id, tmp_path / "v.qcow2").count(0) == GiB

    def code(**fields):
        return error_of(lambda: ims.create_image(m.CreateImageRequest(
            body=m.CreateImageRequestBody(**fields)))).error_code
    assert code(name="x", instance_id="i-nosuchserver") == "IMG.0005"
    assert code(name="x", volume_id=vol["id"], os_version="Nope 1 64bit") == "IMG.0056"
    assert code(name="x y<", instance_id="i-nosuchserver") == "IMG.0003"
    assert code(name="x", instance_id="i-x", tags=["a=b"], image_tags=[m.TagKeyValue(key="a", value="b")]) \
        == "IMG.0001"
    local = native_server(server, base_image, start=True, data_disks=[], category="local")
    assert code(name="local-running", instance_id=local["id"]) == "IMG.0008"
    # another project's server and volume do not exist for this key
    assert error_of(lambda: alt.client().create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="steal", instance_id=local["id"])))).error_code == "IMG.0005"
    assert error_of(lambda: alt.client().create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="steal", volume_id=vol["id"], os_version="CentOS 7.9 64bit")))).error_code == "IMG.0120"
    # nor its jobs or images
    err = error_of(lambda: alt.client().show_job(m.ShowJobRequest(job_id=job_id)))
    assert err.status_code == 404 and err.error_code == "IMG.0066"
    err = error_of(lambda: alt.client().glance_show_image(m.GlanceShowImageRequest(image_id=image.id)))
    assert err.status_code == 404
    assert image.id not in {i.id for i in alt.client().list_images(m.ListImagesRequest()).images}
    err = error_of(lambda: alt.client().glance_delete_image(m.GlanceDeleteImageRequest(
        image_id=image.id, body=m.GlanceDeleteImageRequestBody(delete_backup=False))))
    assert err.status_code == 404
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=image.id)).status == "active"


@needs_qemu
def test_data_images_only_and_whole_image(server, demo, ims, base_image, tmp_path):
    stopped = native_server(server, base_image, start=False, data_disks=[{"device": "vdb", "size_gb": 1}])
    with server.client("demo") as http:
        free = http.post(f"{V1}/volumes", json={"size_gb": 2}).json()["volume"]
    body = m.CreateImageRequestBody(data_images=[
        m.CreateDataImage(name="only-b", volume_id=stopped["data_disks"][0]["id"]),
        m.CreateDataImage(name="only-free", volume_id=free["id"], description="free one")])
    job = wait_job(ims, ims.create_image_in_safe_mode(m.CreateImageInSafeModeRequest(body=body)).job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsVolumesToSysDataImagesJob", job
    subs = job.entities.sub_jobs_result
    assert [s.entities.image_name for s in subs] == ["only-b", "only-free"]
    free_image = ims.glance_show_image(m.GlanceShowImageRequest(image_id=subs[1].entities.image_id))
    assert free_image.virtual_size == 2 * GiB and free_image.description == "free one"
    assert free_image.virtual_env_type == "DataImage"

    whole = ims.create_whole_image(m.CreateWholeImageRequest(body=m.CreateWholeImageRequestBody(
        name="whole-one", instance_id=stopped["id"])))
    job = wait_job(ims, whole.job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsCreateWholeImageByInstanceJob", job
    listed = ims.list_images(m.ListImagesRequest(id=job.entities.image_id)).images
    assert listed[0].name == "whole-one" and listed[0].data_origin == f"instance,{stopped['id']}"
    url, headers, _ = demo.signed("GET", "/v2/cloudimages", query=[("id", listed[0].id)])
    assert httpx.get(url, headers=headers).json()["images"][0]["__whole_image"] == "true"   # not in the SDK model
    assert [s.entities.image_name for s in job.entities.sub_jobs_result] == ["whole-one", "whole-one-vdb"]


def test_members(server, ims, alt):
    image = glance_image(ims, "shared-one")
    added = ims.glance_add_image_member(m.GlanceAddImageMemberRequest(
        image_id=image.id, body=m.GlanceAddImageMemberRequestBody(member=alt.project)))
    assert added.status == "pending" and added.member_id == alt.project
    listed = ims.glance_list_image_members(m.GlanceListImageMembersRequest(image_id=image.id)).members
    assert [x.member_id for x in listed] == [alt.project]
    other = alt.client()
    other.glance_update_image_member(m.GlanceUpdateImageMemberRequest(
        image_id=image.id, member_id=alt.project, body=m.GlanceUpdateImageMemberRequestBody(status="accepted")))
    seen = other.glance_show_image(m.GlanceShowImageRequest(image_id=image.id))
    assert seen.imagetype == "shared" and seen.visibility == "shared"
    assert image.id in {i.id for i in other.list_images(m.ListImagesRequest(imagetype="shared")).images}
    assert image.id not in {i.id for i in ims.list_images(m.ListImagesRequest(imagetype="shared")).images}
    assert image.id in {i.id for i in ims.list_images(m.ListImagesRequest(imagetype="private")).images}
    err = error_of(lambda: other.update_image(m.UpdateImageRequest(image_id=image.id, body=[
        m.UpdateImageRequestBody(op="replace", path="/name", value="mine-now")])))
    assert err.status_code == 403
    ims.glance_delete_image_member(m.GlanceDeleteImageMemberRequest(image_id=image.id, member_id=alt.project))
    assert error_of(lambda: other.glance_show_image(m.GlanceShowImageRequest(image_id=image.id))).status_code == 404


def test_member_batches(ims, alt):
    one, two = glance_image(ims, "batch-1"), glance_image(ims, "batch-2")
    added = ims.batch_add_members(m.BatchAddMembersRequest(body=m.BatchAddMembersRequestBody(
        images=[one.id, two.id], projects=[alt.project])))
    job = wait_job(ims, added.job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsAddImageMembersJob", job
    assert {(r.image_id, r.project_id) for r in job.entities.results} == {(one.id, alt.project), (two.id, alt.project)}
    listed = ims.list_image_members(m.ListImageMembersRequest(image_id=one.id)).members
    assert [(x.member_id, x.status) for x in listed] == [(alt.project, "pending")]
    other = alt.client()
    answered = other.batch_update_members(m.BatchUpdateMembersRequest(body=m.BatchUpdateMembersRequestBody(
        images=[one.id], project_id=alt.project, status="accepted")))
    assert wait_job(other, answered.job_id).status == "SUCCESS"
    shown = ims.show_image_member(m.ShowImageMemberRequest(image_id=one.id, member_id=alt.project))
    assert shown.status == "accepted"
    # only the owner shares; another project's image cannot be named
    err = error_of(lambda: other.batch_add_members(m.BatchAddMembersRequest(body=m.BatchAddMembersRequestBody(
        images=[two.id], projects=[alt.project]))))
    assert err.status_code in (403, 404)
    removed = ims.batch_delete_members(m.BatchDeleteMembersRequest(body=m.BatchAddMembersRequestBody(
        images=[one.id, two.id], projects=[alt.project])))
    assert wait_job(ims, removed.job_id).job_type == "imsDelImageMembersJob"
    assert ims.list_image_members(m.ListImageMembersRequest(image_id=one.id)).members == []


# --- objects in buckets (a real Swift with s3api) --------------------------------------------------

@pytest.fixture(scope="module")
def obs(tmp_path_factory, database_factory, swift_s3):
    """A server with the object storage, a bucket granted to demo and one granted to nobody."""
    srv = start_server(tmp_path_factory.mktemp("ims-obs"), database_factory(), **swift_s3.env)
    srv.s3 = swift_s3.client()
    srv.bucket, srv.other = f"ims-{uuid.uuid4().hex[:8]}", f"ims-other-{uuid.uuid4().hex[:8]}"
    for bucket in (srv.bucket, srv.other):
        srv.s3.create_bucket(Bucket=bucket)
    srv.admin_cli("bucket", "grant", srv.bucket, "--project", "demo")
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def obs_demo(obs) -> Key:
    return Key(obs, "demo")


def image_data(srv, image_id: str) -> bytes:
    with srv.client("demo") as http:
        http.timeout = 120
        return http.get(f"/v2/images/{image_id}/file").content


def test_image_from_bucket_object_with_a_data_image(obs, obs_demo, images_dir):
    qcow2, raw = (images_dir / "disk.qcow2").read_bytes(), (images_dir / "disk.raw").read_bytes()
    obs.s3.put_object(Bucket=obs.bucket, Key="in/centos7.qcow2", Body=qcow2)
    obs.s3.put_object(Bucket=obs.bucket, Key="in/data.raw", Body=raw)
    body = {"name": "img-from-obs", "image_url": f"{obs.bucket}:in/centos7.qcow2", "min_disk": 40,
            "os_version": " CentOS 7.9 64bit", "is_config": True, "type": "ECS", "tags": ["a=b"],
            "enterprise_project_id": "0", "hw_firmware_type": "uefi",
            "data_images": [{"name": "obs-data", "image_url": f"{obs.bucket}:in/data.raw", "min_disk": 1}]}
    raw_body = json.dumps(body).encode()
    url, headers, _ = obs_demo.signed("POST", "/v2/cloudimages/action", raw_body)
    resp = httpx.post(url, headers=headers, content=raw_body)
    assert resp.status_code == 200, resp.text
    ims = obs_demo.client()
    job = wait_job(ims, resp.json()["job_id"])
    assert job.status == "SUCCESS" and job.job_type == "imsImportImageJob", job
    image = ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id))
    assert (image.name, image.status, image.disk_format, image.min_disk) == ("img-from-obs", "active", "qcow2", 40)
    assert (image.os_version, image.platform, image.tags) == ("CentOS 7.9 64bit", "CentOS", ["a=b"])
    assert image_data(obs, image.id) == qcow2
    [sub] = job.entities.sub_jobs_result       # a job of its own, which may finish later
    sub = wait_job(ims, sub.job_id)
    assert sub.status == "SUCCESS" and sub.entities.image_name == "obs-data"
    data = ims.glance_show_image(m.GlanceShowImageRequest(image_id=sub.entities.image_id))
    assert data.virtual_env_type == "DataImage" and data.disk_format == "raw"
    assert image_data(obs, data.id) == raw


def test_bucket_refusals_and_failed_jobs(obs, obs_demo, images_dir):
    ims = obs_demo.client()

    def create(url: str, name: str = "obs-refused"):
        return ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
            name=name, image_url=url, min_disk=40)))

    obs.s3.put_object(Bucket=obs.other, Key="x.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    not_granted = error_of(lambda: create(f"{obs.other}:x.qcow2"))
    missing = error_of(lambda: create("no-such-bucket-anywhere:x.qcow2"))
    assert not_granted.error_code == missing.error_code == "IMG.0069"
    assert not_granted.error_msg.replace(obs.other, "B") == missing.error_msg.replace("no-such-bucket-anywhere", "B")
    assert error_of(lambda: create("no-colon-here")).error_code == "IMG.0017"
    err = error_of(lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="obs-refused", image_url=f"{obs.bucket}:x", min_disk=4096))))
    assert err.error_code == "IMG.0055"
    err = error_of(lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="obs-refused", image_url=f"{obs.bucket}:x", min_disk=40, os_version="Nope 64bit"))))
    assert err.error_code == "IMG.0056"
    err = error_of(lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="obs-refused", image_url=f"{obs.bucket}:x", min_disk=40, type="Floppy"))))
    assert err.error_code == "IMG.0024"
    assert ims.list_images(m.ListImagesRequest(name="obs-refused")).images == []
    # another project may not use demo's bucket
    alt = Key(obs, "alt").client()
    assert error_of(lambda: alt.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        name="steal", image_url=f"{obs.bucket}:in/centos7.qcow2", min_disk=40)))).error_code == "IMG.0069"

    # an object that is not there, a hostile qcow2: the job fails and leaves no image
    job = wait_job(ims, create(f"{obs.bucket}:no/such/object", "obs-missing").job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0121", job
    obs.s3.put_object(Bucket=obs.bucket, Key="hostile.qcow2", Body=(images_dir / "backing.qcow2").read_bytes())
    job = wait_job(ims, create(f"{obs.bucket}:hostile.qcow2", "obs-hostile").job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0057" and job.fail_reason, job
    assert error_of(lambda: ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id))
                    ).status_code == 404
    assert ims.list_images(m.ListImagesRequest(name="obs-hostile")).images == []


def test_a_refused_import_set_leaves_no_image_and_no_job(obs, obs_demo, images_dir):
    """The main image is made first and the data images' jobs start only once every image
    exists: a name clash on the main image, or on a data image, leaves nothing behind."""
    ims = obs_demo.client()
    obs.s3.put_object(Bucket=obs.bucket, Key="set/sys.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    obs.s3.put_object(Bucket=obs.bucket, Key="set/data.raw", Body=(images_dir / "disk.raw").read_bytes())
    taken = glance_image(ims, "set-taken")

    def import_set(name: str, data_names: list[str]) -> dict:
        # the SDK's CreateDataImage has no image_url (the API reference has): sent as JSON
        raw = json.dumps({"name": name, "image_url": f"{obs.bucket}:set/sys.qcow2", "min_disk": 40,
                          "data_images": [{"name": n, "image_url": f"{obs.bucket}:set/data.raw", "min_disk": 1}
                                          for n in data_names]}).encode()
        url, headers, _ = obs_demo.signed("POST", "/v2/cloudimages/action", raw)
        resp = httpx.post(url, headers=headers, content=raw)
        assert resp.status_code == 400, resp.text
        return resp.json()["error"]

    def jobs() -> list[dict]:      # inspections of earlier images may end meanwhile: not this test's
        with obs.client("demo") as http:
            return [j for j in http.get("/vmimage/v1/jobs").json()["jobs"] if j["kind"] != "image_inspect"]
    jobs_before = jobs()
    blobs_before = obs.stored_blobs()
    assert import_set("set-taken", ["set-data-a"])["code"] == "IMG.0009"
    assert import_set("set-main", ["set-data-b", "set-taken"])["code"] == "IMG.0009"
    for name in ("set-data-a", "set-main", "set-data-b"):
        assert ims.list_images(m.ListImagesRequest(name=name)).images == [], name
    [only] = ims.list_images(m.ListImagesRequest(name="set-taken")).images
    assert only.id == taken.id
    assert jobs() == jobs_before
    assert obs.stored_blobs() == blobs_before


def test_register_quick_import_data_image_and_export(obs, obs_demo, images_dir):
    ims = obs_demo.client()
    qcow2, raw = (images_dir / "disk.qcow2").read_bytes(), (images_dir / "disk.raw").read_bytes()
    obs.s3.put_object(Bucket=obs.bucket, Key="reg.qcow2", Body=qcow2)
    obs.s3.put_object(Bucket=obs.bucket, Key="quick.raw", Body=raw)

    queued = glance_image(ims, "obs-registered", os_version="Ubuntu 22.04 server 64bit")
    job = wait_job(ims, ims.register_image(m.RegisterImageRequest(
        image_id=queued.id, body=m.RegisterImageRequestBody(image_url=f"{obs.bucket}:reg.qcow2"))).job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsNativeImportImageJob", job
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=queued.id)).status == "active"
    assert image_data(obs, queued.id) == qcow2

    job = wait_job(ims, ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="obs-quick", image_url=f"{obs.bucket}:quick.raw", min_disk=40, os_version="CentOS 7.9 64bit"))).job_id)
    assert job.status == "SUCCESS", job
    assert image_data(obs, job.entities.image_id) == raw

    job = wait_job(ims, ims.create_data_image(m.CreateDataImageRequest(body=m.CreateDataImageRequestBody(
        name="obs-dataimg", image_url=f"{obs.bucket}:quick.raw", min_disk=40))).job_id)
    assert job.status == "SUCCESS", job
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id)).virtual_env_type \
        == "DataImage"

    job = wait_job(ims, ims.export_image(m.ExportImageRequest(image_id=queued.id, body=m.ExportImageRequestBody(
        bucket_url=f"{obs.bucket}:out/exported.raw", file_format="raw"))).job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsNativeExportImageJob", job
    assert obs.s3.get_object(Bucket=obs.bucket, Key="out/exported.raw")["Body"].read() == raw
    err = error_of(lambda: ims.export_image(m.ExportImageRequest(image_id=queued.id, body=m.ExportImageRequestBody(
        bucket_url=f"{obs.other}:out/x.raw", file_format="raw"))))
    assert err.error_code == "IMG.0069"
