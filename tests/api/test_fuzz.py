"""A bounded fuzz run over the Glance, Keystone, native and Aries routes: no 5xx, ever, and
every refusal in its face's envelope (issue 11, "Done when").

Hypothesis draws a route, then a body: a valid template with keys dropped, values replaced
by arbitrary JSON (huge and negative integers, strings for booleans, lists for ids, deep
nesting...) and unknown keys added, or raw bytes. derandomize keeps CI's run the same from one
run to the next; VMIMAGE_FUZZ_EXAMPLES (examples per face, default 120) and
VMIMAGE_FUZZ_RANDOM=1 widen it for a longer hunt.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth_body, start_server

EXAMPLES = int(os.environ.get("VMIMAGE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("VMIMAGE_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck))

WORDS = ["", "x" * 256, "no", "yes", "true", "0", "-1", "vdb", "vda", "ssd.gp1", "hdd.std1", "local", "cloud",
         "linux", "windows", "raw", "qcow2", "vmdk", "bare", "ovf", "public", "shared", "private", "community",
         "accepted", "rejected", "glance-direct", "web-download", "copy-image", "import", "system", "whole",
         "auto", "Default", "demo", "password", "token", "../etc/passwd", "\u0000", "é", "in:a,b", "gt:2020"]
NASTY = [1 << 64, 1 << 63, 1 << 31, -1, 0, "no", "x" * 10000, ["x"], {"id": "x"}, True, None, 1.5, ""]
leaves = st.one_of(st.none(), st.booleans(), st.integers(-1000, 100000),
                   st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False),
                   st.text(max_size=12), st.sampled_from(WORDS))


def json_values(keys: list[str]) -> st.SearchStrategy:
    names = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(names, inner, max_size=4), max_leaves=12)


def vocabulary(template: Any) -> list[str]:
    found: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            found += [key, *vocabulary(value)]
    elif isinstance(template, list):
        for value in template:
            found += vocabulary(value)
    return found


def mutate(data, template: Any, keys: list[str]) -> Any:
    roll = data.draw(st.integers(0, 7))
    if roll == 0:
        return data.draw(json_values(keys))
    if roll == 1:
        return data.draw(st.sampled_from(NASTY))
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if data.draw(st.integers(0, 6)) != 0:
                out[key] = mutate(data, value, keys)
        out.update(data.draw(st.dictionaries(st.sampled_from(keys or ["x"]), json_values(keys), max_size=2)))
        return out
    if isinstance(template, list):
        return [mutate(data, value, keys) for value in template]
    return template


@dataclass
class Route:
    method: str
    path: str                       # {image}, {volume}, {server}, {snapshot}, {member}, {word}
    template: Any = None            # None: no body
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)   # name -> template value


IMAGE = {"name": "fuzz", "disk_format": "raw", "container_format": "bare", "min_disk": 0, "min_ram": 0,
         "protected": False, "visibility": "private", "tags": ["a"], "os_hidden": False, "prop": "v"}
PATCH = [{"op": "replace", "path": "/name", "value": "n"}, {"op": "add", "path": "/min_ram", "value": 1},
         {"op": "remove", "path": "/prop"}, {"op": "add", "path": "/locations/-",
                                             "value": {"url": "file:///etc/passwd", "metadata": {}}}]
GLANCE = [
    Route("POST", "/v2/images", IMAGE),
    Route("PATCH", "/v2/images/{image}", PATCH,
          headers={"Content-Type": "application/openstack-images-v2.1-json-patch"}),
    Route("GET", "/v2/images", query={"limit": 5, "marker": "x", "sort_key": "name", "sort_dir": "asc",
                                      "sort": "name:asc", "visibility": "all", "size_min": 1, "size_max": 9,
                                      "created_at": "gt:2020-01-01T00:00:00Z", "name": "in:a,b",
                                      "min_disk": 1, "os_hidden": "true", "protected": "no", "tag": "a"}),
    Route("GET", "/v2/images/{image}"),
    Route("POST", "/v2/images/{image}/members", {"member": "alt"}),
    Route("PUT", "/v2/images/{image}/members/{member}", {"status": "accepted"}),
    Route("POST", "/v2/images/{image}/import", {"method": {"name": "glance-direct", "uri": "http://127.0.0.1/"},
                                                 "stores": ["file"], "all_stores": False,
                                                 "all_stores_must_succeed": True}),
    Route("PUT", "/v2/images/{image}/tags/{word}"),
    Route("POST", "/v2/tasks", {"type": "import", "input": {"import_from": "http://127.0.0.1/x",
                                                           "import_from_format": "raw",
                                                           "image_properties": IMAGE}}),
    Route("GET", "/v2/tasks", query={"limit": 3, "status": "pending", "type": "import", "sort_dir": "asc"}),
    Route("POST", "/v2/metadefs/namespaces", {"namespace": "fuzz", "display_name": "F", "visibility": "public",
                                              "protected": False, "properties": {"p": {"type": "string",
                                                                                       "title": "P"}}}),
    Route("GET", "/v2/metadefs/namespaces", query={"limit": 2, "marker": "x", "resource_types": "OS::Glance::Image"}),
    Route("PUT", "/v2/cache/{image}"),
    Route("POST", "/identity/v3/auth/tokens", auth_body("demo", "demo", "demo")),
]
V1 = "/vmimage/v1"
NATIVE = [
    Route("POST", f"{V1}/servers", {"name": "s", "image_id": "x", "start": False, "memory_mb": 128,
                                    "cpu_count": 1, "system_disk": {"size_gb": 1, "category": "local",
                                                                    "type": "ssd.gp1"},
                                    "data_disks": [{"device": "vdb", "size_gb": 1, "snapshot_id": "snap-x",
                                                    "category": "cloud", "encrypted": False}]}),
    Route("POST", f"{V1}/volumes", {"name": "v", "size_gb": 1, "type": "ssd.gp1", "snapshot_id": "snap-x",
                                    "encrypted": False}),
    Route("POST", f"{V1}/volumes/{{volume}}/attach", {"server_id": "i-x", "device": "vdc"}),
    Route("POST", f"{V1}/volumes/{{volume}}/detach"),
    Route("POST", f"{V1}/volumes/{{volume}}/images", {"name": "vi", "description": "d"}),
    Route("POST", f"{V1}/snapshots", {"volume_id": "vol-x", "name": "sn"}),
    Route("POST", f"{V1}/servers/{{server}}/images", {"name": "si", "kind": "whole", "description": "d",
                                                       "data_disks": [{"device": "vdb", "exclude": True},
                                                                      {"device": "vdc", "size_gb": 2}]}),
    Route("POST", f"{V1}/servers/{{server}}/actions/{{word}}"),
    Route("GET", f"{V1}/volumes/{{volume}}"),
    Route("GET", f"{V1}/jobs/{{word}}"),
]
ARIES = [
    Route("POST", "/image/create", {"name": "a", "os_type": "linux", "os_name": "debian", "description": "d",
                                    "uuid": "u-1", "source_path": "/nonexistent/x.qcow2"}),
    Route("PUT", "/image", {"id": 1, "name": "b", "os_type": "linux", "os_name": "x", "description": "d"}),
    Route("GET", "/image/list", query={"os_type": "linux", "os_name": "deb"}),
    Route("GET", "/image/{word}"),
    Route("DELETE", "/image/delete", query={"image_ref": "img-x"}),
    Route("POST", "/server/create", {"name": "auto", "compute": {"cpu_core_count": 1, "memory_size": 128},
                                     "storage": {"volumes": [{"type": 0, "size": 1, "image_ref": "img-x"},
                                                             {"type": 1, "size": 1}]},
                                     "option": {"boot_when_created": False}}),
    Route("GET", "/server", query={"status": "running", "name": "x", "page": 1, "page_size": 10}),
    Route("POST", "/server/{word}", query={"server_ref": "i-x"}),
    Route("POST", "/volume/create", {"name": "v", "type": 1, "size": 1}),
    Route("DELETE", "/volume/delete", query={"volume_ref": "vol-x"}),
]


@pytest.fixture(scope="module")
def target(tmp_path_factory, database_factory):
    """A server of its own (the fuzz run creates and deletes freely), with one of each entity."""
    srv = start_server(tmp_path_factory.mktemp("fuzz"), database_factory())
    with srv.client("demo") as http:
        image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare",
                                              "visibility": "shared"}).json()["id"]
        volume = http.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"]["id"]
    ids = {"image": [image, "00000000-0000-0000-0000-000000000000"], "volume": [volume, "vol-missing"],
           "server": ["i-missing"], "snapshot": ["snap-missing"], "member": [srv.project_id("alt"), "nobody"]}
    yield srv, ids
    srv.stop()


def fill(data, path: str, ids: dict[str, list[str]]) -> str:
    for name, choices in ids.items():
        if "{" + name + "}" in path:
            value = data.draw(st.sampled_from(choices) | st.text(min_size=1, max_size=20))
            path = path.replace("{" + name + "}", quote(value, safe=""))
    if "{word}" in path:
        value = data.draw(st.sampled_from(["start", "stop", "reboot", "destroy", "1", "0", "list", "-1",
                                           str(1 << 64)]) | st.text(min_size=1, max_size=20))
        path = path.replace("{word}", quote(value, safe=""))
    return path


def draw_request(data, route: Route, ids) -> tuple[str, dict[str, Any], bytes | None]:
    path = fill(data, route.path, ids)
    params = {}
    for name, value in route.query.items():
        if data.draw(st.integers(0, 2)):
            params[name] = data.draw(st.just(str(value)) | st.text(max_size=12)
                                     | st.integers(-(1 << 70), 1 << 70).map(str) | st.sampled_from(WORDS))
    body = None
    if route.template is not None or data.draw(st.integers(0, 9)) == 0:
        kind = data.draw(st.integers(0, 9))
        if kind == 0:
            body = data.draw(st.binary(max_size=64))
        else:
            keys = vocabulary(route.template)
            value = mutate(data, route.template, keys) if route.template is not None and kind > 2 \
                else data.draw(json_values(keys))
            body = json.dumps(value).encode()
    return path, params, body


def check(resp: httpx.Response, envelope: str) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        data = resp.json()
        if envelope == "aries":
            assert isinstance(data.get("code"), str) and data.get("message"), resp.text
        else:
            assert isinstance(data.get("error"), dict) and data["error"].get("message"), resp.text


def run(data, client: httpx.Client, route: Route, ids, envelope: str, prefix: str = "") -> None:
    path, params, body = draw_request(data, route, ids)
    headers = {"Content-Type": "application/json", **route.headers} if body is not None else {}
    resp = client.request(route.method, prefix + path, params=params, content=body, headers=headers)
    check(resp, envelope)


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", GLANCE, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_glance_and_keystone(target, route, data):
    srv, ids = target
    persona = data.draw(st.sampled_from(["demo", "admin", "alt"]))
    with srv.client(persona) as client:
        run(data, client, route, ids, "glance")


@pytest.mark.parametrize("route", NATIVE, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_native(target, route, data):
    srv, ids = target
    with srv.client("demo") as client:
        run(data, client, route, ids, "native")


@pytest.mark.parametrize("route", ARIES, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_aries(target, route, data):
    srv, ids = target
    auth = "Basic " + base64.b64encode(b"demo:demo").decode()
    with httpx.Client(base_url=srv.url, headers={"Authorization": auth}, timeout=60) as client:
        run(data, client, route, ids, "aries", prefix="/aries/api/v1")


@pytest.mark.parametrize("face", ["glance", "native", "aries"])
@FUZZ
@given(data=st.data())
def test_fuzz_without_credentials(target, face, data):
    """Every face, no credentials: 401 (or a public answer), never a 5xx, whatever the body."""
    srv, ids = target
    routes, prefix = {"glance": (GLANCE, ""), "native": (NATIVE, ""), "aries": (ARIES, "/aries/api/v1")}[face]
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        run(data, client, data.draw(st.sampled_from(routes)), ids, face, prefix=prefix)


# --- Huge and many request headers on every face (issue 19, items 1 and 8) ---------------------
#
# Raw heads over a socket: one header of a drawn size (some of them a face's own credential
# header), or a drawn number of them. Within the limits (a line up to 16 KiB, the head up to
# 64 KiB, up to 100 fields) the face answers, never a 5xx, a refusal in its own envelope; beyond,
# the server answers 431 (414 for the request line) or closes the connection, before any face.

LINE_LIMIT, HEAD_LIMIT, FIELDS_LIMIT = 16 * 1024, 64 * 1024, 100
HEAD_ROUTES = [
    ("glance", "GET", "/v2/images", None), ("glance", "POST", "/v2/images", IMAGE),
    ("keystone", "GET", "/identity/v3", None),
    ("keystone", "POST", "/identity/v3/auth/tokens", auth_body("demo", "demo", "demo")),
    ("native", "GET", f"{V1}/volumes", None), ("native", "POST", f"{V1}/volumes", {"size_gb": 1}),
    ("aries", "GET", "/aries/api/v1/image/list", None),
    ("aries", "POST", "/aries/api/v1/image/create", {"name": "a", "os_type": "linux"}),
    ("huawei_ims", "GET", "/v2/cloudimages", None),
    ("huawei_ims", "POST", "/v2/cloudimages/action", {"name": "i", "instance_id": "i-x"}),
    ("jdcloud", "GET", "/v1/regions/cn-north-1/images", None),
    ("jdcloud", "POST", "/v1/regions/cn-north-1/images:import", {"imageName": "j"}),
]
HEADER_NAMES = ["X-Auth-Token", "Authorization", "X-Sdk-Date", "x-jdcloud-date", "Content-Type", "Cookie",
                "User-Agent", "X-Openstack-Request-Id", "Accept", "X-Fuzz"]
SIZES = [0, 1, 1000, LINE_LIMIT - 1, LINE_LIMIT, LINE_LIMIT + 1, HEAD_LIMIT, 1 << 20]
COUNTS = [2, 50, FIELDS_LIMIT - 1, FIELDS_LIMIT, FIELDS_LIMIT + 1, 1000, 20000]


def credentials(srv, face: str) -> list[tuple[str, str]]:
    if face in ("glance", "native"):
        return [("X-Auth-Token", srv.token("demo"))]
    if face == "aries":
        return [("Authorization", "Basic " + base64.b64encode(b"demo:demo").decode())]
    return []     # IMS and JD: unsigned (refused in their envelope) or the drawn header


def draw_headers(data, face: str, srv) -> list[tuple[str, str]]:
    own = credentials(srv, face) if data.draw(st.booleans()) else []
    token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~", max_size=8)
    if data.draw(st.booleans()):        # one big header
        name = data.draw(st.sampled_from(HEADER_NAMES) | token.map(lambda t: "X-" + t))
        size = data.draw(st.sampled_from(SIZES) | st.integers(0, HEAD_LIMIT + 1000))
        # the whole line: name, ": ", value
        value = data.draw(st.sampled_from(["a", "0", "Z", "="])) * max(0, size - len(name) - 2)
        return own + [(name, value)]
    count = data.draw(st.sampled_from(COUNTS) | st.integers(0, 300))
    same = data.draw(st.booleans())     # one name repeated, or each its own
    value = data.draw(st.sampled_from(["1", "x" * 100, "y" * 700, "z" * 1000]))
    name = data.draw(st.sampled_from(HEADER_NAMES))
    return own + [(name if same else f"X-Many-{i}", value) for i in range(count)]


def raw_exchange(url: str, head: bytes, body: bytes) -> tuple[int | None, bytes]:
    """The status and body the server answered, or (None, b"") when it closed without an answer."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = b""
        try:
            while more := sock.recv(65536):
                raw += more
                top, sep, rest = raw.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in top.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if sep and length is not None and len(rest) >= length:
                    break
        except ConnectionResetError:
            pass
    if not raw:
        return None, b""
    top, _, rest = raw.partition(b"\r\n\r\n")
    return int(top.split(b" ", 2)[1]), rest


