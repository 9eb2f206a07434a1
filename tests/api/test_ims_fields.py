"""Every attribute of the IMS SDK's request models for image creation and listing is honoured
(stored, shown, acted on) or refused (its IMG code, nothing made) — docs/honoured-or-refused.md.
The tables below say which and why; an attribute missing from them fails the walk, so a field a
new SDK adds cannot slip by. Also the seed pages' (001-003) requests as written."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkims.v2 import model as m  # noqa: E402

from tests.api.test_huawei_ims import (Key, base_image, demo, error_of, glance_image, ims,  # noqa: E402,F401
                                       native_server, obs, obs_demo, server, upload, wait_job)

HONOURED, REFUSED = "honoured", "refused"
EPS = "0a6f0d5e-7b1c-4c8f-9d3e-2f1a5b6c7d8e"

# POST /v2/images (seeds 001, 003)
GLANCE_CREATE = {
    "os_version": (HONOURED, "__os_version: catalogue entry; platform, type and bits derived from it"),
    "container_format": (HONOURED, "stored and shown; bare by default"),
    "disk_format": (HONOURED, "zvhd2 (default), zvhd, vhd, raw, qcow2, iso; uploads checked against it"),
    "min_disk": (HONOURED, "1-1024 GB, stored and shown"),
    "min_ram": (HONOURED, "MB, stored and shown; negatives IMG.0055"),
    "name": (HONOURED, "optional, 1-255; empty when not given"),
    "protected": (HONOURED, "a protected image cannot be deleted (IMG.0028)"),
    "tags": (HONOURED, "shown in the order given"),
    "visibility": (HONOURED, "private only; any other value refused"),
}
# POST /v2/cloudimages/action (seed 002)
CREATE_IMAGE = {
    "data_images": (HONOURED, "one data image per item (from volumes or objects)"),
    "description": (HONOURED, "shown as __description"),
    "enterprise_project_id": (HONOURED, "stored, shown, filters the list; 0 = default"),
    "image_tags": (HONOURED, "key=value tags"),
    "instance_id": (HONOURED, "the server imaged"),
    "name": (HONOURED, "the image's name"),
    "tags": (HONOURED, "in the order given"),
    "max_ram": (HONOURED, "stored and shown (a string, as ImageInfo has it); IMG.0055 when bad"),
    "min_ram": (HONOURED, "stored and shown; IMG.0055 when bad"),
    "os_version": (HONOURED, "catalogue entry; IMG.0056 otherwise"),
    "image_url": (HONOURED, "bucket:object imported"),
    "min_disk": (HONOURED, "40-1024 for a file import"),
    "is_config": (HONOURED, "a boolean; the import does the checks it can either way"),
    "cmk_id": (REFUSED, "IMG.0095: vmimage keeps no keys, so it makes no encrypted image"),
    "type": (HONOURED, "virtual_env_type: BMS/Ironic -> Ironic, IsoImage -> IsoImage"),
    "is_quick_import": (HONOURED, "true: the object must be RAW or ZVHD2 (else the job fails, IMG.0072)"),
    "architecture": (HONOURED, "x86 / arm, shown"),
    "volume_id": (HONOURED, "image from a volume"),
    "hw_firmware_type": (HONOURED, "bios / uefi, shown"),
}
IMPORT_QUICK = {
    "name": (HONOURED, ""), "description": (HONOURED, ""), "os_version": (HONOURED, ""),
    "image_url": (HONOURED, ""), "min_disk": (HONOURED, "1-1024"), "tags": (HONOURED, ""),
    "license_type": (HONOURED, "byol stored and shown; platform refused (no licences here)"),
    "type": (HONOURED, "ECS/BMS system image, DataImage a data image"),
    "enterprise_project_id": (HONOURED, ""), "architecture": (HONOURED, ""), "hw_firmware_type": (HONOURED, ""),
    "os_type": (HONOURED, "Linux/Windows as the image's OS family"), "image_tags": (HONOURED, ""),
}
CREATE_DATA_IMAGE = {
    "cmk_id": (REFUSED, "IMG.0095"), "description": (HONOURED, ""), "enterprise_project_id": (HONOURED, ""),
    "image_tags": (HONOURED, ""), "image_url": (HONOURED, ""), "min_disk": (HONOURED, "40-2048"),
    "name": (HONOURED, ""), "os_type": (HONOURED, ""), "tags": (HONOURED, ""),
}
CREATE_WHOLE_IMAGE = {
    "description": (HONOURED, ""), "enterprise_project_id": (HONOURED, ""), "image_tags": (HONOURED, ""),
    "instance_id": (HONOURED, ""), "name": (HONOURED, ""), "tags": (HONOURED, ""),
    "backup_id": (REFUSED, "IMG.0001: no backups here"), "whole_image_type": (REFUSED, "IMG.0001: backups only"),
    "max_ram": (HONOURED, ""), "min_ram": (HONOURED, ""),
    "vault_id": (REFUSED, "IMG.0001: no backup vaults here"),
}
# a data_images item of POST /v2/cloudimages/action from a server
CREATE_DATA_IMAGE_ITEM = {
    "name": (HONOURED, ""), "volume_id": (HONOURED, "the data volume imaged"),
    "description": (HONOURED, ""), "tags": (HONOURED, "in the order given"),
}
# PATCH /v2/cloudimages/{id}: op, path, value (values the SDK sends as strings)
UPDATE_IMAGE = {
    "op": (HONOURED, "add, replace, remove"), "path": (HONOURED, "the patchable paths; others IMG.0001"),
    "value": (HONOURED, "checked per path: /min_ram, /max_ram IMG.0055, /enterprise_project_id 0 or a UUID"),
}
LIST_IMAGES = {
    **{k: (HONOURED, "filter") for k in (
        "imagetype", "isregistered", "os_bit", "os_type", "platform", "support_diskintensive",
        "support_highperformance", "support_kvm", "support_kvm_gpu_type", "support_kvm_infiniband",
        "support_largememory", "support_xen", "support_xen_gpu_type", "support_xen_hana", "container_format",
        "disk_format", "enterprise_project_id", "id", "limit", "marker", "member_status", "min_disk", "min_ram",
        "name", "owner", "protected", "sort_dir", "sort_key", "status", "tag", "virtual_env_type", "visibility",
        "created_at", "updated_at", "architecture")},
    "x_sdk_date": (HONOURED, "a header the signature covers"),
    "flavor_id": (REFUSED, "IMG.0001: vmimage has no flavors"),
}
MODELS = [(m.GlanceCreateImageMetadataRequestBody, GLANCE_CREATE), (m.CreateImageRequestBody, CREATE_IMAGE),
          (m.QuickImportImageByFileRequestBody, IMPORT_QUICK), (m.CreateDataImageRequestBody, CREATE_DATA_IMAGE),
          (m.CreateWholeImageRequestBody, CREATE_WHOLE_IMAGE), (m.ListImagesRequest, LIST_IMAGES),
          (m.UpdateImageRequestBody, UPDATE_IMAGE), (m.CreateDataImage, CREATE_DATA_IMAGE_ITEM)]


@pytest.mark.parametrize("model,table", MODELS, ids=[mdl.__name__ for mdl, _ in MODELS])
def test_every_sdk_attribute_is_in_the_table(model, table):
    assert set(model.openapi_types) == set(table), set(model.openapi_types) ^ set(table)


def names(ims) -> set[str]:
    return {i.name for i in ims.list_images(m.ListImagesRequest(imagetype="private")).images}


def refused(call, code: str, ims, name: str) -> None:
    before = names(ims)
    assert error_of(call).error_code == code
    assert names(ims) == before and name not in names(ims)


def signed_post(key: Key, path: str, body: dict) -> httpx.Response:
    raw = json.dumps(body).encode()
    url, headers, _ = key.signed("POST", path, raw)
    return httpx.post(url, headers=headers, content=raw)


# --- POST /v2/images ---------------------------------------------------------------------------

def test_glance_create_every_field_shown(demo, ims):
    fields = dict(os_version="Ubuntu 14.04 server 64bit", container_format="bare", disk_format="vhd",
                  min_disk=100, min_ram=1024, name="walk-all", protected=False, tags=["z=1", "a=2", "m"],
                  visibility="private")
    assert set(fields) == set(GLANCE_CREATE)
    made = ims.glance_create_image_metadata(m.GlanceCreateImageMetadataRequest(
        body=m.GlanceCreateImageMetadataRequestBody(**fields)))
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=made.id))
    for image in (made, shown):
        assert (image.os_version, image.platform, image.os_type, image.os_bit) == (
            "Ubuntu 14.04 server 64bit", "Ubuntu", "Linux", "64")
        assert (image.container_format, image.disk_format, image.min_disk, image.min_ram) == ("bare", "vhd", 100, 1024)
        assert (image.name, image.protected, image.visibility, image.tags) == (
            "walk-all", False, "private", ["z=1", "a=2", "m"])


def test_glance_create_refusals(ims):
    def create(**fields):
        return lambda: ims.glance_create_image_metadata(m.GlanceCreateImageMetadataRequest(
            body=m.GlanceCreateImageMetadataRequestBody(**fields)))
    refused(create(name="neg-ram", min_ram=-1), "IMG.0055", ims, "neg-ram")
    refused(create(name="big-disk", min_disk=1025), "IMG.0055", ims, "big-disk")
    refused(create(name="public", visibility="public"), "IMG.0001", ims, "public")
    refused(create(name="vmdk-no", disk_format="floppy"), "IMG.0072", ims, "vmdk-no")
    refused(create(name="x" * 256), "IMG.0002", ims, "x" * 256)


def test_seed_001_request_as_written(demo, ims):
    """Seed 001's example, extra key "aaaa" and all: 201, the documented fields, aaaa shown back."""
    body = {"__os_version": "Ubuntu 14.04 server 64bit", "container_format": "bare", "disk_format": "vhd",
            "min_disk": 1, "min_ram": 1024, "name": "test", "tags": ["test", "image"], "visibility": "private",
            "protected": False, "aaaa": "11111", "empty": ""}
    resp = signed_post(demo, "/v2/images", body)
    assert resp.status_code == 201, resp.text
    got = resp.json()
    assert {k: got[k] for k in ("min_disk", "min_ram", "name", "tags", "disk_format", "status", "visibility",
                                "__platform", "__os_bit", "__os_type", "__imagetype", "virtual_env_type",
                                "__isregistered", "__image_source_type", "__root_origin")} == {
        "min_disk": 1, "min_ram": 1024, "name": "test", "tags": ["test", "image"], "disk_format": "vhd",
        "status": "queued", "visibility": "private", "__platform": "Ubuntu", "__os_bit": "64", "__os_type": "Linux",
        "__imagetype": "private", "virtual_env_type": "FusionCompute", "__isregistered": "true",
        "__image_source_type": "uds", "__root_origin": "file"}
    assert got["aaaa"] == "11111" and got["empty"] == ""
    assert got["properties"] == {"aaaa": "11111", "empty": ""}
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=got["id"]))
    assert shown.tags == ["test", "image"]


