"""The whole operation surface of huaweicloudsdkims's ImsClient: every operation is called by a
test through the SDK's own method (the three copies in test_huawei_ims_regions.py), and the ones this
file owns — the Glance patch, the six key/value tag operations, the four schema reads, the
version documents, a member read and the safe-mode twins — assert the state they leave."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402

from tests.api.test_huawei_ims import Key, error_of, glance_image, image_data, next_second, wait_job  # noqa: E402
# the IMS module's fixtures: this module gets its own server (module scope), set up the same way
from tests.api.test_huawei_ims import alt, demo, ims, obs, server  # noqa: E402,F401

TESTS = Path(__file__).parent


def sdk_operations() -> set[str]:
    """The SDK's public operations: the methods with an `_invoker` twin."""
    return {name for name in dir(ImsClient)
            if not name.startswith("_") and callable(getattr(ImsClient, f"{name}_invoker", None))}


def operations_called_by_tests() -> set[str]:
    """Methods of the SDK called in the IMS test files (`<client>.<operation>(...)`)."""
    called: set[str] = set()
    for path in TESTS.glob("test_huawei_ims*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
    return called


def test_every_sdk_operation_is_called_by_a_test():
    operations = sdk_operations()
    assert len(operations) == 51
    missing = operations - operations_called_by_tests()
    assert missing == set(), f"SDK operations no test calls: {sorted(missing)}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def shown(ims: ImsClient, image_id: str) -> m.GlanceShowImageResponse:
    return ims.glance_show_image(m.GlanceShowImageRequest(image_id=image_id))


def kv_tags(ims: ImsClient, image_id: str) -> dict[str, str]:
    return {t.key: t.value for t in ims.list_image_tags(m.ListImageTagsRequest(image_id=image_id)).tags}


# --- glance_update_image: JSON-patch, signed as an unsigned payload --------------------------------

def test_glance_update_image_applies_the_patch(ims):
    image = glance_image(ims, unique("patch-me"))
    updated = ims.glance_update_image(m.GlanceUpdateImageRequest(image_id=image.id, body=[
        m.GlanceUpdateImageRequestBody(op="replace", path="/name", value="patched-name"),
        m.GlanceUpdateImageRequestBody(op="add", path="/__description", value="from the SDK"),
        m.GlanceUpdateImageRequestBody(op="add", path="/color", value="blue")]))
    assert (updated.name, updated.description) == ("patched-name", "from the SDK")
    after = shown(ims, image.id)
    assert after.name == "patched-name" and after.description == "from the SDK"
    with_extra = after.to_dict()
    assert with_extra.get("color", "blue") == "blue"       # an extra key the model has no field for
    next_second()           # the patch's body is unsigned: the same patch route within a second is a replay
    ims.glance_update_image(m.GlanceUpdateImageRequest(image_id=image.id, body=[
        m.GlanceUpdateImageRequestBody(op="remove", path="/__description")]))
    assert shown(ims, image.id).description is None


def test_glance_update_image_refusals_change_nothing(ims, alt):
    image = glance_image(ims, unique("patch-refused"))
    err = error_of(lambda: ims.glance_update_image(m.GlanceUpdateImageRequest(image_id=image.id, body=[
        m.GlanceUpdateImageRequestBody(op="replace", path="/name", value="fine"),
        m.GlanceUpdateImageRequestBody(op="replace", path="/status", value="active")])))
    assert (err.status_code, err.error_code) == (400, "IMG.0001")
    assert shown(ims, image.id).name == image.name and shown(ims, image.id).status == "queued"
    err = error_of(lambda: alt.client().glance_update_image(m.GlanceUpdateImageRequest(image_id=image.id, body=[
        m.GlanceUpdateImageRequestBody(op="replace", path="/name", value="not-yours")])))
    assert err.status_code == 404 and err.error_code == "IMG.0027"
    assert shown(ims, image.id).name == image.name


# --- the six key/value tag operations ----------------------------------------------------------------

def batch(ims: ImsClient, image_id: str, action: str, tags: dict[str, str | None]) -> None:
    ims.batch_add_or_delete_tags(m.BatchAddOrDeleteTagsRequest(image_id=image_id, body=m.BatchAddOrDeleteTagsRequestBody(
        action=action, tags=[m.ResourceTag(key=k, value=v) for k, v in tags.items()])))


def test_batch_add_or_delete_tags(ims):
    image = glance_image(ims, unique("tagged"), tags=["plain"])
    batch(ims, image.id, "create", {"env": "prod", "team": "core", "empty": ""})
    assert kv_tags(ims, image.id) == {"plain": "", "env": "prod", "team": "core", "empty": ""}
    assert {"env=prod", "team=core", "empty=", "plain"} == set(shown(ims, image.id).tags)   # Glance's view
    batch(ims, image.id, "create", {"env": "test"})                  # a key holds one value: updated
    assert kv_tags(ims, image.id)["env"] == "test"
    batch(ims, image.id, "delete", {"team": "other", "empty": "", "absent": None})   # value must match
    assert kv_tags(ims, image.id) == {"plain": "", "env": "test", "team": "core"}
    batch(ims, image.id, "delete", {"team": None, "plain": None})
    assert kv_tags(ims, image.id) == {"env": "test"}


def test_tag_rules_are_huaweis_and_a_refusal_changes_nothing(ims, demo, alt):
    image = glance_image(ims, unique("tag-rules"))
    batch(ims, image.id, "create", {"keep": "1"})
    refusals = [({"k" * 37: "v"}, "IMG.0115"), ({"key": "v" * 44}, "IMG.0115"), ({"bad key": "v"}, "IMG.0115"),
                ({"": "v"}, "IMG.0115"), ({f"k{i}": "v" for i in range(10)}, "IMG.0116")]
    for tags, code in refusals:
        err = error_of(lambda: batch(ims, image.id, "create", tags))
        assert (err.status_code, err.error_code) == (400, code), tags
    # keys given twice in one request (the SDK's model lets it through)
    err = error_of(lambda: ims.batch_add_or_delete_tags(m.BatchAddOrDeleteTagsRequest(
        image_id=image.id, body=m.BatchAddOrDeleteTagsRequestBody(action="create", tags=[
            m.ResourceTag(key="twice", value="1"), m.ResourceTag(key="twice", value="2")]))))
    assert err.error_code == "IMG.0115"
    err = error_of(lambda: batch(ims, image.id, "upsert", {"a": "b"}))
    assert (err.status_code, err.error_code) == (400, "IMG.0001")
    batch(ims, image.id, "create", {"k" * 36: "v" * 43, **{f"k{i}": "" for i in range(8)}})   # 10 keys: the cap
    assert len(kv_tags(ims, image.id)) == 10
    err = error_of(lambda: alt.client().batch_add_or_delete_tags(m.BatchAddOrDeleteTagsRequest(
        image_id=image.id, body=m.BatchAddOrDeleteTagsRequestBody(action="delete", tags=[m.ResourceTag(key="keep")]))))
    assert err.status_code == 404
    err = error_of(lambda: demo.client(project=alt.project).list_images_tags(m.ListImagesTagsRequest()))
    assert err.status_code in (401, 403)
    assert kv_tags(ims, image.id)["keep"] == "1"


def test_batch_delete_tags(ims):
    image = glance_image(ims, unique("batch-delete"))
    batch(ims, image.id, "create", {"a": "1", "b": "2", "c": "3"})
    ims.batch_delete_tags(m.BatchDeleteTagsRequest(image_id=image.id, body=m.BatchDeleteTagsRequestBody(
        tags=[m.ResourceTag(key="a", value="1"), m.ResourceTag(key="b", value="wrong"),
              m.ResourceTag(key="nothing", value="")])))
    assert kv_tags(ims, image.id) == {"b": "2", "c": "3"}
    err = error_of(lambda: ims.batch_delete_tags(m.BatchDeleteTagsRequest(
        image_id=image.id, body=m.BatchDeleteTagsRequestBody(tags=[m.ResourceTag(key="k" * 128)]))))
    assert err.error_code == "IMG.0115"
    assert kv_tags(ims, image.id) == {"b": "2", "c": "3"}


def test_create_or_update_tags(ims):
    image = glance_image(ims, unique("put-tag"))
    ims.create_or_update_tags(m.CreateOrUpdateTagsRequest(body=m.AddOrUpdateTagsRequestBody(
        image_id=image.id, tag="aaaa.1111")))
    ims.create_or_update_tags(m.CreateOrUpdateTagsRequest(body=m.AddOrUpdateTagsRequestBody(
        image_id=image.id, image_tag=m.ResourceTag(key="key1", value="value1"))))
    assert kv_tags(ims, image.id) == {"aaaa": "1111", "key1": "value1"}
    next_second()
    ims.create_or_update_tags(m.CreateOrUpdateTagsRequest(body=m.AddOrUpdateTagsRequestBody(
        image_id=image.id, tag="aaaa.2222")))
    assert kv_tags(ims, image.id)["aaaa"] == "2222"
    for body in (m.AddOrUpdateTagsRequestBody(image_id=image.id),
                 m.AddOrUpdateTagsRequestBody(image_id=image.id, tag="x.1", image_tag=m.ResourceTag(key="y", value="2"))):
        assert error_of(lambda: ims.create_or_update_tags(m.CreateOrUpdateTagsRequest(body=body))).error_code == "IMG.0115"
    err = error_of(lambda: ims.create_or_update_tags(m.CreateOrUpdateTagsRequest(body=m.AddOrUpdateTagsRequestBody(
        image_id=str(uuid.uuid4()), tag="a.b"))))
    assert (err.status_code, err.error_code) == (404, "IMG.0027")
    assert kv_tags(ims, image.id) == {"aaaa": "2222", "key1": "value1"}


def test_list_images_tags_and_list_tags(server, alt):
    ims = alt.client()      # a project of its own here, so the lists are exactly its images'
    one, two = glance_image(ims, unique("lt-one")), glance_image(ims, unique("lt-two"))
    batch(ims, one.id, "create", {"os": "linux", "tier": "web"})
    batch(ims, two.id, "create", {"os": "windows"})
    listed = ims.list_images_tags(m.ListImagesTagsRequest()).tags
    assert {t.key: t.values for t in listed} == {"os": ["linux", "windows"], "tier": ["web"]}
    assert ims.list_tags(m.ListTagsRequest()).tags == ["os.linux", "os.windows", "tier.web"]
    assert ims.list_tags(m.ListTagsRequest(name=one.name)).tags == ["os.linux", "tier.web"]
    assert ims.list_tags(m.ListTagsRequest(id=two.id, imagetype="private")).tags == ["os.windows"]
    assert ims.list_tags(m.ListTagsRequest(limit=2, page=2)).tags == ["tier.web"]
    assert ims.list_tags(m.ListTagsRequest(virtual_env_type="DataImage")).tags == []
    assert ims.list_tags(m.ListTagsRequest(status="active")).tags == []
    err = error_of(lambda: ims.list_tags(m.ListTagsRequest(page=0)))
    assert (err.status_code, err.error_code) == (400, "IMG.0001")
    err = error_of(lambda: ims.list_tags(m.ListTagsRequest(architecture="sparc")))
    assert err.error_code == "IMG.0212"


def by_tags(ims: ImsClient, **fields) -> m.ListImageByTagsResponse:
    return ims.list_image_by_tags(m.ListImageByTagsRequest(body=m.ListImageByTagsRequestBody(**fields)))


def test_list_image_by_tags(ims):
    mark = uuid.uuid4().hex[:6]       # this test's own tag key, so other images never match
    a, b, c = (glance_image(ims, unique(f"bytag-{n}")) for n in "abc")
    batch(ims, a.id, "create", {mark: "red", "size": "s"})
    batch(ims, b.id, "create", {mark: "blue", "size": "m"})
    batch(ims, c.id, "create", {mark: "red"})

    def ids(**fields) -> set[str]:
        return {r.resource_id for r in by_tags(ims, action="filter", **fields).resources}

    assert ids(tags=[m.Tags(key=mark, values=[])]) == {a.id, b.id, c.id}
    assert ids(tags=[m.Tags(key=mark, values=["red"]), m.Tags(key="size", values=[])]) == {a.id}
    assert ids(tags_any=[m.Tags(key=mark, values=["blue"]), m.Tags(key="size", values=["s"])]) & {a.id, b.id, c.id} \
        == {a.id, b.id}
    assert ids(tags=[m.Tags(key=mark, values=[])], not_tags=[m.Tags(key="size", values=["m"])]) == {a.id, c.id}
    assert ids(tags=[m.Tags(key=mark, values=[])], not_tags_any=[m.Tags(key="size", values=[])]) == {c.id}
    assert ids(tags=[m.Tags(key=mark, values=[])], matches=[m.TagKeyValue(key="resource_name", value="bytag-b")]) \
        == {b.id}
    assert ids(matches=[m.TagKeyValue(key="resource_id", value=c.id)]) == {c.id}
    untagged = glance_image(ims, unique("untagged"))
    assert untagged.id in ids(without_any_tag=True, limit="1000") and a.id not in ids(without_any_tag=True, limit="1000")

    page = by_tags(ims, action="filter", tags=[m.Tags(key=mark, values=[])], limit="2", offset="0")
    rest = by_tags(ims, action="filter", tags=[m.Tags(key=mark, values=[])], limit="2", offset="2")
    assert page.total_count == rest.total_count == 3 and len(page.resources) == 2 and len(rest.resources) == 1
    assert {r.resource_id for r in page.resources + rest.resources} == {a.id, b.id, c.id}
    one = next(r for r in page.resources + rest.resources if r.resource_id == a.id)
    assert one.resource_name == a.name and one.resource_detail.status == "queued"
    assert {(t.key, t.value) for t in one.tags} == {(mark, "red"), ("size", "s")}
    counted = by_tags(ims, action="count", tags=[m.Tags(key=mark, values=["red"])])
    assert counted.total_count == 2 and counted.resources is None
    # a query sent as a POST changes nothing: the very same signed query again is served
    assert by_tags(ims, action="count", tags=[m.Tags(key=mark, values=["red"])]).total_count == 2

    for fields in ({"action": "list"}, {"action": "filter", "limit": "0"}, {"action": "filter", "limit": "1001"},
                   {"action": "filter", "offset": "-1"},
                   {"action": "filter", "matches": [m.TagKeyValue(key="owner", value="x")]}):
        err = error_of(lambda: by_tags(ims, **fields))
        assert (err.status_code, err.error_code) == (400, "IMG.0001"), fields
    err = error_of(lambda: by_tags(ims, action="filter", tags=[m.Tags(key=f"k{i}", values=[]) for i in range(11)]))
    assert err.error_code == "IMG.0115"


# --- schemas, versions, a member --------------------------------------------------------------------

def test_glance_schemas_are_the_glance_faces(server, ims):
    reads = {"image": ims.glance_show_image_schemas(m.GlanceShowImageSchemasRequest()),
             "images": ims.glance_list_image_schemas(m.GlanceListImageSchemasRequest()),
             "member": ims.glance_show_image_member_schemas(m.GlanceShowImageMemberSchemasRequest()),
             "members": ims.glance_list_image_member_schemas(m.GlanceListImageMemberSchemasRequest())}
    with server.client("demo") as http:
        for name, read in reads.items():
            glance = http.get(f"/v2/schemas/{name}").json()
            assert read.name == name and read.properties == glance["properties"], name
    assert reads["image"].additional_properties.type == "string"
    assert {link.rel for link in reads["images"].links} == {"first", "next", "describedby"}
    assert "status" in reads["member"].properties and "members" in reads["members"].properties


def test_versions(ims):
    listed = ims.list_versions(m.ListVersionsRequest()).versions
    assert {(v.id, v.status) for v in listed} == {("v2", "CURRENT"), ("v1", "SUPPORTED")}
    v2 = ims.show_version(m.ShowVersionRequest(version="v2")).versions
    assert [(v.id, v.status) for v in v2] == [("v2", "CURRENT")] and v2[0].links[0].href == "/v2/"
    err = error_of(lambda: ims.show_version(m.ShowVersionRequest(version="v9")))
    assert (err.status_code, err.error_code) == (400, "IMG.0001")


def test_glance_show_image_member(ims, alt):
    image = glance_image(ims, unique("member-read"))
    ims.glance_add_image_member(m.GlanceAddImageMemberRequest(
        image_id=image.id, body=m.GlanceAddImageMemberRequestBody(member=alt.project)))
    member = ims.glance_show_image_member(m.GlanceShowImageMemberRequest(image_id=image.id, member_id=alt.project))
    assert (member.image_id, member.member_id, member.status) == (image.id, alt.project, "pending")
    err = error_of(lambda: ims.glance_show_image_member(m.GlanceShowImageMemberRequest(
        image_id=image.id, member_id="nobody")))
    assert err.status_code == 404


# --- the safe-mode twins (v2.1 routes), with a real object storage ------------------------------------

def test_safe_mode_quick_import_data_image_and_export(obs, images_dir):
    ims = Key(obs, "demo").client()
    raw = (images_dir / "disk.raw").read_bytes()
    obs.s3.put_object(Bucket=obs.bucket, Key="safe.raw", Body=raw)

    job = wait_job(ims, ims.import_image_quick_in_safe_mode(m.ImportImageQuickInSafeModeRequest(
        body=m.QuickImportImageByFileRequestBody(name="safe-quick", image_url=f"{obs.bucket}:safe.raw", min_disk=40,
                                                 os_version="CentOS 7.9 64bit"))).job_id)
    assert job.status == "SUCCESS", job
    quick = shown(ims, job.entities.image_id)
    assert quick.name == "safe-quick" and quick.status == "active" and quick.os_version == "CentOS 7.9 64bit"
    assert image_data(obs, quick.id) == raw

    job = wait_job(ims, ims.create_data_image_in_safe_mode(m.CreateDataImageInSafeModeRequest(
        body=m.CreateDataImageRequestBody(name="safe-data", image_url=f"{obs.bucket}:safe.raw", min_disk=40))).job_id)
    assert job.status == "SUCCESS", job
    assert shown(ims, job.entities.image_id).virtual_env_type == "DataImage"

    job = wait_job(ims, ims.export_image_in_safe_mode(m.ExportImageInSafeModeRequest(
        image_id=quick.id, body=m.ExportImageRequestBody(bucket_url=f"{obs.bucket}:out/safe.raw",
                                                         file_format="raw"))).job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsNativeExportImageJob", job
    assert obs.s3.get_object(Bucket=obs.bucket, Key="out/safe.raw")["Body"].read() == raw
    err = error_of(lambda: ims.import_image_quick_in_safe_mode(m.ImportImageQuickInSafeModeRequest(
        body=m.QuickImportImageByFileRequestBody(name="safe-bad", image_url="no-colon", min_disk=40))))
    assert err.error_code == "IMG.0017"
