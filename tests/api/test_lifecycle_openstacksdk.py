"""The whole image lifecycle driven by openstacksdk, the official OpenStack SDK."""

from __future__ import annotations

import hashlib
import json

import openstack
import pytest

from tests.conftest import openstack_cli, reaped, sdk_connect




def digest(path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def demo(server):
    conn = sdk_connect(server, "demo")
    yield conn
    conn.close()


def test_full_lifecycle(server, demo, images_dir, tmp_path):
    qcow2 = images_dir / "disk.qcow2"
    image = demo.image.create_image(name="sdk-lifecycle", filename=str(qcow2), disk_format="qcow2",
                                    container_format="bare", wait=True, os_distro="cirros")
    shown = demo.image.get_image(image.id)
    assert shown.status == "active"
    assert shown.checksum == digest(qcow2, "md5")
    assert shown.hash_algo == "sha512" and shown.hash_value == digest(qcow2, "sha512")
    assert shown.size == qcow2.stat().st_size
    assert shown.virtual_size == 64 << 20
    assert shown.properties.get("os_distro") == "cirros" or shown.os_distro == "cirros"

    # list with filters and pagination
    extra = [demo.image.create_image(name=f"sdk-page-{i}", disk_format="raw", container_format="bare",
                                     allow_duplicates=True)
             for i in range(3)]
    names = [i.name for i in demo.image.images(name="sdk-lifecycle")]
    assert names == ["sdk-lifecycle"]
    assert [i.id for i in demo.image.images(disk_format="qcow2", status="active", name="sdk-lifecycle")] == [image.id]
    paged = [i.id for i in demo.image.images(limit=2, sort_key="name", sort_dir="asc")]
    assert len(paged) == len(set(paged)) >= 4
    assert {e.id for e in extra} | {image.id} <= set(paged)

    # download byte-identical
    out = tmp_path / "downloaded.qcow2"
    demo.image.download_image(image, output=str(out))
    assert out.read_bytes() == qcow2.read_bytes()

    # patch
    updated = demo.image.update_image(image, name="sdk-renamed", min_disk=1, custom_prop="x")
    assert updated.name == "sdk-renamed" and updated.min_disk == 1
    assert demo.image.get_image(image.id).properties["custom_prop"] == "x"

    # tags
    demo.image.add_tag(image, "gold")
    demo.image.add_tag(image, "v1")
    assert set(demo.image.get_image(image.id).tags) == {"gold", "v1"}
    assert [i.id for i in demo.image.images(tag=["gold"])] == [image.id]
    demo.image.remove_tag(image, "v1")
    assert demo.image.get_image(image.id).tags == ["gold"]

    # share with a second project
    alt = sdk_connect(server, "alt")
    alt_project = server.project_id("alt")
    member = demo.image.add_member(image, member_id=alt_project)
    assert member.status == "pending"
    assert image.id not in [i.id for i in alt.image.images()]
    alt.image.update_member(alt_project, image, status="accepted")
    assert image.id in [i.id for i in alt.image.images()]
    assert alt.image.get_image(image.id).name == "sdk-renamed"
    with pytest.raises(openstack.exceptions.ForbiddenException):
        alt.image.update_image(alt.image.get_image(image.id), name="stolen")

    # deactivate / reactivate (admin)
    admin = sdk_connect(server, "admin")
    admin.image.deactivate_image(image)
    assert demo.image.get_image(image.id).status == "deactivated"
    with pytest.raises(openstack.exceptions.SDKException):
        demo.image.download_image(image, output=str(tmp_path / "denied"))
    with server.client("demo") as http:
        assert http.get(f"/v2/images/{image.id}/file").status_code == 403
    admin.image.reactivate_image(image)
    assert demo.image.get_image(image.id).status == "active"

    # delete
    for img in (image, *extra):
        demo.image.delete_image(img)
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.image.get_image(image.id)
    reaped(lambda: server.stored_blobs() == [".partial"] or image.id not in server.stored_blobs())
    for conn in (alt, admin):
        conn.close()


def test_openstack_cli_creates_lists_and_deletes(server, images_dir, tmp_path):
    cli = openstack_cli(server, tmp_path)

    created = json.loads(cli("image", "create", "--file", str(images_dir / "disk.qcow2"), "--disk-format",
                             "qcow2", "--container-format", "bare", "cli-demo", "-f", "json"))
    assert created["status"] == "active"
    listed = json.loads(cli("image", "list", "--name", "cli-demo", "-f", "json"))
    assert [i["ID"] for i in listed] == [created["id"]]
    shown = json.loads(cli("image", "show", created["id"], "-f", "json"))
    assert shown["checksum"] == digest(images_dir / "disk.qcow2", "md5")
    cli("image", "delete", created["id"])
    assert json.loads(cli("image", "list", "--name", "cli-demo", "-f", "json")) == []