def test_seed_003_request_as_written_and_defaults(demo, ims):
    body = {"__os_version": "Ubuntu 14.04 server 64bit", "container_format": "bare", "disk_format": "vhd",
            "min_disk": 100, "min_ram": 1024, "name": "test-003", "tags": ["test=testvalue", "image=imagevalue"],
            "visibility": "private", "protected": False}
    resp = signed_post(demo, "/v2/images", body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["tags"] == ["test=testvalue", "image=imagevalue"] and resp.json()["min_disk"] == 100
    # no name, no disk_format: an empty name and zvhd2 (the 2024 page's default)
    bare = signed_post(demo, "/v2/images", {})
    assert bare.status_code == 201, bare.text
    assert (bare.json()["name"], bare.json()["disk_format"]) == ("", "zvhd2")
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=bare.json()["id"])).name == ""


def test_zvhd2_kept_as_is_and_refused_where_contents_are_needed(server, demo, ims, images_dir):
    opaque = b"ZVHD2-opaque-bytes" + bytes(range(256)) * 64
    image = glance_image(ims, "opaque-zvhd2", disk_format="zvhd2")
    assert upload(demo, image.id, opaque).status_code == 204
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=image.id))
    assert (shown.status, shown.disk_format, shown.size) == ("active", "zvhd2", len(opaque))
    with server.client("demo") as http:
        assert http.get(f"/v2/images/{image.id}/file").content == opaque
        # a server from it needs its contents: refused (the native API's Conflict)
        resp = http.post("/vmimage/v1/servers", json={"name": "from-zvhd2", "image_id": image.id,
                                                     "system_disk": {"size_gb": 1}})
        assert resp.status_code == 409, resp.text
    # a qcow2 declared zvhd2 is refused like any mismatch, and the image stays queued
    liar = glance_image(ims, "liar-zvhd2", disk_format="zvhd2")
    resp = upload(demo, liar.id, (images_dir / "disk.qcow2").read_bytes())
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "IMG.0057"
    assert ims.glance_show_image(m.GlanceShowImageRequest(image_id=liar.id)).status == "queued"
    zvhd = glance_image(ims, "plain-zvhd", disk_format="zvhd")
    assert zvhd.disk_format == "zvhd"


