"""The lifecycle through python-glanceclient (it builds its models from our schemas)."""

from __future__ import annotations

import hashlib

import pytest
from glanceclient import Client
from glanceclient import exc as gexc
from keystoneauth1 import session
from keystoneauth1.identity import v3

from tests.conftest import PERSONAS, reaped


def glance(server, persona: str) -> Client:
    password, project, _ = PERSONAS[persona]
    auth = v3.Password(auth_url=f"{server.url}/identity/v3", username=persona, password=password,
                       project_name=project, user_domain_name="Default", project_domain_name="Default")
    return Client("2", session=session.Session(auth=auth))


def test_glanceclient_lifecycle(server, images_dir):
    gc = glance(server, "demo")
    qcow2 = images_dir / "disk.qcow2"
    image = gc.images.create(name="gc-image", disk_format="qcow2", container_format="bare", os_distro="debian")
    assert image.status == "queued" and image.os_distro == "debian"
    with qcow2.open("rb") as f:
        gc.images.upload(image.id, f, image_size=qcow2.stat().st_size)
    shown = gc.images.get(image.id)
    assert shown.status == "active"
    assert shown.checksum == hashlib.md5(qcow2.read_bytes()).hexdigest()
    assert shown.os_hash_value == hashlib.sha512(qcow2.read_bytes()).hexdigest()
    assert shown.virtual_size == 64 << 20

    data = b"".join(gc.images.data(image.id))   # glanceclient verifies Content-MD5
    assert data == qcow2.read_bytes()

    gc.images.update(image.id, name="gc-renamed", os_distro="ubuntu", remove_props=[])
    gc.images.update(image.id, remove_props=["os_distro"])
    shown = gc.images.get(image.id)
    assert shown.name == "gc-renamed" and "os_distro" not in shown

    gc.image_tags.update(image.id, "blue")
    assert "blue" in gc.images.get(image.id).tags
    gc.image_tags.delete(image.id, "blue")
    assert gc.images.get(image.id).tags == []

    alt_project = server.project_id("alt")
    gc.image_members.create(image.id, alt_project)
    assert [m.member_id for m in gc.image_members.list(image.id)] == [alt_project]
    alt = glance(server, "alt")
    alt.image_members.update(image.id, alt_project, "accepted")
    assert image.id in [i.id for i in alt.images.list()]
    with pytest.raises(gexc.HTTPForbidden):
        gc.image_members.update(image.id, alt_project, "rejected")   # only the member decides
    gc.image_members.delete(image.id, alt_project)
    assert image.id not in [i.id for i in alt.images.list()]

    found = list(gc.images.list(filters={"name": "gc-renamed"}))
    assert [i.id for i in found] == [image.id]
    gc.images.update(image.id, protected=True)
    with pytest.raises(gexc.HTTPForbidden):
        gc.images.delete(image.id)
    gc.images.update(image.id, protected=False)
    gc.images.delete(image.id)
    with pytest.raises(gexc.HTTPNotFound):
        gc.images.get(image.id)
    reaped(lambda: image.id not in server.stored_blobs())
