"""JD Cloud wire forms -> the core's names."""

import pytest

from vmimage.core.errors import Invalid
from vmimage.faces.jdcloud import translate as t


def test_the_sdk_body_of_reference_8_becomes_the_whole_machine_plan():
    body = t.clean({"regionId": "cn-north-1", "instanceId": "i-x", "name": "my-image.1", "description": "desc",
                    "dataDisks": [
                        {"diskCategory": None, "autoDelete": None, "cloudDiskSpec": None, "deviceName": "vdb",
                         "noDevice": True},
                        {"diskCategory": "cloud", "autoDelete": None, "cloudDiskSpec": {
                            "az": "cn-north-1a", "name": "d1", "description": None, "diskType": "ssd.io1",
                            "diskSizeGB": 40, "iops": 1200, "snapshotId": None, "policyId": None, "charge": None,
                            "multiAttachable": None, "encrypt": False}, "deviceName": "vdc", "noDevice": None}]})
    assert t.data_disks(body["dataDisks"]) == [
        {"device": "vdb", "exclude": True},
        {"device": "vdc", "size_gb": 40, "iops": 1200, "encrypted": False, "type": "ssd.io1"}]


def test_the_docs_spelling_and_a_snapshot_without_type():
    disks = t.clean([{"deviceName": "vde", "CloudDiskSpec": {"snapshotId": "snap-1", "diskSizeGB": 40}},
                     {"DeviceName": "vdh", "CloudDiskSpec": {"diskSizeGB": 40}}])
    assert t.data_disks(disks) == [{"device": "vde", "size_gb": 40, "snapshot_id": "snap-1"},
                                   {"device": "vdh", "size_gb": 40, "type": None}]   # the core says: type missing


def test_flattened_query_lists():
    pairs = [("ids.2", "b"), ("ids.1", "a"), ("imageSource", "private"), ("ids.x", "no"),
             ("filters.1.name", "resourceTypes"), ("filters.1.values.2", "imageShare"),
             ("filters.1.values.1", "image")]
    assert t.indexed(pairs, "ids") == ["a", "b"]
    assert t.filters(pairs) == {"resourceTypes": ["image", "imageShare"]}


@pytest.mark.parametrize("url,expected", [
    ("s3://bk/in/disk.qcow2", ("bk", "in/disk.qcow2")),
    ("http://127.0.0.1:8080/bk/a%20b.raw", ("bk", "a b.raw")),
])
def test_object_urls(url, expected):
    assert t.object_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://x/y/z", "s3://bk", "s3:///key", None, "bk/key"])
def test_bad_object_urls(url):
    with pytest.raises(Invalid):
        t.object_url(url)


@pytest.mark.parametrize("name,ok", [("ab", True), ("镜像-1.x_y", True), ("a", False), ("a" * 33, False),
                                     ("has space", False), (None, False)])
def test_names(name, ok):
    if ok:
        assert t.name(name) == name
    else:
        with pytest.raises(Invalid):
            t.name(name)