# --- POST /v2/cloudimages/action and the other creations ----------------------------------------

def test_cloudimages_action_refusals(obs, obs_demo):
    ims = obs_demo.client()
    base = {"name": "refuse-me", "image_url": f"{obs.bucket}:in/walk.raw", "min_disk": 40}

    def create(**fields):
        return lambda: ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(**{**base, **fields})))
    refused(create(cmk_id="kms-key-1"), "IMG.0095", ims, "refuse-me")
    refused(create(min_ram=-1), "IMG.0055", ims, "refuse-me")
    refused(create(max_ram=-5), "IMG.0055", ims, "refuse-me")
    refused(create(min_ram=4096, max_ram=1024), "IMG.0055", ims, "refuse-me")
    refused(create(min_disk=39), "IMG.0055", ims, "refuse-me")        # the file route: 40-1024
    refused(create(enterprise_project_id="not-a-uuid"), "IMG.0001", ims, "refuse-me")
    refused(lambda: ims.create_data_image(m.CreateDataImageRequest(body=m.CreateDataImageRequestBody(
        name="refuse-me", image_url=base["image_url"], min_disk=40, cmk_id="k"))), "IMG.0095", ims, "refuse-me")
    refused(lambda: ims.create_data_image(m.CreateDataImageRequest(body=m.CreateDataImageRequestBody(
        name="refuse-me", image_url=base["image_url"], min_disk=39))), "IMG.0055", ims, "refuse-me")
    refused(lambda: ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="refuse-me", image_url=base["image_url"], min_disk=40, license_type="platform"))),
        "IMG.0001", ims, "refuse-me")
    for field in ({"backup_id": "b1"}, {"vault_id": "v1"}, {"whole_image_type": "CBR"}, {"min_ram": -1}):
        code = "IMG.0055" if "min_ram" in field else "IMG.0001"
        refused(lambda: ims.create_whole_image(m.CreateWholeImageRequest(body=m.CreateWholeImageRequestBody(
            name="refuse-me", instance_id="i-none", **field))), code, ims, "refuse-me")
    with pytest.raises(Exception):
        ims.list_images(m.ListImagesRequest(flavor_id="s3.large.2"))


