"""A bounded fuzz run over every face's routes (Glance, Keystone, native, Aries, and the
signed Huawei IMS and JD Cloud): no 5xx, ever, and every refusal in its face's envelope
(issue 11, "Done when"; issue 19, item 8).

Hypothesis draws a route, then a body: a valid template with keys dropped, values replaced
by arbitrary JSON (huge and negative integers, strings for booleans, lists for ids, deep
nesting, lone surrogates...) and unknown keys added, or raw bytes; query values and path
segments (lone surrogates among them, sent as the bytes a careless encoder makes of them);
and now and then non-ASCII header values (UTF-8 and latin-1) in Authorization, X-Auth-Token,
X-Project-Id and Content-Type. IMS and JD requests are signed by each SDK's own signer (the
noise it can read included), so that they reach the handlers. derandomize keeps CI's run the
same from one run to the next; VMIMAGE_FUZZ_EXAMPLES (examples per route, default 25; the
signed faces' routes get two fifths of it) and VMIMAGE_FUZZ_RANDOM=1 widen it for a longer hunt.

The walks below the fuzz are exhaustive where the fuzz samples: a lone surrogate in every
string value (and top-level key) of every body template, each face's SDK-documented
create/update bodies included, and in every path parameter, query value and query name:
400 in the face's envelope, nothing left behind; every non-ASCII header value on every face;
malformed Basic credentials on Aries: 401.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer as HuaweiSigner
from huaweicloudsdkims.v2 import model as ims_model
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.core.signer import Signer as JdSigner

from tests.conftest import auth_body, start_server

EXAMPLES = int(os.environ.get("VMIMAGE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("VMIMAGE_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck))
# The signed faces' routes share one path to their handlers (signature, then the one body
# parser), which each of their examples walks; the walks below cover each of their fields.
SIGNED_FUZZ = settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 5))

# Text that is not Unicode: lone halves of a surrogate pair (JSON spells them "\udc80"; a
# URL as the bytes ED B2 80, which are not UTF-8 either).
SURROGATES = ["\udc80", "\ud800", "a\udfffb", "\udbff\udbff", "\ud83d!"]
WORDS = ["", "x" * 256, "no", "yes", "true", "0", "-1", "vdb", "vda", "ssd.gp1", "hdd.std1", "local", "cloud",
         "linux", "windows", "raw", "qcow2", "vmdk", "bare", "ovf", "public", "shared", "private", "community",
         "accepted", "rejected", "glance-direct", "web-download", "copy-image", "import", "system", "whole",
         "auto", "Default", "demo", "password", "token", "../etc/passwd", "\u0000", "é", "in:a,b", "gt:2020",
         *SURROGATES]
NASTY = [1 << 64, 1 << 63, 1 << 31, -1, 0, "no", "x" * 10000, ["x"], {"id": "x"}, True, None, 1.5, "",
         "\udc80", "x\ud800"]
leaves = st.one_of(st.none(), st.booleans(), st.integers(-1000, 100000),
                   st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False),
                   st.text(max_size=12), st.sampled_from(WORDS))
unicode_or_not = st.text(st.characters(categories=["Cs"]) | st.characters(), min_size=1, max_size=6)

# Non-ASCII header values: UTF-8, latin-1, bytes that are neither, and each scheme's prefix
# followed by them (so that each face's own parser of that header meets them).
NON_ASCII_TEXT = ["é".encode(), "é".encode("latin-1"), "中文".encode(), b"\xff\xfe\x80",
                  b"application/json; charset=\xe9", "application/json; charset=utf-8; x=中".encode()]
NON_ASCII_CREDENTIALS = [
    b"Basic \xe9", b"Basic " + base64.b64encode("démo:démo".encode()), b"Basic " + base64.b64encode(b"d\xe9mo:demo"),
    b"Basic " + base64.b64encode(b"demo"), b"Bearer \xc3\xa9", b"Bearer \xe9",
    b"SDK-HMAC-SHA256 Access=\xe9, SignedHeaders=host;x-sdk-date, Signature=00",
    b"JDCLOUD3-HMAC-SHA256 Credential=\xe9/20240101/cn-north-1/vm/jdcloud3_request, SignedHeaders=host, Signature=00"]
NON_ASCII = NON_ASCII_TEXT + NON_ASCII_CREDENTIALS
NOISY = ["Authorization", "X-Auth-Token", "X-Project-Id", "Content-Type"]


def json_values(keys: list[str]) -> st.SearchStrategy:
    names = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    names = names | unicode_or_not
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
    path: str                       # {image}, {volume}, {server}, {snapshot}, {member}, {project}, {word}
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
                                                    "category": "cloud", "encrypted": False, "type": "ssd.io1",
                                                    "iops": 3000}]}),
    Route("POST", f"{V1}/volumes", {"name": "v", "size_gb": 1, "type": "ssd.gp1", "snapshot_id": "snap-x",
                                    "encrypted": False, "iops": 3000}),
    Route("POST", f"{V1}/volumes/{{volume}}/attach", {"server_id": "i-x", "device": "vdc"}),
    Route("POST", f"{V1}/volumes/{{volume}}/detach"),
    Route("POST", f"{V1}/volumes/{{volume}}/images", {"name": "vi", "description": "d"}),
    Route("POST", f"{V1}/snapshots", {"volume_id": "vol-x", "name": "sn"}),
    Route("POST", f"{V1}/servers/{{server}}/images", {"name": "si", "kind": "whole", "description": "d",
                                                       "data_disks": [{"device": "vdb", "exclude": True},
                                                                      {"device": "vdc", "size_gb": 2,
                                                                       "snapshot_id": "snap-x", "type": "ssd.gp1",
                                                                       "iops": 3000}]}),
    Route("POST", f"{V1}/servers/{{server}}/actions/{{word}}"),
    Route("GET", f"{V1}/volumes/{{volume}}"),
    Route("GET", f"{V1}/jobs/{{word}}"),
    Route("POST", f"{V1}/images/import", {"name": "b", "bucket": "fuzz-bucket", "key": "disk.qcow2",
                                          "disk_format": "qcow2", "os_version": "Ubuntu 22.04 server 64bit",
                                          "min_disk": 1, "store": "local"}),
    Route("POST", f"{V1}/images/{{image}}/export", {"bucket": "fuzz-bucket", "key": "out.raw"}),
]
ARIES_PREFIX = "/aries/api/v1"
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

# --- the signed faces: bodies as each SDK documents them ------------------------------------

# Plausible values for the SDKs' fields, by their name on the wire (the rest get a sample of
# their type).
PLAUSIBLE: dict[str, Any] = {
    "name": "fuzz", "description": "d", "disk_format": "qcow2", "container_format": "bare",
    "os_version": "Ubuntu 22.04 server 64bit", "__os_version": "Ubuntu 22.04 server 64bit",
    "image_url": "fuzz-bucket:disk.qcow2", "bucket_url": "fuzz-bucket:out.qcow2", "file_format": "qcow2",
    "visibility": "private", "type": "ECS", "architecture": "x86", "hw_firmware_type": "bios", "os_type": "Linux",
    "status": "accepted", "op": "replace", "path": "/name", "value": "n", "instance_id": "i-missing",
    "volume_id": "vol-missing", "whole_image_type": "CBR", "license_type": "platform", "min_disk": 40,
    "min_ram": 0, "max_ram": 0,
}


def _sample(kind: str) -> Any:
    if kind.startswith("list["):
        return [_sample(kind[5:-1])]
    scalars: dict[str, Any] = {"str": "x", "int": 1, "bool": False}
    return scalars[kind] if kind in scalars else ims_body(getattr(ims_model, kind))


def ims_body(model: type, **values: Any) -> dict:
    """Every field an IMS SDK model documents, named as the SDK sends it, with a plausible value."""
    names = {model.attribute_map[attr]: kind for attr, kind in model.openapi_types.items()}
    return {name: values[name] if name in values else PLAUSIBLE.get(name, _sample(kind))
            for name, kind in names.items()}


IMS = [
    Route("POST", "/v2/cloudimages/action", ims_body(ims_model.CreateImageRequestBody)),
    Route("POST", "/v1/cloudimages/wholeimages/action", ims_body(ims_model.CreateWholeImageRequestBody)),
    Route("POST", "/v2/cloudimages/quickimport/action", ims_body(ims_model.QuickImportImageByFileRequestBody)),
    Route("POST", "/v1/cloudimages/dataimages/action", ims_body(ims_model.CreateDataImageRequestBody)),
    Route("PUT", "/v1/cloudimages/{image}/upload", ims_body(ims_model.RegisterImageRequestBody)),
    Route("POST", "/v1/cloudimages/{image}/file", ims_body(ims_model.ExportImageRequestBody)),
    Route("PATCH", "/v2/cloudimages/{image}", [ims_body(ims_model.UpdateImageRequestBody),
                                               ims_body(ims_model.UpdateImageRequestBody, path="/__description")]),
    Route("GET", "/v2/cloudimages", query={"__imagetype": "private", "__os_type": "Linux", "name": "fuzz",
                                           "status": "active", "__platform": "Ubuntu", "limit": 5, "marker": "x",
                                           "sort_key": "name", "sort_dir": "asc", "__isregistered": "true",
                                           "min_disk": 1, "id": "x"}),
    Route("POST", "/v2/images", ims_body(ims_model.GlanceCreateImageMetadataRequestBody, tags=["a=b"])),
    Route("PATCH", "/v2/images/{image}", [ims_body(ims_model.GlanceUpdateImageRequestBody)]),
    Route("GET", "/v2/images", query={"name": "fuzz", "limit": 5, "__imagetype": "private", "status": "active"}),
    Route("PUT", "/v2/images/{image}/tags/{word}"),
    Route("POST", "/v2/{project}/images/{image}/tags", ims_body(ims_model.AddImageTagRequestBody)),
    Route("POST", "/v2/images/{image}/members", ims_body(ims_model.GlanceAddImageMemberRequestBody)),
    Route("PUT", "/v2/images/{image}/members/{member}", ims_body(ims_model.GlanceUpdateImageMemberRequestBody)),
    Route("POST", "/v1/cloudimages/members", ims_body(ims_model.BatchAddMembersRequestBody)),
    Route("PUT", "/v1/cloudimages/members", ims_body(ims_model.BatchUpdateMembersRequestBody)),
    Route("GET", "/v1/{project}/jobs/{word}"),
    Route("GET", "/v1/cloudimages/os_version", query={"tag": "bootable"}),
    Route("POST", "/v2/{project}/images/{image}/tags/action", ims_body(ims_model.BatchAddOrDeleteTagsRequestBody,
                                                                       action="create")),
    Route("DELETE", "/v1/{project}/cloudimages/{image}/tags/delete", ims_body(ims_model.BatchDeleteTagsRequestBody)),
    Route("PUT", "/v1/cloudimages/tags", ims_body(ims_model.AddOrUpdateTagsRequestBody, image_id="x", tag="k.v")),
    Route("POST", "/v2/{project}/images/resource_instances/action", ims_body(ims_model.ListImageByTagsRequestBody,
                                                                             action="filter", limit="5")),
    Route("GET", "/v2/{project}/images/tags"),
    Route("GET", "/v1/cloudimages/tags", query={"limit": 5, "page": 1, "__imagetype": "private",
                                                "virtual_env_type": "FusionCompute", "architecture": "x86"}),
    Route("GET", "/v2/schemas/{word}"),
]

JD_REGION = "cn-north-1"
JD_PREFIX = f"/v1/regions/{JD_REGION}"
JD_PLAUSIBLE: dict[str, Any] = {
    "name": "fuzz", "imageName": "fuzz", "description": "d", "platform": "Ubuntu", "architecture": "x86_64",
    "bootMode": "bios", "osVersion": "22.04", "osType": "linux", "diskFormat": "qcow2", "systemDiskSizeGB": 40,
    "imageUrl": "https://fuzz-bucket.s3.cn-north-1.jdcloud-oss.com/disk.qcow2", "forceImport": True,
    "clientToken": "t", "sourceImageIds": ["img-x"], "destinationRegion": JD_REGION, "pins": ["alt"],
    "loginNames": ["alt"], "roleName": "r", "ossUrl": "https://fuzz-bucket.s3.cn-north-1.jdcloud-oss.com",
    "ossPrefix": "p/", "isAllDisk": False,
    "dataDisks": [{"deviceName": "vdb", "noDevice": False, "diskCategory": "cloud", "autoDelete": True,
                   "cloudDiskSpec": {"az": "cn-north-1a", "name": "d", "diskType": "ssd.gp1", "diskSizeGB": 20,
                                     "snapshotId": "snap-x", "description": "d", "iops": 3000}}],
    "cloudDisks": [{"snapshotId": "snap-x", "diskType": "ssd.gp1", "diskSizeGB": 40, "deviceName": "vda"}],
}


def jd_body(request: str) -> dict:
    """Every body parameter the JD SDK's <request>Parameters documents (its path parameters
    left out), with a plausible value."""
    module = importlib.import_module(f"jdcloud_sdk.services.vm.apis.{request}Request")
    params = getattr(module, f"{request}Parameters")
    path = getattr(module, f"{request}Request")("x").url
    named = params.__init__.__code__.co_varnames[1:params.__init__.__code__.co_argcount]
    found = vars(params(*["x"] * len(named)))
    return {name: JD_PLAUSIBLE.get(name, "x") for name in found if "{" + name + "}" not in path}


JD = [
    Route("POST", "/instances/{server}:createImage", jd_body("CreateImage")),
    Route("POST", "/images:createImageFromSnapshots", jd_body("CreateImageFromSnapshots")),
    Route("POST", "/images:copyImages", jd_body("CopyImages")),
    Route("POST", "/images/{image}:modifyImageAttribute", jd_body("ModifyImageAttribute")),
    Route("POST", "/images/{image}:share", jd_body("ShareImage")),
    Route("POST", "/images/{image}:unshare", jd_body("UnShareImage")),
    Route("POST", "/images:import", jd_body("ImportImage")),
    Route("POST", "/images/{image}:exportImage", jd_body("ExportImage")),
    Route("GET", "/images", query={"imageSource": "private", "platform": "Ubuntu", "ids.1": "img-x",
                                   "imageName": "fuzz", "status": "ready", "pageNumber": 1, "pageSize": 10,
                                   "architecture": "x86_64", "bootMode": "bios", "instanceIds.1": "i-x"}),
    Route("GET", "/images/{image}"),
    Route("GET", "/images/{image}/members"),
    Route("GET", "/imageTasks", query={"taskAction": "ImportImage", "taskIds.1": "x", "taskStatus": "running",
                                       "pageNumber": 1, "pageSize": 10}),
    Route("GET", "/quotas", query={"filters.1.name": "resourceTypes", "filters.1.values.1": "image"}),
]


# --- the server, and requests to it ---------------------------------------------------------

class Keys:
    """An access key of a persona, and requests signed with it by each SDK's own signer."""

    def __init__(self, srv, persona: str) -> None:
        made = json.loads(srv.admin_cli("access-key", "create", "--user", persona))
        self.ak, self.sk, self.project = made["access_key"], made["secret_key"], made["project_id"]
        self.host = srv.url.removeprefix("http://")

    def ims(self, method: str, wire_path: str, wire_query: str, headers: dict[str, str], body: bytes) -> dict:
        """The headers huaweicloudsdkcore's signer adds (it decodes the path and query as the server does)."""
        headers = {"Content-Type": "application/json;charset=utf-8", "X-Project-Id": self.project,
                   "User-Agent": "huaweicloud-usdk-python/3.0", **headers}
        request = SdkRequest(method=method, schema="http", host=self.host, resource_path=wire_path, uri=wire_path,
                             query_params=parse_qsl(wire_query, keep_blank_values=True), header_params=headers,
                             body=body)
        HuaweiSigner(BasicCredentials(self.ak, self.sk, self.project)).sign(request)
        return dict(request.header_params)      # non-ASCII values as the SDK sends them (UTF-8 read as latin-1)

    def jd(self, method: str, wire_path: str, wire_query: str, headers: dict[str, str], body: bytes) -> dict:
        """The headers jdcloud_sdk's signer adds."""
        headers = {"User-Agent": "JdcloudSdkPython/1.2.9 vm/1.6.1", "Content-Type": "application/json", **headers}
        url = f"http://{self.host}{wire_path}" + (f"?{wire_query}" if wire_query else "")
        JdSigner(Logger(ERROR)).sign(method=method, service="vm", region=JD_REGION, uri=url, headers=headers,
                                     data=body.decode("utf-8", "replace"), credential=Credential(self.ak, self.sk),
                                     security_token="")
        return headers


