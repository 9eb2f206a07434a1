import pytest

from vmimage.core import metadef_catalogue
from vmimage.core import metadefs as md
from vmimage.core.errors import Forbidden, Invalid, NotFound, Protected
from vmimage.core.policy import Caller

ADMIN = Caller("a", "admin-project", frozenset({"admin", "member", "reader"}))
MEMBER = Caller("u", "p", frozenset({"member", "reader"}))


def ns(**kw) -> md.Namespace:
    return md.Namespace(**{"id": "1", "namespace": "n", **kw})


def test_visibility_rules():
    assert md.can_read(MEMBER, ns(visibility="public", owner="q"))
    assert md.can_read(MEMBER, ns(visibility="private", owner="p"))
    assert md.can_read(MEMBER, ns(visibility="private", owner=None))     # the service's own catalogue
    assert not md.can_read(MEMBER, ns(visibility="private", owner="q"))
    assert md.can_read(ADMIN, ns(visibility="private", owner="q"))
    with pytest.raises(NotFound):
        md.check_readable(MEMBER, ns(visibility="private", owner="q"), "n")
    with pytest.raises(NotFound):
        md.check_readable(MEMBER, None, "n")


def test_changes_are_an_admins_and_protected_content_stays():
    md.require_metadef_admin(ADMIN, "x")
    with pytest.raises(Forbidden):
        md.require_metadef_admin(MEMBER, "x")
    md.check_deletable(ns(protected=False), "tags")
    with pytest.raises(Protected):
        md.check_deletable(ns(protected=True))
    assert issubclass(Protected, Forbidden)


def test_namespace_spec_validation():
    spec = md.namespace_spec({"namespace": "a", "properties": {"p": {"title": "P", "type": "string"}},
                              "objects": [{"name": "o", "required": ["p"]}], "tags": [{"name": "t"}],
                              "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "x_"}]})
    assert spec.properties == {"p": {"title": "P", "type": "string"}}
    assert (spec.objects[0].name, spec.tags, spec.associations[0].prefix) == ("o", ["t"], "x_")
    # Content shown by the service, sent back: generated attributes inside are ignored, and an
    # update leaves the content out altogether.
    shown = md.namespace_spec({"namespace": "a", "objects": [{"name": "o", "self": "/x", "created_at": "t"}],
                               "resource_type_associations": [{"name": "R", "updated_at": "t"}]})
    assert shown.objects[0].name == "o" and shown.associations[0].name == "R"
    assert md.namespace_spec({"namespace": "a", "objects": "junk"}, with_content=False).objects == []
    for body in ({}, {"namespace": ""}, {"namespace": "a/b"}, {"namespace": "x" * 81},
                 {"namespace": "a", "visibility": "shared"}, {"namespace": "a", "protected": 1},
                 {"namespace": "a", "extra": 1}, {"namespace": "a", "objects": {}},
                 {"namespace": "a", "description": "d" * 501}, "a"):
        with pytest.raises(Invalid):
            md.namespace_spec(body)


def test_property_definition_validation():
    name, definition = md.property_definition({"name": "p", "title": "P", "type": "integer", "minimum": 1,
                                               "maximum": 3, "description": None})
    assert (name, definition) == ("p", {"title": "P", "type": "integer", "minimum": 1, "maximum": 3})
    assert md.property_definition({"title": "T", "type": "array", "items": {"type": "string"}}, "k")[0] == "k"
    for bad in ({"title": "P", "type": "string"},                       # no name
                {"name": "p", "type": "string"},                        # no title
                {"name": "p", "title": "P", "type": "text"},
                {"name": "p", "title": "P", "type": "string", "maxLength": -1},
                {"name": "p", "title": "P", "type": "string", "minLength": 3, "maxLength": 2},
                {"name": "p", "title": "P", "type": "string", "pattern": "("},
                {"name": "p", "title": "P", "type": "boolean", "readonly": "no"},
                {"name": "p", "title": "P", "type": "array", "items": {"type": "text"}},
                {"name": "p", "title": "P", "type": "string", "colour": "red"}):
        with pytest.raises(Invalid):
            md.property_definition(bad)


def test_a_list_query_takes_the_list_default_limit_and_keeps_the_marker():
    # The order and the marker are the database's (tests/integration/test_metadef_listing.py).
    query = md.ListQuery(sort_key="namespace", sort_dir="asc", marker="c")
    query.validate(md.NAMESPACE_SORT_KEYS, md.DEFAULT_LIMIT)
    assert (query.page.limit, query.page.marker) == (md.DEFAULT_LIMIT, "c")
    listed = md.NamespaceQuery.of(query, visibility="public")
    assert (listed.sort_key, listed.sort_dir, listed.page, listed.visibility) == ("namespace", "asc", query.page,
                                                                                    "public")
    every = md.ListQuery()
    every.validate(md.CHILD_SORT_KEYS, None)
    assert every.page.limit is None and every.page.marker is None
    for bad in (md.ListQuery(sort_key="owner_id"), md.ListQuery(sort_dir="up"), md.ListQuery(limit=-1)):
        with pytest.raises(Invalid):
            bad.validate(md.NAMESPACE_SORT_KEYS, 25)
    clamped = md.ListQuery(limit=10 ** 6)
    clamped.validate(md.NAMESPACE_SORT_KEYS, 25)
    assert clamped.limit == md.MAX_LIMIT


def test_prefix_of_a_resource_type_applies_to_property_names():
    content = md.NamespaceContent(
        ns(), associations=[md.Association("1", "OS::Nova::Flavor", prefix="hw:")],
        objects=[md.MetadefObject("o", "1", "obj", required=["a"], properties={"a": {"title": "A", "type": "string"}})],
        properties=[md.MetadefProperty("p", "1", "b", {"title": "B", "type": "string"})])
    seen = md.prefixed(content, "OS::Nova::Flavor")
    assert [p.name for p in seen.properties] == ["hw:b"]
    assert seen.objects[0].required == ["hw:a"] and list(seen.objects[0].properties) == ["hw:a"]
    assert md.prefixed(content, "OS::Glance::Image") is content
    assert content.properties[0].name == "b"    # the stored content is left as it is


def test_default_catalogue_is_valid_and_uses_known_resource_types():
    known = set(metadef_catalogue.resource_types())
    spaces = metadef_catalogue.namespaces()
    assert len(spaces) >= 5 and len({s.namespace for s in spaces}) == len(spaces)
    for spec in spaces:
        assert spec.visibility == "public" and spec.protected and spec.owner is None
        assert spec.associations and {a.name for a in spec.associations} <= known
        assert spec.properties or spec.objects