def test_cloudimages_action_fields_honoured(obs, obs_demo, images_dir):
    ims = obs_demo.client()
    obs.s3.put_object(Bucket=obs.bucket, Key="in/walk.raw", Body=(images_dir / "disk.raw").read_bytes())
    resp = signed_post(obs_demo, "/v2/cloudimages/action", {
        "name": "walk-bms", "description": "from a file", "image_url": f"{obs.bucket}:in/walk.raw",
        "os_version": " CentOS 7.9 64bit", "min_disk": 40, "is_config": True, "is_config_init": True,
        "type": "BMS", "tags": ["c=3", "a=1", "b=2"], "enterprise_project_id": EPS, "max_ram": 8192,
        "min_ram": 1024, "architecture": "x86", "hw_firmware_type": "bios", "is_quick_import": False})
    assert resp.status_code == 200, resp.text
    job = wait_job(ims, resp.json()["job_id"])
    assert job.status == "SUCCESS", job
    image = ims.list_images(m.ListImagesRequest(name="walk-bms")).images[0]
    assert (image.virtual_env_type, image.min_ram, image.max_ram, image.enterprise_project_id) == (
        "Ironic", 1024, "8192", EPS)
    assert (image.tags, image.description, image.os_version, image.min_disk) == (
        ["c=3", "a=1", "b=2"], "from a file", "CentOS 7.9 64bit", 40)
    assert (image.hw_firmware_type, image.root_origin) == ("bios", "file")
    # enterprise_project_id filters the list; "0" is the default project's (never given one)
    listed = lambda eps: {i.name for i in ims.list_images(m.ListImagesRequest(enterprise_project_id=eps)).images}
    assert "walk-bms" in listed(EPS) and "walk-bms" not in listed("0")
    assert "walk-bms" in listed("all_granted_eps")
    assert {i.name for i in ims.list_images(m.ListImagesRequest(virtual_env_type="Ironic")).images} == {"walk-bms"}
    assert "walk-bms" not in {i.name for i in ims.list_images(
        m.ListImagesRequest(virtual_env_type="FusionCompute")).images}
    # quick import: a data image by type, an OS family, a byol licence
    quick = ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="walk-quick", image_url=f"{obs.bucket}:in/walk.raw", min_disk=1, type="DataImage", os_type="Windows",
        license_type="byol", enterprise_project_id="0")))
    assert wait_job(ims, quick.job_id).status == "SUCCESS"
    q = ims.list_images(m.ListImagesRequest(name="walk-quick")).images[0]
    assert (q.virtual_env_type, q.enterprise_project_id) == ("DataImage", "0")
    assert "walk-quick" in listed("0")