def face_envelope(face: str, body: bytes) -> bool:
    data = json.loads(body)
    if face == "aries":
        return isinstance(data.get("code"), str) and bool(data.get("message"))
    if face == "huawei_ims" and "error_code" in data:
        return bool(data["error_code"]) and bool(data.get("error_msg"))
    if face == "jdcloud" and not data.get("requestId"):
        return False
    return isinstance(data.get("error"), dict) and bool(data["error"].get("message"))


@pytest.mark.parametrize("face", sorted({face for face, *_ in HEAD_ROUTES}))
@FUZZ
@given(data=st.data())
def test_fuzz_huge_and_many_headers(target, face, data):
    srv, _ = target
    _, method, path, template = data.draw(st.sampled_from([r for r in HEAD_ROUTES if r[0] == face]))
    body = json.dumps(template).encode() if template is not None else b""
    headers = [("Host", "fuzz"), *draw_headers(data, face, srv), ("Content-Length", str(len(body)))]
    if template is not None:
        headers.append(("Content-Type", "application/json"))
    lines = [f"{method} {path} HTTP/1.1".encode()] + [f"{n}: {v}".encode() for n, v in headers]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    within = (max(len(line) for line in lines) <= LINE_LIMIT and len(head) <= HEAD_LIMIT
              and len(lines) - 1 <= FIELDS_LIMIT)
    status, answer = raw_exchange(srv.url, head, body)
    if within:
        assert status is not None and status < 500 and status not in (414, 431), (status, answer[:300])
        if status >= 400:
            assert face_envelope(face, answer), answer[:300]
    else:
        assert status in (None, 400, 414, 431), (status, answer[:300])
