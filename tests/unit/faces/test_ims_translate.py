"""The IMS face's translation: list queries, patches, job bodies, the error table."""

from __future__ import annotations

from datetime import datetime

import pytest

from vmimage.core import errors as e
from vmimage.core.images import Image, ImageKind, Visibility
from vmimage.core.jobs import Job, JobStatus, end_part, new_part
from vmimage.core.listing import ListScope
from vmimage.faces.huawei_ims import errors, translate as t


def test_list_query_filters():
    q = t.list_query({"__imagetype": "private", "__platform": "CentOS", "__os_type": "Linux", "name": "a",
                      "status": "active", "created_at": "lt:2018-10-28T10:00:00Z", "sort_key": "name",
                      "sort_dir": "asc", "limit": "10", "marker": "m"}, "p1")
    assert q.scope == ListScope.ALL and q.equals == {"owner": "p1", "name": "a", "status": "active"}
    assert q.any_of["os_version"] and all(v.startswith("CentOS") for v in q.any_of["os_version"])
    assert (q.times[0].op, q.times[0].value) == ("lt", datetime(2018, 10, 28, 10))
    assert q.sort == [("name", "asc")] and q.page.limit == 10 and q.page.marker == "m"
    assert t.list_query({}, "p1").page.limit == 500
    assert t.list_query({"__platform": "Windows", "__os_type": "Linux"}, "p").any_of["os_version"] == ["\0none"]
    for bad in ({"__imagetype": "mine"}, {"created_at": "after:2018"}, {"created_at": "lt:yesterday"},
                {"sort_key": "owner"}, {"limit": "x"}):
        with pytest.raises(e.Invalid):
            t.list_query(bad, "p")


def test_patch_changes():
    changes = t.patch_changes([{"op": "replace", "path": "/name", "value": "n"},
                               {"op": "add", "path": "/__support_kvm", "value": "true"},
                               {"op": "add", "path": "/hw_firmware_type", "value": "uefi"},
                               {"op": "add", "path": "/my_key", "value": "v"}])
    assert [(c.key, c.property) for c in changes] == [("name", False), ("__support_kvm", True),
                                                     ("boot_mode", False), ("my_key", True)]
    for path in ("/status", "/__os_version", "/owner", "/MyKey", "/min_disk"):
        with pytest.raises(e.Invalid):
            t.patch_changes([{"op": "replace", "path": path, "value": "x"}])
    with pytest.raises(e.Invalid) as info:
        t.patch_changes([{"op": "replace", "path": "/name", "value": " x"}])
    assert errors.CODES.lookup(info.value) == (400, "IMG.0003")


def test_tags_forms():
    assert t.tags_of({"image_tags": [{"key": "a", "value": "b"}]}) == ["a=b"]
    assert t.tags_of({"tags": ["a=b"]}) == ["a=b"]
    with pytest.raises(e.Invalid) as info:
        t.tags_of({"tags": ["a"], "image_tags": []})
    assert errors.CODES.lookup(info.value) == (400, "IMG.0001")


def test_error_table():
    assert errors.CODES.lookup(e.NotFound("x", server_id="i-1")) == (400, "IMG.0005")
    assert errors.CODES.lookup(e.NotFound("x", image_id="u")) == (404, "IMG.0027")
    assert errors.CODES.lookup(e.NameTaken("x")) == (400, "IMG.0009")
    assert errors.CODES.lookup(e.Invalid("x", field="name", reason="too_long")) == (400, "IMG.0002")
    assert errors.CODES.lookup(e.Invalid("x", field="os_version")) == (400, "IMG.0056")
    assert errors.CODES.lookup(e.UnsafeImage("x")) == (400, "IMG.0057")
    assert errors.CODES.lookup(e.QuotaExceeded("x")) == (400, "IMG.0015")
    assert errors.CODES.lookup(e.Protected("x", image_id="u")) == (400, "IMG.0028")
    assert errors.CODES.lookup(e.TooManyRequests("x", retry_after=3)) == (429, "IMG.0060")
    assert errors.job_code("unsafe_image") == "IMG.0057" and errors.job_code("boom") == "IMG.0061"


def test_job_with_parts():
    job = Job("a" * 32, "image_from_disks", "p", status=JobStatus.RUNNING, payload={"scope": "system"},
              created_at=datetime(2024, 1, 1), begin_time=datetime(2024, 1, 1, 0, 0, 1))
    images = {i: Image(id=i, owner="p", name=f"n{i}", kind=ImageKind.DATA_DISK, visibility=Visibility.PRIVATE)
              for i in ("i1", "i2")}
    job.entities = {"image_ids": ["i1", "i2"]}
    parts = [new_part(job, "i1"), new_part(job, "i2")]
    job.move_to(JobStatus.FAIL)
    job.error_code, job.fail_reason = "unsafe_image", "bad"
    for part in parts:
        end_part(part, job)
    body = t.job_body(job, images, parts)
    assert body["status"] == "FAIL" and body["error_code"] == "IMG.0057"
    assert body["begin_time"] == "2024-01-01T00:00:01.000Z"
    assert body["entities"]["image_id"] == "i1" and body["entities"]["image_name"] == "ni1"
    subs = body["entities"]["sub_jobs_result"]
    assert [s["status"] for s in subs] == ["FAIL", "FAIL"] and [s["entities"]["image_id"] for s in subs] == ["i1", "i2"]
    assert body["entities"]["sub_jobs_list"] == [p.id for p in parts] and len({p.id for p in parts}) == 2