def test_seed_002_requests_as_written(obs, obs_demo, images_dir):
    """The file-import example (is_config_init and a leading space in os_version included)."""
    ims = obs_demo.client()
    obs.s3.put_object(Bucket=obs.bucket, Key="centos70.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    for i, tags in enumerate(({"tags": ["aaa.111", "bbb.333", "ccc.444"]},
                              {"image_tags": [{"key": "key2", "value": "value2"}, {"key": "key1", "value": "value1"}]})):
        resp = signed_post(obs_demo, "/v2/cloudimages/action", {
            "name": f"ims_test_file{i}", "description": "OBS文件制作镜像", "image_url": f"{obs.bucket}:centos70.qcow2",
            "os_version": " CentOS 7.0 64bit", "is_config_init": True, "min_disk": 40, "is_config": True, **tags})
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["job_id"]) == 32
        assert wait_job(ims, resp.json()["job_id"]).status == "SUCCESS"
    shown = ims.list_images(m.ListImagesRequest(name="ims_test_file1")).images[0]
    assert shown.tags == ["key2=value2", "key1=value1"]


def test_update_image_memory_and_enterprise_project(ims):
    image = glance_image(ims, "walk-patch")

    def patch(path, value, op="replace"):
        return ims.update_image(m.UpdateImageRequest(image_id=image.id, body=[
            m.UpdateImageRequestBody(op=op, path=path, value=value)]))
    assert patch("/min_ram", "2048").min_ram == 2048          # the SDK's value is a string
    assert patch("/max_ram", "4096", op="add").max_ram == "4096"
    assert patch("/enterprise_project_id", EPS, op="add").enterprise_project_id == EPS
    for path, value, code in (("/min_ram", "-1", "IMG.0055"), ("/max_ram", "lots", "IMG.0055"),
                              ("/enterprise_project_id", "nope", "IMG.0001")):
        assert error_of(lambda: patch(path, value)).error_code == code
    shown = ims.list_images(m.ListImagesRequest(name="walk-patch")).images[0]
    assert (shown.min_ram, shown.max_ram, shown.enterprise_project_id) == (2048, "4096", EPS)