@pytest.fixture(scope="module")
def target(tmp_path_factory, database_factory):
    """A server of its own (the fuzz run creates and deletes freely), with one of each entity."""
    srv = start_server(tmp_path_factory.mktemp("fuzz"), database_factory())
    with srv.client("demo") as http:
        image = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare",
                                              "visibility": "shared"}).json()["id"]
        volume = http.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"]["id"]
    ids = {"image": [image, "00000000-0000-0000-0000-000000000000"], "volume": [volume, "vol-missing"],
           "server": ["i-missing"], "snapshot": ["snap-missing"], "member": [srv.project_id("alt"), "nobody"],
           "project": [srv.project_id("demo"), srv.project_id("alt")]}
    yield srv, ids, Keys(srv, "demo")
    srv.stop()


def wire_segment(value: str) -> str:
    """A path segment as a careless client sends it: a lone surrogate as its UTF-8-ish bytes."""
    return quote(value, safe="", errors="surrogatepass")


def wire_query(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote, errors="surrogatepass")


def fill(data, path: str, ids: dict[str, list[str]]) -> str:
    for name, choices in ids.items():
        if "{" + name + "}" in path:
            value = data.draw(st.sampled_from(choices) | st.text(min_size=1, max_size=20)
                              | st.sampled_from(SURROGATES))
            path = path.replace("{" + name + "}", wire_segment(value))
    if "{word}" in path:
        value = data.draw(st.sampled_from(["start", "stop", "reboot", "destroy", "1", "0", "list", "-1",
                                           str(1 << 64), *SURROGATES]) | st.text(min_size=1, max_size=20))
        path = path.replace("{word}", wire_segment(value))
    return path


