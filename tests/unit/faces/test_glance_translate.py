import pytest

from vmimage.core.errors import Invalid
from vmimage.core.listing import ListScope
from vmimage.faces.glance_v2.translate import PATCH_V20, PATCH_V21, list_params_to_query, patch_to_changes


def test_in_operator_with_quoted_names():
    q = list_params_to_query([("name", 'in:"a,b",c'), ("status", "in:saving,queued")])
    assert q.any_of == {"name": ["a,b", "c"], "status": ["saving", "queued"]}


def test_sort_syntaxes():
    assert list_params_to_query([("sort", "name:asc,status")]).sort == [("name", "asc"), ("status", "desc")]
    assert list_params_to_query([("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")]).sort == [
        ("name", "asc"), ("size", "asc")]
    with pytest.raises(Invalid):
        list_params_to_query([("sort", "name:asc"), ("sort_dir", "asc")])


def test_filters_and_scope():
    q = list_params_to_query([("visibility", "community"), ("tag", "a"), ("tag", "b"), ("os_distro", "x"),
                              ("size_min", "5"), ("protected", "true"), ("created_at", "gte:2026-01-01T00:00:00Z")])
    assert q.scope == ListScope.COMMUNITY and q.tags == ["a", "b"] and q.properties == {"os_distro": "x"}
    assert q.size_min == 5 and q.equals == {"protected": True} and q.times[0].op == "gte"
    with pytest.raises(Invalid):
        list_params_to_query([("visibility", "everyone")])
    with pytest.raises(Invalid):
        list_params_to_query([("limit", "x")])


def test_patch_media_types():
    v21 = patch_to_changes(PATCH_V21, [{"op": "replace", "path": "/hw_firmware_type", "value": "uefi"}])
    assert (v21[0].op, v21[0].key, v21[0].value) == ("replace", "boot_mode", "uefi")
    v20 = patch_to_changes(PATCH_V20, [{"remove": "/a~1b"}])
    assert (v20[0].op, v20[0].key) == ("remove", "a/b")
    with pytest.raises(Invalid):
        patch_to_changes(PATCH_V20, [{"add": "/a", "remove": "/b", "value": 1}])
    with pytest.raises(Invalid):
        patch_to_changes(PATCH_V21, [{"op": "test", "path": "/a", "value": 1}])