def test_zvhd2_object_imported_as_is_and_export_conversion_refused(obs, obs_demo, images_dir):
    ims = obs_demo.client()
    opaque = b"ZVHD2" + bytes(range(256)) * 256
    obs.s3.put_object(Bucket=obs.bucket, Key="in/c.zvhd2", Body=opaque)
    obs.s3.put_object(Bucket=obs.bucket, Key="in/liar.zvhd2", Body=(images_dir / "disk.qcow2").read_bytes())
    job = wait_job(ims, ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="walk-zvhd2", image_url=f"{obs.bucket}:in/c.zvhd2", min_disk=40))).job_id)
    assert job.status == "SUCCESS", job
    image = ims.glance_show_image(m.GlanceShowImageRequest(image_id=job.entities.image_id))
    assert (image.disk_format, image.status, image.root_origin) == ("zvhd2", "active", "file")
    # converting needs the contents: refused; the bytes as they are can go out
    err = error_of(lambda: ims.export_image(m.ExportImageRequest(image_id=image.id, body=m.ExportImageRequestBody(
        bucket_url=f"{obs.bucket}:out/c.qcow2", file_format="qcow2"))))
    assert err.error_code == "IMG.0072"
    out = wait_job(ims, ims.export_image(m.ExportImageRequest(image_id=image.id, body=m.ExportImageRequestBody(
        bucket_url=f"{obs.bucket}:out/c.zvhd2"))).job_id)
    assert out.status == "SUCCESS", out
    assert obs.s3.get_object(Bucket=obs.bucket, Key="out/c.zvhd2")["Body"].read() == opaque
    # a qcow2 named .zvhd2 is a mismatch: the job fails, no image is left
    liar = wait_job(ims, ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="walk-liar", image_url=f"{obs.bucket}:in/liar.zvhd2", min_disk=40))).job_id)
    assert (liar.status, liar.error_code) == ("FAIL", "IMG.0057")
    assert "walk-liar" not in names(ims)
    # quick import takes RAW and ZVHD2 only: a qcow2 fails the job (IMG.0072), as is_quick_import does
    obs.s3.put_object(Bucket=obs.bucket, Key="in/q.qcow2", Body=(images_dir / "disk.qcow2").read_bytes())
    slow = wait_job(ims, ims.import_image_quick(m.ImportImageQuickRequest(body=m.QuickImportImageByFileRequestBody(
        name="walk-quick-qcow2", image_url=f"{obs.bucket}:in/q.qcow2", min_disk=40))).job_id)
    assert (slow.status, slow.error_code) == ("FAIL", "IMG.0072")
    flagged = signed_post(obs_demo, "/v2/cloudimages/action", {
        "name": "walk-flagged", "image_url": f"{obs.bucket}:in/q.qcow2", "min_disk": 40, "is_quick_import": True})
    assert flagged.status_code == 200, flagged.text
    assert (wait_job(ims, flagged.json()["job_id"]).error_code) == "IMG.0072"
    assert not {"walk-quick-qcow2", "walk-flagged"} & names(ims)


def test_memory_bounds_are_acted_on_by_servers(server, demo, ims, images_dir):
    image = glance_image(ims, "walk-min-ram", min_ram=1024)
    assert upload(demo, image.id, (images_dir / "disk.qcow2").read_bytes()).status_code == 204
    ims.update_image(m.UpdateImageRequest(image_id=image.id, body=[
        m.UpdateImageRequestBody(op="add", path="/max_ram", value="2048")]))
    with server.client("demo") as http:
        http.timeout = 120
        spec = {"name": "needs-ram", "image_id": image.id, "system_disk": {"size_gb": 1}, "start": False}
        small = http.post("/vmimage/v1/servers", json={**spec, "memory_mb": 512})
        assert small.status_code == 400, small.text
        made = http.post("/vmimage/v1/servers", json=spec)
        assert made.status_code == 201, made.text
        assert made.json()["server"]["memory_mb"] == 1024
        big = http.post("/vmimage/v1/servers", json={**spec, "name": "too-much", "memory_mb": 4096})
        assert big.status_code == 400, big.text


def test_seed_002_server_example_with_memory_and_enterprise_project(server, ims, base_image):
    """The page's server example as written (tags in its order), plus the memory and enterprise
    project fields, which the server image carries; its data image shows its own tags."""
    srv = native_server(server, base_image, start=False, data_disks=[{"device": "vdb", "size_gb": 1}])
    body = {"name": "ims_test", "description": "云服务器制作镜像", "instance_id": srv["id"],
            "tags": ["aaa.111", "bbb.333", "ccc.444"], "min_ram": 512, "max_ram": 2048, "enterprise_project_id": EPS,
            "data_images": [{"name": "ims_data_image_test", "description": "云服务器数据卷制作数据盘镜像",
                             "volume_id": srv["data_disks"][0]["id"], "tags": ["z.1", "a.2"]}]}
    job = wait_job(ims, ims.create_image(m.CreateImageRequest(body=m.CreateImageRequestBody(
        **{**body, "data_images": [m.CreateDataImage(**d) for d in body["data_images"]]}))).job_id)
    assert job.status == "SUCCESS", job
    image = ims.list_images(m.ListImagesRequest(name="ims_test")).images[0]
    assert (image.tags, image.description, image.min_ram, image.max_ram, image.enterprise_project_id) == (
        ["aaa.111", "bbb.333", "ccc.444"], "云服务器制作镜像", 512, "2048", EPS)
    assert image.root_origin is None and image.virtual_env_type == "FusionCompute"
    data = ims.list_images(m.ListImagesRequest(name="ims_data_image_test")).images[0]
    assert (data.tags, data.virtual_env_type) == (["z.1", "a.2"], "DataImage")