def draw_request(data, route: Route, ids) -> tuple[str, str, bytes | None]:
    """(path, query, body) as they go on the wire."""
    path = fill(data, route.path, ids)
    params = {}
    for name, value in route.query.items():
        if data.draw(st.integers(0, 2)):
            params[name] = data.draw(st.just(str(value)) | st.text(max_size=12)
                                     | st.integers(-(1 << 70), 1 << 70).map(str) | st.sampled_from(WORDS))
    if route.query and not data.draw(st.integers(0, 9)):
        params[data.draw(unicode_or_not)] = data.draw(st.sampled_from(WORDS))
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
    return path, wire_query(params), body


def draw_noise(data) -> dict[str, bytes]:
    """Now and then, non-ASCII values in the headers each face reads."""
    if data.draw(st.integers(0, 3)):
        return {}
    return data.draw(st.dictionaries(st.sampled_from(NOISY), st.sampled_from(NON_ASCII), min_size=1, max_size=2))


_IMS_PATHS = re.compile(r"^/(v1|v2|v2\.1)/cloudimages(/|$)|^/v1/[^/]+/jobs/|^/v1/[^/]+/cloudimages/"
                        r"|^/v2/[^/]+/images/")


def face_of(path: str, headers: dict[str, str | bytes]) -> str:
    """The face that answers a request (vmimage/app.py's order), by its envelope."""
    path = unquote(path)        # as the server reads it
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    auth = auth.decode("latin-1") if isinstance(auth, bytes) else auth
    for prefix, face in (("/identity", "openstack"), (V1, "native"), (ARIES_PREFIX, "aries")):
        if path == prefix or path.startswith(prefix + "/"):
            return face
    if auth.lstrip().upper().startswith("SDK-") or _IMS_PATHS.match(path):
        return "ims"
    if path.startswith("/v1/regions/"):
        return "jdcloud"
    return "openstack"


