"""The metadata definitions catalog (/v2/metadefs), driven by openstacksdk and by plain HTTP:
the default catalogue, every route, who may read and change what, and refusals that change
nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest
from openstack import exceptions as sdk_exc

from tests.conftest import sdk_connect, start_server

NS = "/v2/metadefs/namespaces"
CATALOGUE = {"OS::Compute::CPUPinning", "OS::Compute::VirtCPUTopology", "OS::Compute::Watchdog",
             "OS::Compute::Hypervisor", "OS::Compute::LibvirtImage", "OS::OperatingSystem", "OS::Compute::Quota"}
SCHEMAS = {"namespace": "namespace", "namespaces": "namespaces", "object": "object", "objects": "objects",
           "property": "property", "properties": "properties", "tag": "tag", "tags": "tags",
           "resource_type": "resource_type_association", "resource_types": "resource_type_associations"}




def unique(prefix: str = "test-ns") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(server):
    with server.client("admin") as c:
        yield c


@pytest.fixture
def demo(server):
    with server.client("demo") as c:
        yield c


@pytest.fixture
def sdk_admin(server):
    conn = sdk_connect(server, "admin")
    yield conn
    conn.close()


def make_namespace(admin: httpx.Client, **body) -> dict:
    body.setdefault("namespace", unique())
    body.setdefault("visibility", "public")
    resp = admin.post(NS, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def snapshot(admin: httpx.Client, name: str) -> dict:
    """Everything in a namespace, timestamps included: equal before and after a refusal."""
    resp = admin.get(f"{NS}/{name}")
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- the default catalogue -----------------------------------------------------------------------

def test_default_catalogue_is_readable_by_everyone(server):
    reader = sdk_connect(server, "reader")
    try:
        names = {ns.namespace for ns in reader.image.metadef_namespaces()}
        assert CATALOGUE <= names
        types = {rt.name for rt in reader.image.metadef_resource_types()}
        assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"} <= types
        pinning = reader.image.get_metadef_namespace("OS::Compute::CPUPinning")
        assert pinning.is_protected and pinning.visibility == "public"
        assert {(a["name"], a.get("prefix")) for a in pinning.resource_type_associations} >= {
            ("OS::Glance::Image", "hw_"), ("OS::Nova::Flavor", "hw:")}
        flavor_ns = [ns.namespace for ns in reader.image.metadef_namespaces(resource_types="OS::Nova::Flavor")]
        assert "OS::Compute::Quota" in flavor_ns and "OS::Compute::Hypervisor" not in flavor_ns
        props = {p.name: p for p in reader.image.metadef_properties("OS::Compute::Watchdog")}
        assert "disabled" in props["watchdog_action"].enum
    finally:
        reader.close()


def test_catalogue_namespace_seen_through_a_resource_type_prefix(demo):
    quota = demo.get(f"{NS}/OS::Compute::Quota", params={"resource_type": "OS::Nova::Flavor"}).json()
    cpu = next(o for o in quota["objects"] if o["name"] == "CPU Limits")
    assert "quota:cpu_shares" in cpu["properties"]
    pinning = demo.get(f"{NS}/OS::Compute::CPUPinning", params={"resource_type": "OS::Nova::Flavor"}).json()
    assert set(pinning["properties"]) == {"hw:cpu_policy", "hw:cpu_thread_policy"}
    plain = demo.get(f"{NS}/OS::Compute::CPUPinning").json()
    assert "cpu_policy" in plain["properties"]
    resp = demo.get(f"{NS}/OS::Compute::CPUPinning/properties/hw_cpu_policy",
                    params={"resource_type": "OS::Glance::Image"})
    assert resp.status_code == 200 and resp.json()["name"] == "cpu_policy"
    assert demo.get(f"{NS}/OS::Compute::CPUPinning/properties/hw:cpu_policy",
                    params={"resource_type": "OS::Glance::Image"}).status_code == 404
    tags = demo.get(f"{NS}/OS::OperatingSystem/tags").json()["tags"]
    assert {t["name"] for t in tags} == {"linux", "windows", "bsd"}


def test_catalogue_loads_only_what_is_missing_across_restarts(tmp_path, database_factory):
    db = database_factory()
    first = start_server(tmp_path, db, provision=False)
    try:
        with first.client("admin") as c:
            changed = {"namespace": "OS::Compute::Watchdog", "display_name": "Ours now", "visibility": "public",
                       "protected": True}
            assert c.put(f"{NS}/OS::Compute::Watchdog", json=changed).status_code == 200
            unprotect = {"namespace": "OS::Compute::Hypervisor", "visibility": "public", "protected": False}
            assert c.put(f"{NS}/OS::Compute::Hypervisor", json=unprotect).status_code == 200
            assert c.delete(f"{NS}/OS::Compute::Hypervisor").status_code == 204
            before = c.get(NS, params={"limit": 1000}).json()["namespaces"]
    finally:
        first.stop()
    second = start_server(tmp_path, db, provision=False, data_dir=first.data_dir)
    try:
        with second.client("admin") as c:
            after = c.get(NS, params={"limit": 1000}).json()["namespaces"]
            names = [n["namespace"] for n in after]
            assert len(names) == len(set(names)) == len(before) + 1
            assert CATALOGUE <= set(names)
            assert c.get(f"{NS}/OS::Compute::Watchdog").json()["display_name"] == "Ours now"
            assert c.get(f"{NS}/OS::Compute::Hypervisor").json()["protected"] is True
    finally:
        second.stop()


# --- every route through openstacksdk --------------------------------------------------------------

def test_namespace_lifecycle_with_openstacksdk(sdk_admin):
    image = sdk_admin.image
    name = unique()
    created = image.create_metadef_namespace(
        namespace=name, display_name="SDK test", description="made by the tests", visibility="public",
        protected=True, resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "sdk_"}])
    assert created.namespace == name and created.is_protected
    assert name in {ns.namespace for ns in image.metadef_namespaces()}
    assert name in {ns.namespace for ns in image.metadef_namespaces(resource_types="OS::Glance::Image")}
    shown = image.get_metadef_namespace(name)
    assert (shown.display_name, shown.visibility, shown.description) == ("SDK test", "public", "made by the tests")
    assert shown.resource_type_associations[0]["prefix"] == "sdk_"

    with pytest.raises(sdk_exc.ForbiddenException):
        image.delete_metadef_namespace(name, ignore_missing=False)
    assert image.get_metadef_namespace(name).namespace == name

    updated = image.update_metadef_namespace(name, visibility="private", protected=False, display_name="Renamed")
    assert (updated.visibility, updated.is_protected, updated.display_name) == ("private", False, "Renamed")
    image.delete_metadef_namespace(name, ignore_missing=False)
    with pytest.raises(sdk_exc.NotFoundException):
        image.get_metadef_namespace(name)


def test_objects_with_openstacksdk(sdk_admin, admin):
    image = sdk_admin.image
    name = make_namespace(admin)["namespace"]
    props = {"speed": {"title": "Speed", "type": "integer", "minimum": 1}}
    obj = image.create_metadef_object(name, name="Engine", description="an object", required=["speed"],
                                      properties=props)
    assert (obj.name, obj.required) == ("Engine", ["speed"])
    assert image.get_metadef_object("Engine", name).properties == props
    assert [o.name for o in image.metadef_objects(name)] == ["Engine"]
    renamed = image.update_metadef_object("Engine", name, name="Motor", description="renamed",
                                          required=["speed"], properties=props)
    assert renamed.name == "Motor"
    with pytest.raises(sdk_exc.NotFoundException):
        image.get_metadef_object("Engine", name)
    image.create_metadef_object(name, name="Other")
    image.delete_metadef_object("Motor", name)
    assert [o.name for o in image.metadef_objects(name)] == ["Other"]
    image.delete_all_metadef_objects(name)
    assert list(image.metadef_objects(name)) == []
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_properties_with_openstacksdk(sdk_admin, admin):
    image = sdk_admin.image
    name = make_namespace(admin, resource_type_associations=[{"name": "OS::Nova::Flavor", "prefix": "t:"}])["namespace"]
    prop = image.create_metadef_property(name, name="mode", title="Mode", type="string", enum=["a", "b"],
                                         description="how")
    assert (prop.name, prop.title, prop.enum) == ("mode", "Mode", ["a", "b"])
    assert image.get_metadef_property("mode", name).description == "how"
    assert {p.name for p in image.metadef_properties(name)} == {"mode"}
    via_prefix = admin.get(f"{NS}/{name}/properties/t:mode", params={"resource_type": "OS::Nova::Flavor"})
    assert via_prefix.status_code == 200 and via_prefix.json()["name"] == "mode"
    updated = image.update_metadef_property("mode", name, name="mode", title="Mode 2", type="string",
                                            enum=["a", "b", "c"])
    assert (updated.title, updated.enum) == ("Mode 2", ["a", "b", "c"])
    image.create_metadef_property(name, name="size", title="Size", type="integer", minimum=0, maximum=10)
    image.delete_metadef_property("mode", name, ignore_missing=False)
    assert {p.name for p in image.metadef_properties(name)} == {"size"}
    image.delete_all_metadef_properties(name)
    assert list(image.metadef_properties(name)) == []
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_tags_with_openstacksdk(sdk_admin, admin):
    image = sdk_admin.image
    name = make_namespace(admin)["namespace"]
    image.add_tag_to_metadef_namespace(name, "one")
    ns = image.get_metadef_namespace(name)
    ns.set_tags(image, ["two", "three"])                 # replaces
    assert {t["name"] for t in admin.get(f"{NS}/{name}/tags").json()["tags"]} == {"two", "three"}
    ns.set_tags(image, ["four"], append=True)
    assert {t["name"] for t in admin.get(f"{NS}/{name}/tags").json()["tags"]} == {"two", "three", "four"}
    image.remove_tag_from_metadef_namespace(name, "two")
    assert {t["name"] for t in admin.get(f"{NS}/{name}/tags").json()["tags"]} == {"three", "four"}
    image.remove_tags_from_metadef_namespace(name)
    assert admin.get(f"{NS}/{name}/tags").json()["tags"] == []
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_python_glanceclient_validates_against_our_schemas(server, admin):
    """glanceclient builds its metadef models from /v2/schemas/metadefs/* and checks every
    request and answer against them; its updates send back the whole shown entity."""
    from glanceclient import Client
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=f"{server.url}/identity/v3", username="admin", password="admin",
                       project_name="admin", user_domain_name="Default", project_domain_name="Default")
    gc = Client("2", session=session.Session(auth=auth))
    name = unique("gc")
    gc.metadefs_namespace.create(namespace=name, visibility="public", display_name="GC",
                                 resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "gc_"}])
    gc.metadefs_object.create(name, name="obj", properties={"a": {"title": "A", "type": "string"}})
    gc.metadefs_property.create(name, name="prop", title="Prop", type="string", enum=["x", "y"])
    assert [t.name for t in gc.metadefs_tag.create_multiple(name, tags=["t1", "t2"])] == ["t1", "t2"]
    gc.metadefs_tag.create(name, "t3")
    # The namespace now shows objects, properties and tags; its update sends them all back.
    updated = gc.metadefs_namespace.update(name, display_name="GC 2", description="updated")
    assert (updated.display_name, updated.description) == ("GC 2", "updated")
    assert len(updated.objects) == 1 and set(updated.properties) == {"prop"}
    assert gc.metadefs_object.update(name, "obj", description="an object").description == "an object"
    assert gc.metadefs_property.update(name, "prop", title="Prop 2").title == "Prop 2"
    assert gc.metadefs_tag.update(name, "t3", name="t4").name == "t4"
    assert {t.name for t in gc.metadefs_tag.list(name)} == {"t1", "t2", "t4"}
    assert [p.name for p in gc.metadefs_property.list(name)] == ["prop"]
    assert [o.name for o in gc.metadefs_object.list(name)] == ["obj"]
    assert "OS::Glance::Image" in {r.name for r in gc.metadefs_resource_type.list()}
    gc.metadefs_resource_type.associate(name, name="OS::Nova::Flavor", prefix="gc:")
    assert {r.name for r in gc.metadefs_resource_type.get(name)} == {"OS::Glance::Image", "OS::Nova::Flavor"}
    gc.metadefs_resource_type.deassociate(name, "OS::Nova::Flavor")
    assert name in {n.namespace for n in gc.metadefs_namespace.list()}
    gc.metadefs_namespace.delete(name)
    assert admin.get(f"{NS}/{name}").status_code == 404


def test_tag_routes_over_http(admin):
    name = make_namespace(admin)["namespace"]
    resp = admin.post(f"{NS}/{name}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert resp.status_code == 201 and {t["name"] for t in resp.json()["tags"]} == {"a", "b"}
    one = admin.post(f"{NS}/{name}/tags/c")
    assert one.status_code == 201 and one.json()["name"] == "c" and one.json()["created_at"].endswith("Z")
    assert admin.get(f"{NS}/{name}/tags/c").json()["name"] == "c"
    renamed = admin.put(f"{NS}/{name}/tags/c", json={"name": "d"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "d"
    assert admin.get(f"{NS}/{name}/tags/c").status_code == 404
    assert admin.delete(f"{NS}/{name}/tags/d").status_code == 204
    listed = admin.get(f"{NS}/{name}/tags", params={"sort_key": "name", "sort_dir": "asc"}).json()["tags"]
    assert [t["name"] for t in listed] == ["a", "b"]
    assert admin.get(f"{NS}/{name}").json()["tags"] == [{"name": "a"}, {"name": "b"}]
    assert admin.delete(f"{NS}/{name}/tags").status_code == 204
    assert admin.get(f"{NS}/{name}/tags").json() == {"tags": []}
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_resource_type_associations_with_openstacksdk(sdk_admin, admin):
    image = sdk_admin.image
    name = make_namespace(admin)["namespace"]
    made = image.create_metadef_resource_type_association(name, name="OS::Nova::Flavor", prefix="x:",
                                                          properties_target="extra")
    assert (made.name, made.prefix, made.properties_target) == ("OS::Nova::Flavor", "x:", "extra")
    assert [a.name for a in image.metadef_resource_type_associations(name)] == ["OS::Nova::Flavor"]
    # An unknown resource type comes into being with its first association.
    image.create_metadef_resource_type_association(name, name="Test::New::Type")
    assert "Test::New::Type" in {rt.name for rt in image.metadef_resource_types()}
    image.delete_metadef_resource_type_association("OS::Nova::Flavor", name, ignore_missing=False)
    assert [a.name for a in image.metadef_resource_type_associations(name)] == ["Test::New::Type"]
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_namespace_created_whole_and_shown_whole(admin):
    body = {"namespace": unique(), "visibility": "public", "display_name": "Whole",
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "w_"}],
            "properties": {"alpha": {"title": "Alpha", "type": "boolean"}},
            "objects": [{"name": "Obj", "properties": {"beta": {"title": "Beta", "type": "string"}},
                         "required": ["beta"]}],
            "tags": [{"name": "t1"}, {"name": "t2"}]}
    resp = admin.post(NS, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{NS}/{body['namespace']}"
    shown = admin.get(f"{NS}/{body['namespace']}").json()
    assert shown["properties"] == {"alpha": {"title": "Alpha", "type": "boolean"}}
    assert shown["objects"][0]["self"] == f"{NS}/{body['namespace']}/objects/Obj"
    assert {t["name"] for t in shown["tags"]} == {"t1", "t2"}
    assert shown["schema"] == "/v2/schemas/metadefs/namespace" and "owner" in shown
    prefixed = admin.get(f"{NS}/{body['namespace']}", params={"resource_type": "OS::Glance::Image"}).json()
    assert set(prefixed["properties"]) == {"w_alpha"} and prefixed["objects"][0]["required"] == ["w_beta"]
    # What is shown can be imported again (what the service generates inside is ignored).
    copy = {k: v for k, v in shown.items() if k not in ("self", "schema", "created_at", "updated_at")}
    copy["namespace"] = unique("copy")
    resp = admin.post(NS, json=copy)
    assert resp.status_code == 201, resp.text
    again = admin.get(f"{NS}/{copy['namespace']}").json()
    assert again["properties"] == shown["properties"] and again["objects"][0]["required"] == ["beta"]
    assert {t["name"] for t in again["tags"]} == {"t1", "t2"}
    for name in (body["namespace"], copy["namespace"]):
        assert admin.delete(f"{NS}/{name}").status_code == 204


def test_namespace_rename_and_list_paging(admin):
    names = [make_namespace(admin, namespace=unique("page"))["namespace"] for _ in range(3)]
    renamed = unique("renamed")
    resp = admin.put(f"{NS}/{names[0]}", json={"namespace": renamed, "visibility": "public"})
    assert resp.status_code == 200 and resp.json()["self"] == f"{NS}/{renamed}"
    assert admin.get(f"{NS}/{names[0]}").status_code == 404
    names[0] = renamed

    seen, url, pages = [], NS + "?limit=2&sort_key=namespace&sort_dir=asc", 0
    while url:
        body = admin.get(url).json()
        assert body["schema"] == "/v2/schemas/metadefs/namespaces"
        assert len(body["namespaces"]) <= 2
        seen += [n["namespace"] for n in body["namespaces"]]
        url, pages = body.get("next"), pages + 1
    assert seen == sorted(seen) and len(seen) == len(set(seen)) and set(names) <= set(seen) and pages > 1
    assert admin.get(NS, params={"marker": "no-such-ns"}).status_code == 404
    for name in names:
        assert admin.delete(f"{NS}/{name}").status_code == 204


@pytest.mark.parametrize("name, title", sorted(SCHEMAS.items()))
def test_schemas(server, demo, name, title):
    resp = demo.get(f"/v2/schemas/metadefs/{name}")
    assert resp.status_code == 200 and resp.json()["name"] == title


def test_schemas_through_openstacksdk(sdk_admin):
    image = sdk_admin.image
    assert "namespace" in image.get_metadef_namespace_schema().properties
    assert image.get_metadef_property_schema().required == ["type", "title", "name"]
    assert "tags" in image.get_metadef_tags_schema().properties
    assert "resource_type_associations" in image.get_metadef_resource_types_schema().properties


# --- who may read and change what --------------------------------------------------------------

def test_private_namespaces_are_their_projects_only(server, admin, demo):
    theirs = make_namespace(admin, visibility="private")["namespace"]
    ours = make_namespace(admin, visibility="private", owner=server.project_id("demo"))["namespace"]
    public = make_namespace(admin)["namespace"]
    listed = {n["namespace"] for n in demo.get(NS, params={"limit": 1000}).json()["namespaces"]}
    assert public in listed and ours in listed and theirs not in listed
    for path in ("", "/objects", "/properties", "/tags", "/resource_types"):
        assert demo.get(f"{NS}/{theirs}{path}").status_code == 404
        assert demo.get(f"{NS}/{ours}{path}").status_code == 200
    with server.client("reader") as reader:
        assert reader.get(f"{NS}/{ours}").status_code == 200
    with server.client("alt") as alt:
        assert alt.get(f"{NS}/{ours}").status_code == 404
        assert alt.get(f"{NS}/{public}").status_code == 200
    # Owning a namespace does not let a project change it: that is an administrator's.
    before = snapshot(admin, ours)
    assert demo.put(f"{NS}/{ours}", json={"namespace": ours}).status_code == 403
    assert demo.post(f"{NS}/{ours}/tags/x").status_code == 403
    assert demo.delete(f"{NS}/{ours}").status_code == 403
    # Changing what one cannot see answers 404, not 403.
    assert demo.delete(f"{NS}/{theirs}").status_code == 404
    assert snapshot(admin, ours) == before
    for name in (theirs, ours, public):
        assert admin.delete(f"{NS}/{name}").status_code == 204


def test_non_admins_change_nothing(server, admin, demo):
    name = make_namespace(admin, properties={"p": {"title": "P", "type": "string"}},
                          objects=[{"name": "o"}], tags=[{"name": "t"}],
                          resource_type_associations=[{"name": "OS::Glance::Image"}])["namespace"]
    before = snapshot(admin, name)
    attempts = [
        ("POST", NS, {"namespace": unique()}),
        ("PUT", f"{NS}/{name}", {"namespace": name, "visibility": "private"}),
        ("DELETE", f"{NS}/{name}", None),
        ("POST", f"{NS}/{name}/objects", {"name": "o2"}),
        ("PUT", f"{NS}/{name}/objects/o", {"name": "o3"}),
        ("DELETE", f"{NS}/{name}/objects/o", None),
        ("DELETE", f"{NS}/{name}/objects", None),
        ("POST", f"{NS}/{name}/properties", {"name": "q", "title": "Q", "type": "string"}),
        ("PUT", f"{NS}/{name}/properties/p", {"name": "p", "title": "P2", "type": "string"}),
        ("DELETE", f"{NS}/{name}/properties/p", None),
        ("DELETE", f"{NS}/{name}/properties", None),
        ("POST", f"{NS}/{name}/tags", {"tags": [{"name": "u"}]}),
        ("POST", f"{NS}/{name}/tags/u", None),
        ("PUT", f"{NS}/{name}/tags/t", {"name": "u"}),
        ("DELETE", f"{NS}/{name}/tags/t", None),
        ("DELETE", f"{NS}/{name}/tags", None),
        ("POST", f"{NS}/{name}/resource_types", {"name": "OS::Nova::Flavor"}),
        ("DELETE", f"{NS}/{name}/resource_types/OS::Glance::Image", None),
    ]
    count = len(admin.get(NS, params={"limit": 1000}).json()["namespaces"])
    for persona in ("demo", "reader"):
        with server.client(persona) as c:
            for method, path, body in attempts:
                resp = c.request(method, path, json=body)
                assert resp.status_code == 403, (persona, method, path, resp.text)
                assert resp.json()["error"]["code"] == 403
    assert snapshot(admin, name) == before
    assert len(admin.get(NS, params={"limit": 1000}).json()["namespaces"]) == count
    assert httpx.get(f"{server.url}{NS}").status_code == 401
    assert admin.delete(f"{NS}/{name}").status_code == 204


# --- refusals ----------------------------------------------------------------------------------

def test_duplicates_conflict_and_change_nothing(admin):
    name = make_namespace(admin, properties={"p": {"title": "P", "type": "string"}},
                          objects=[{"name": "o"}, {"name": "o2"}], tags=[{"name": "t"}, {"name": "t2"}],
                          resource_type_associations=[{"name": "OS::Glance::Image"}])["namespace"]
    other = make_namespace(admin)["namespace"]
    before = snapshot(admin, name)
    conflicts = [
        ("POST", NS, {"namespace": name}),
        ("PUT", f"{NS}/{other}", {"namespace": name}),
        ("POST", f"{NS}/{name}/objects", {"name": "o"}),
        ("PUT", f"{NS}/{name}/objects/o2", {"name": "o"}),
        ("POST", f"{NS}/{name}/properties", {"name": "p", "title": "P", "type": "string"}),
        ("POST", f"{NS}/{name}/tags/t", None),
        ("PUT", f"{NS}/{name}/tags/t2", {"name": "t"}),
        ("POST", f"{NS}/{name}/tags", {"tags": [{"name": "x"}, {"name": "x"}]}),
        ("POST", f"{NS}/{name}/resource_types", {"name": "OS::Glance::Image"}),
    ]
    for method, path, body in conflicts:
        resp = admin.request(method, path, json=body)
        assert resp.status_code == 409, (method, path, resp.text)
        assert resp.json()["error"]["title"] == "Conflict"
    appended = admin.post(f"{NS}/{name}/tags", json={"tags": [{"name": "t"}]}, headers={"X-Openstack-Append": "true"})
    assert appended.status_code == 409
    assert snapshot(admin, name) == before
    assert admin.get(f"{NS}/{other}").status_code == 200
    # A namespace whose content clashes is not created at all.
    clash = unique()
    assert admin.post(NS, json={"namespace": clash, "objects": [{"name": "a"}, {"name": "a"}]}).status_code == 409
    assert admin.get(f"{NS}/{clash}").status_code == 404
    for n in (name, other):
        assert admin.delete(f"{NS}/{n}").status_code == 204


def test_protected_namespace_keeps_everything(admin):
    name = make_namespace(admin, protected=True, properties={"p": {"title": "P", "type": "string"}},
                          objects=[{"name": "o"}], tags=[{"name": "t"}],
                          resource_type_associations=[{"name": "OS::Glance::Image"}])["namespace"]
    before = snapshot(admin, name)
    for path in ("", "/objects/o", "/objects", "/properties/p", "/properties", "/tags/t", "/tags",
                 "/resource_types/OS::Glance::Image"):
        resp = admin.delete(f"{NS}/{name}{path}")
        assert resp.status_code == 403, (path, resp.text)
    # Replacing the tags would delete the existing ones.
    assert admin.post(f"{NS}/{name}/tags", json={"tags": [{"name": "new"}]}).status_code == 403
    assert snapshot(admin, name) == before
    # Adding and changing stay allowed.
    assert admin.post(f"{NS}/{name}/tags/extra").status_code == 201
    assert admin.put(f"{NS}/{name}", json={"namespace": name, "visibility": "public"}).json()["protected"] is False
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_unknown_things_are_not_found(admin):
    name = make_namespace(admin)["namespace"]
    missing = [
        ("GET", f"{NS}/no-such-ns", None), ("PUT", f"{NS}/no-such-ns", {"namespace": "no-such-ns"}),
        ("DELETE", f"{NS}/no-such-ns", None), ("GET", f"{NS}/no-such-ns/objects", None),
        ("POST", f"{NS}/no-such-ns/objects", {"name": "o"}), ("GET", f"{NS}/no-such-ns/properties", None),
        ("GET", f"{NS}/no-such-ns/tags", None), ("POST", f"{NS}/no-such-ns/tags/t", None),
        ("GET", f"{NS}/no-such-ns/resource_types", None),
        ("POST", f"{NS}/no-such-ns/resource_types", {"name": "OS::Glance::Image"}),
        ("GET", f"{NS}/{name}/objects/nope", None), ("PUT", f"{NS}/{name}/objects/nope", {"name": "x"}),
        ("DELETE", f"{NS}/{name}/objects/nope", None), ("GET", f"{NS}/{name}/properties/nope", None),
        ("PUT", f"{NS}/{name}/properties/nope", {"name": "nope", "title": "N", "type": "string"}),
        ("DELETE", f"{NS}/{name}/properties/nope", None), ("GET", f"{NS}/{name}/tags/nope", None),
        ("PUT", f"{NS}/{name}/tags/nope", {"name": "x"}), ("DELETE", f"{NS}/{name}/tags/nope", None),
        ("DELETE", f"{NS}/{name}/resource_types/OS::Nova::Flavor", None),
        ("GET", f"{NS}/{name}/properties/x", None),
        ("GET", "/v2/schemas/metadefs/nope", None),
    ]
    for method, path, body in missing:
        resp = admin.request(method, path, json=body)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["error"]["code"] == 404
    resp = admin.get(f"{NS}/{name}/properties/p", params={"resource_type": "OS::Glance::Image"})
    assert resp.status_code == 404     # not associated with that resource type
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_bad_bodies_are_refused_and_change_nothing(admin):
    name = make_namespace(admin, properties={"p": {"title": "P", "type": "string"}}, objects=[{"name": "o"}],
                          tags=[{"name": "t"}])["namespace"]
    before = snapshot(admin, name)
    count = len(admin.get(NS, params={"limit": 1000}).json()["namespaces"])
    bad = [
        ("POST", NS, b"{not json"),
        ("POST", NS, b"[1, 2]"),
        ("POST", NS, b""),
        ("POST", NS, {"display_name": "no namespace"}),
        ("POST", NS, {"namespace": ""}),
        ("POST", NS, {"namespace": "x" * 81}),
        ("POST", NS, {"namespace": "a/b"}),
        ("POST", NS, {"namespace": unique(), "visibility": "shared"}),
        ("POST", NS, {"namespace": unique(), "protected": "yes"}),
        ("POST", NS, {"namespace": unique(), "bogus": 1}),
        ("POST", NS, {"namespace": unique(), "properties": {"q": {"title": "Q"}}}),
        ("POST", NS, {"namespace": unique(), "properties": {"q": {"title": "Q", "type": "colour"}}}),
        ("POST", NS, {"namespace": unique(), "tags": "t"}),
        ("PUT", f"{NS}/{name}", {"visibility": "public"}),
        ("PUT", f"{NS}/{name}", {"namespace": name, "description": "d" * 501}),
        ("POST", f"{NS}/{name}/objects", {"description": "no name"}),
        ("POST", f"{NS}/{name}/objects", {"name": "o9", "required": "speed"}),
        ("PUT", f"{NS}/{name}/objects/o", {"name": "o", "properties": {"x": {"type": "string"}}}),
        ("POST", f"{NS}/{name}/properties", {"title": "no name", "type": "string"}),
        ("POST", f"{NS}/{name}/properties", {"name": "q", "title": "Q", "type": "integer", "minimum": 5,
                                             "maximum": 1}),
        ("POST", f"{NS}/{name}/properties", {"name": "q", "title": "Q", "type": "string", "pattern": "(["}),
        ("POST", f"{NS}/{name}/properties", {"name": "q", "title": "Q", "type": "string", "minLength": -1}),
        ("PUT", f"{NS}/{name}/properties/p", {"title": "P", "type": "string"}),
        ("POST", f"{NS}/{name}/tags", {"tags": [{"label": "x"}]}),
        ("POST", f"{NS}/{name}/tags", {"tags": [{"name": "ok"}], "more": 1}),
        ("PUT", f"{NS}/{name}/tags/t", {"name": ""}),
        ("PUT", f"{NS}/{name}/tags/t", {}),
        ("POST", f"{NS}/{name}/resource_types", {"prefix": "x"}),
        ("GET", NS + "?limit=abc", None),
        ("GET", NS + "?limit=-1", None),
        ("GET", NS + "?sort_key=color", None),
        ("GET", NS + "?sort_dir=up", None),
        ("GET", NS + "?visibility=shared", None),
    ]
    for method, path, body in bad:
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        resp = admin.request(method, path, headers={"Content-Type": "application/json"}, **kwargs)
        assert resp.status_code == 400, (method, path, body, resp.text)
        assert resp.json()["error"]["code"] == 400
    # Attributes the server generates are refused as Glance does, with 403.
    for path, body in ((NS, {"namespace": unique(), "self": "/x"}),
                       (f"{NS}/{name}/objects", {"name": "o5", "created_at": "2020-01-01T00:00:00Z"}),
                       (f"{NS}/{name}/properties", {"name": "q", "title": "Q", "type": "string",
                                                    "updated_at": "2020-01-01T00:00:00Z"})):
        assert admin.post(path, json=body).status_code == 403
    assert snapshot(admin, name) == before
    assert len(admin.get(NS, params={"limit": 1000}).json()["namespaces"]) == count
    assert admin.delete(f"{NS}/{name}").status_code == 204


def test_wrong_method_is_405_with_allow(admin):
    resp = admin.patch(NS)
    assert resp.status_code == 405 and set(resp.headers["allow"].split(", ")) >= {"GET", "POST"}