def envelope_ok(face: str, status: int, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    error = data.get("error")
    if face == "openstack":     # Glance and Keystone
        return isinstance(error, dict) and error.get("code") == status and bool(error.get("message"))
    if face == "native":
        return (isinstance(error, dict) and isinstance(error.get("code"), str) and error.get("status") == status
                and bool(error.get("message")))
    if face == "aries":
        return isinstance(data.get("code"), str) and bool(data.get("message"))
    if face == "ims":
        return ((isinstance(error, dict) and str(error.get("code")).startswith("IMG.") and bool(error.get("message")))
                or (str(data.get("error_code")).startswith("APIGW.") and bool(data.get("error_msg"))))
    if face == "jdcloud":
        return (isinstance(error, dict) and error.get("code") == status and isinstance(error.get("status"), str)
                and bool(error.get("message")) and "requestId" in data)
    raise AssertionError(face)


def check(resp: httpx.Response, headers: dict[str, str | bytes]) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        face = face_of(resp.request.url.raw_path.decode("ascii").split("?")[0], headers)
        assert envelope_ok(face, resp.status_code, resp.json()), f"{face}: {resp.status_code} {resp.text[:500]}"


def send(client: httpx.Client, method: str, path: str, query: str, body: bytes | None,
         headers: dict[str, str | bytes]) -> httpx.Response:
    url = path + (f"?{query}" if query else "")
    return client.request(method, url, content=body, headers=headers)


def _as_sent(value: str) -> bytes:
    """A header value as the SDK's HTTP client sends it (Huawei's signer leaves UTF-8 read as latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def signed_headers(keys: Keys, dialect: str, method: str, path: str, query: str, body: bytes | None,
                   headers: dict[str, str], noise: dict[str, bytes]) -> dict[str, str | bytes]:
    """Headers signed over the request (noise included, as text the signer can read), then the
    noise put back byte for byte: bytes that are not UTF-8, or an Authorization, break the
    signature, as they would."""
    readable = {k: v.decode("utf-8", "replace") for k, v in noise.items() if k != "Authorization"}
    sign = keys.ims if dialect == "ims" else keys.jd
    signed = sign(method, path, query, {**headers, **readable}, body or b"")
    out: dict[str, str | bytes] = {k: _as_sent(v) for k, v in signed.items()}
    out.update(noise)
    return out


def run(data, client: httpx.Client, route: Route, ids, prefix: str = "", keys: Keys | None = None,
        dialect: str = "") -> None:
    path, query, body = draw_request(data, route, ids)
    path = prefix + path
    headers: dict[str, Any] = {"Content-Type": "application/json", **route.headers} if body is not None else {}
    noise = draw_noise(data)
    if keys is not None:
        headers = signed_headers(keys, dialect, route.method, path, query, body, headers, noise)
    else:
        headers = {**headers, **noise}
    check(send(client, route.method, path, query, body, headers), headers)


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", GLANCE, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_glance_and_keystone(target, route, data):
    srv, ids, _ = target
    persona = data.draw(st.sampled_from(["demo", "admin", "alt"]))
    with srv.client(persona) as client:
        run(data, client, route, ids)


@pytest.mark.parametrize("route", NATIVE, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_native(target, route, data):
    srv, ids, _ = target
    with srv.client("demo") as client:
        run(data, client, route, ids)


@pytest.mark.parametrize("route", ARIES, ids=route_id)
@FUZZ
@given(data=st.data())
def test_fuzz_aries(target, route, data):
    srv, ids, _ = target
    auth = "Basic " + base64.b64encode(b"demo:demo").decode()
    with httpx.Client(base_url=srv.url, headers={"Authorization": auth}, timeout=60) as client:
        run(data, client, route, ids, prefix=ARIES_PREFIX)


@pytest.mark.parametrize("route", IMS, ids=route_id)
@SIGNED_FUZZ
@given(data=st.data())
def test_fuzz_huawei_ims(target, route, data):
    srv, ids, keys = target
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        run(data, client, route, ids, keys=keys, dialect="ims")


@pytest.mark.parametrize("route", JD, ids=route_id)
@SIGNED_FUZZ
@given(data=st.data())
def test_fuzz_jdcloud(target, route, data):
    srv, ids, keys = target
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        run(data, client, route, ids, prefix=JD_PREFIX, keys=keys, dialect="jd")


UNSIGNED = {"openstack": (GLANCE, ""), "native": (NATIVE, ""), "aries": (ARIES, ARIES_PREFIX),
            "ims": ([r for r in IMS if not r.path.startswith("/v2/images")], ""), "jdcloud": (JD, JD_PREFIX)}


@pytest.mark.parametrize("face", sorted(UNSIGNED))
@FUZZ
@given(data=st.data())
def test_fuzz_without_credentials(target, face, data):
    """Every face, no credentials: 401 (or a public answer), never a 5xx, whatever the body."""
    srv, ids, _ = target
    routes, prefix = UNSIGNED[face]
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        run(data, client, data.draw(st.sampled_from(routes)), ids, prefix=prefix)


# --- walks: a lone surrogate in every string, one at a time -----------------------------------

SURROGATE = "\udc80"


def surrogate_variants(template: Any, top: bool = True) -> Iterator[tuple[str, Any]]:
    """(where, body) for every string value of the template, and every key of its top level
    (a nested key is parsed alike: tests/unit/faces/test_limits.py), in turn holding a lone
    surrogate."""
    if isinstance(template, str):
        yield "", template + SURROGATE
    elif isinstance(template, dict):
        for key, value in template.items():
            if top:
                yield f"{key} (its name)", {(k + SURROGATE if k == key else k): v for k, v in template.items()}
            for where, inner in surrogate_variants(value, top=False):
                yield ".".join(filter(None, [key, where])), {**template, key: inner}
    elif isinstance(template, list):
        for i, value in enumerate(template):
            for where, inner in surrogate_variants(value, top=False):
                yield ".".join(filter(None, [str(i), where])), [*template[:i], inner, *template[i + 1:]]


@dataclass
class Face:
    name: str                     # its envelope, as face_of names it
    routes: list[Route]
    prefix: str = ""
    auth: str = "token"           # token (X-Auth-Token), basic, ims, jd


FACES = [Face("openstack", GLANCE), Face("native", NATIVE), Face("aries", ARIES, ARIES_PREFIX, "basic"),
         Face("ims", IMS, auth="ims"), Face("jdcloud", JD, JD_PREFIX, "jd")]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory, database_factory):
    """A server only the walks use, so that what they leave behind can be seen."""
    srv = start_server(tmp_path_factory.mktemp("walk"), database_factory())
    with srv.client("demo") as http:
        image = http.post("/v2/images", json={"name": "walk", "disk_format": "raw", "container_format": "bare"})
        volume = http.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"]["id"]
        schema = http.get("/v2/schemas/image").json()
    # every property glanceclient's schema lets a caller write, on Glance's create
    writable = {name: "x" for name, spec in schema["properties"].items()
                if not spec.get("readOnly") and "string" in (spec.get("type") or [])}
    ids = {"image": image.json()["id"], "volume": volume, "server": "i-missing", "snapshot": "snap-missing",
           "member": srv.project_id("alt"), "project": srv.project_id("demo"), "word": "x"}
    yield srv, ids, Keys(srv, "demo"), writable
    srv.stop()


def walk_send(client: httpx.Client, srv, keys: Keys, face: Face, method: str, path: str, query: str,
              body: bytes | None, extra: dict[str, str]) -> httpx.Response:
    headers: dict[str, Any] = {"Content-Type": "application/json", **extra} if body is not None else {}
    if face.auth == "token":
        headers["X-Auth-Token"] = srv.token("demo")
    elif face.auth == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(b"demo:demo").decode()
    else:
        headers = signed_headers(keys, face.auth, method, path, query, body, headers, {})
    return send(client, method, path, query, body, headers)


def filled(path: str, ids: dict[str, str], **override: str) -> str:
    for name, value in {**ids, **override}.items():
        path = path.replace("{" + name + "}", wire_segment(value))
    return path


def leftovers(srv) -> dict[str, Any]:
    """What a request could have made: images, tasks, namespaces, volumes, snapshots, servers, jobs."""
    with srv.client("demo") as http:
        seen = {path: http.get(path).json() for path in (
            "/v2/images", "/v2/tasks", "/v2/metadefs/namespaces", f"{V1}/volumes", f"{V1}/snapshots",
            f"{V1}/servers", f"{V1}/jobs")}
    return seen


def body_walk(writable: dict[str, str]) -> Iterator[tuple[Face, Route, str, Any]]:
    """(face, route, where, body): every body template with each string in turn not Unicode."""
    for face in FACES:
        for route in face.routes:
            if route.template is None:
                continue
            template = route.template
            if face.name == "openstack" and route.path == "/v2/images":
                template = {**writable, **template}
            for where, body in surrogate_variants(template):
                yield face, route, where, body


def url_walk(ids: dict[str, str]) -> Iterator[tuple[Face, Route, str, str, dict[str, str]]]:
    """(face, route, where, path, query): every route with a lone surrogate in each path
    parameter, each query value and a query name, in turn."""
    for face in FACES:
        for route in face.routes:
            params = {name: str(value) for name, value in route.query.items()}
            for name in re.findall(r"\{(\w+)\}", route.path):
                yield face, route, f"{{{name}}}", filled(route.path, ids, **{name: "a" + SURROGATE}), params
            for name in params:
                yield face, route, f"?{name}", filled(route.path, ids), {**params, name: SURROGATE}
            yield face, route, "?(a name)", filled(route.path, ids), {**params, SURROGATE: "x"}


def test_a_lone_surrogate_in_any_string_of_any_body_is_400_and_changes_nothing(quiet):
    """Every body template of every face (the IMS and JD ones every field their SDK documents,
    Glance's create every property its schema lets a caller write), each of its strings in
    turn holding a lone surrogate: 400 in the face's envelope, naming it where the face shows
    the core's message, and nothing made."""
    srv, ids, keys, writable = quiet
    before = leftovers(srv)
    wrong, sent = [], 0
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        for face, route, where, body in body_walk(writable):
            path = face.prefix + filled(route.path, ids)
            resp = walk_send(client, srv, keys, face, route.method, path, "", json.dumps(body).encode(),
                             route.headers)
            sent += 1
            data = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
            if (resp.status_code != 400 or not envelope_ok(face.name, 400, data)
                    or (face.name != "aries" and "surrogate" not in json.dumps(data))):
                wrong.append(f"{face.name} {route_id(route)} [{where}]: {resp.status_code} {resp.text[:200]}")
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)
    assert sent > 250
    assert leftovers(srv) == before


def test_text_that_is_not_utf8_in_any_path_segment_or_query_is_400(quiet):
    """Every route of every face, a lone surrogate's bytes (ED B2 80, which no UTF-8 decoder
    takes) in each path parameter, each query value and a query name in turn, and a latin-1
    byte: 400 in the face's envelope, where the route would have been handed U+FFFD."""
    srv, ids, keys, _ = quiet
    wrong, sent = [], 0
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        for face, route, where, path, query in url_walk(ids):
            body = None if route.template is None else json.dumps(route.template).encode()
            resp = walk_send(client, srv, keys, face, route.method, face.prefix + path, wire_query(query),
                             body, route.headers)
            sent += 1
            if resp.status_code != 400 or not envelope_ok(face.name, 400, resp.json()):
                wrong.append(f"{face.name} {route_id(route)} [{where}]: {resp.status_code} {resp.text[:200]}")
        latin1 = client.get("/v2/images?name=%E9", headers={"X-Auth-Token": srv.token("demo")})
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)
    assert latin1.status_code == 400 and envelope_ok("openstack", 400, latin1.json()), latin1.text


@pytest.mark.parametrize("header", NOISY)
def test_non_ascii_header_values_never_fail_a_face(quiet, header):
    """Each header a face reads, with each non-ASCII value, on one route of every face (a
    signed one signed over it where the signer can read it): never a 5xx, and a refusal in the
    envelope of the face that took the request."""
    srv, ids, keys, _ = quiet
    wrong = []
    for face in FACES:
        route = next(r for r in face.routes if r.method == "GET")
        path = face.prefix + filled(route.path, ids)
        for value in NON_ASCII if header == "Authorization" else NON_ASCII_TEXT:
            headers: dict[str, Any] = {}
            if face.auth == "token":
                headers = {"X-Auth-Token": srv.token("demo"), header: value}
            elif face.auth == "basic":
                headers = {"Authorization": "Basic " + base64.b64encode(b"demo:demo").decode(), header: value}
            else:
                headers = signed_headers(keys, face.auth, "GET", path, "", None, {}, {header: value})
            resp = httpx.get(srv.url + path, headers=headers, timeout=60)
            if resp.status_code >= 500 or (resp.status_code >= 400
                                           and not envelope_ok(face_of(path, headers), resp.status_code, resp.json())):
                wrong.append(f"{face.name} {header}: {value!r}: {resp.status_code} {resp.text[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("credentials", [
    b"\xc3\xa9", b"\xe9", "中文".encode(), b"!!!", b"ZGVtbw", base64.b64encode(b"demo"),
    base64.b64encode(b":demo"), base64.b64encode(b"d\xe9mo:demo"), base64.b64encode(b"demo:\xff"),
    base64.b64encode("démo:démo".encode()), b"ZGVtbzpkZW1v\xe9",
])
def test_malformed_basic_credentials_are_401_in_the_aries_envelope(quiet, credentials):
    srv, *_ = quiet
    resp = httpx.get(f"{srv.url}{ARIES_PREFIX}/image/list", headers={"Authorization": b"Basic " + credentials})
    assert resp.status_code == 401 and resp.json()["code"] == "Unauthorized", resp.text
    good = httpx.get(f"{srv.url}{ARIES_PREFIX}/image/list",
                     headers={"Authorization": "Basic " + base64.b64encode(b"demo:demo").decode()})
    assert good.status_code == 200, good.text


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
    srv, _, _ = target
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
