"""Hostile request bodies (issue 11, items 1-3): byte cap, auth before body, nesting depth,
stalled uploads, and the per-project upload cap — each face answering in its own envelope."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timezone

import httpx
import pytest

from tests.conftest import auth_body, start_server

OCTET = "application/octet-stream"
MiB = 1 << 20
DEEP_ARRAY = b"[" * 10000 + b"]" * 10000
DEEP_OBJECT = b'{"a":' * 10000 + b"1" + b"}" * 10000


class Raw:
    """One HTTP/1.1 connection driven by hand: partial bodies, stalls, keep-alive."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""

    def send_head(self, method: str, path: str, headers: dict[str, str]) -> None:
        host = [] if "Host" in headers else ["Host: test"]
        lines = [f"{method} {path} HTTP/1.1", *host, *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:       # the server answered and closed: it stopped reading
            return False

    def send_chunk(self, data: bytes) -> bool:
        return self.send(b"%x\r\n%s\r\n" % (len(data), data))

    def response_ready(self) -> bool:
        self.sock.setblocking(False)
        try:
            more = self.sock.recv(65536)
            self.buf += more
            return bool(more) or bool(self.buf)
        except BlockingIOError:
            return bool(self.buf)
        except OSError:
            return bool(self.buf)
        finally:
            self.sock.setblocking(True)

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            more = self.sock.recv(65536)
            if not more:
                raise ConnectionError("closed before a response")
            self.buf += more
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            more = self.sock.recv(65536)
            if not more:
                break
            rest += more
        self.buf = rest[length:]
        return status, headers, rest[:length]

    def close(self) -> None:
        self.sock.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def glance_envelope(body: bytes, status: int) -> dict:
    error = json.loads(body)["error"]
    assert error["code"] == status and error["message"], body
    return error


def native_envelope(body: bytes, status: int) -> dict:
    error = json.loads(body)["error"]
    assert error["status"] == status and error["code"] and error["message"], body
    return error


def aries_envelope(body: bytes, code: str) -> dict:
    data = json.loads(body)
    assert data["code"] == code and data["message"], body
    return data


def jd_envelope(body: bytes, status: int) -> dict:
    data = json.loads(body)
    assert data["requestId"] and data["error"]["code"] == status and data["error"]["message"], body
    return data["error"]


def ims_gateway_envelope(body: bytes, code: str) -> dict:
    data = json.loads(body)
    assert data["error_code"] == code and data["error_msg"], body
    return data


def jd_authorization(server) -> dict[str, str]:
    """A JD Authorization naming a real access key and a current scope; its signature (never
    reached: the body is cut first) is zeros."""
    key = json.loads(server.admin_cli("access-key", "create", "--user", "demo"))
    now = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return {"x-jdcloud-date": now,
            "Authorization": f"JDCLOUD3-HMAC-SHA256 Credential={key['access_key']}/{now[:8]}/cn-north-1/vm/"
                             f"jdcloud3_request, SignedHeaders=content-type;host, Signature={'0' * 64}"}


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- item 1: byte cap, auth before body ------------------------------------------------------

def test_declared_body_over_the_cap_is_refused_before_it_is_read(server):
    """300 MiB announced to the token route: 413 in Keystone's envelope at once, connection closed."""
    raw = Raw(server.url)
    raw.send_head("POST", "/identity/v3/auth/tokens",
                  {"Content-Type": "application/json", "Content-Length": str(300 * MiB)})
    raw.send(b"{" + b" " * 1000)
    started = time.monotonic()
    status, headers, body = raw.read_response()
    assert time.monotonic() - started < 5
    assert status == 413
    glance_envelope(body, 413)
    assert headers.get("connection") == "close"
    raw.close()


@pytest.mark.parametrize("face", ["keystone", "glance", "native", "aries", "jdcloud"])
def test_chunked_body_is_cut_at_the_cap_in_each_face_envelope(server, face):
    token = server.token("demo")
    path, headers, check = {
        "keystone": ("/identity/v3/auth/tokens", {}, lambda b: glance_envelope(b, 413)),
        "glance": ("/v2/images", {"X-Auth-Token": token}, lambda b: glance_envelope(b, 413)),
        "native": ("/vmimage/v1/volumes", {"X-Auth-Token": token}, lambda b: native_envelope(b, 413)),
        "aries": ("/aries/api/v1/image/create", {"Authorization": basic("demo", "demo")},
                  lambda b: aries_envelope(b, "RequestTooLarge")),
        "jdcloud": ("/v1/regions/cn-north-1/images:import", None, lambda b: jd_envelope(b, 413)),
    }[face]
    if face == "jdcloud":     # the caller is known before the body is read: a real key is named
        headers = jd_authorization(server)
    raw = Raw(server.url)
    raw.send_head("POST", path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked", **headers})
    pid = server.proc.pid
    before = rss_kib(pid)
    sent = 0
    raw.send_chunk(b'{"name": "' )
    while sent < 64 * MiB and not raw.response_ready():
        if not raw.send_chunk(b"x" * (256 << 10)):
            break
        sent += 256 << 10
    status, _, body = raw.read_response()
    assert status == 413, body
    check(body)
    # What the client got off its hands: the cap plus the loopback socket buffers (several MiB
    # on a busy machine), far from the 64 MiB a server reading the whole body would take.
    assert sent < 24 * MiB, f"the client sent {sent} bytes before the refusal"
    assert rss_kib(pid) - before < 64 * 1024
    raw.close()
    assert httpx.get(f"{server.url}/versions").status_code == 200


def test_body_under_the_cap_still_works(server):
    with server.client("demo") as http:
        body = json.dumps({"disk_format": "raw", "container_format": "bare"}) + " " * (MiB - 100)
        resp = http.post("/v2/images", content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("path,envelope", [
    ("/vmimage/v1/servers", lambda b: native_envelope(b, 401)),
    ("/vmimage/v1/volumes", lambda b: native_envelope(b, 401)),
    ("/vmimage/v1/images/import", lambda b: native_envelope(b, 401)),
    ("/aries/api/v1/image/create", lambda b: aries_envelope(b, "Unauthorized")),
    ("/aries/api/v1/server/create", lambda b: aries_envelope(b, "Unauthorized")),
    ("/aries/api/v1/volume/create", lambda b: aries_envelope(b, "Unauthorized")),
    ("/v2/images", lambda b: glance_envelope(b, 401)),
    ("/v2/tasks", lambda b: glance_envelope(b, 401)),
    ("/v1/regions/cn-north-1/images:import", lambda b: jd_envelope(b, 401)),
    ("/v2/cloudimages/action", lambda b: ims_gateway_envelope(b, "APIGW.0301")),
])
@pytest.mark.parametrize("body", [b"{not json", DEEP_ARRAY, b"huge"])
def test_no_credentials_is_401_whatever_the_body(server, path, envelope, body):
    raw = Raw(server.url)
    if body == b"huge":    # announced, never sent: the answer cannot depend on reading it
        raw.send_head("POST", path, {"Content-Type": "application/json", "Content-Length": str(300 * MiB)})
    else:
        raw.send_head("POST", path, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        raw.send(body)
    status, _, answer = raw.read_response()
    assert status == 401, answer
    envelope(answer)
    raw.close()


def test_aries_memory_stays_flat_under_a_huge_unauthenticated_body(server):
    pid = server.proc.pid
    before = rss_kib(pid)
    raw = Raw(server.url)
    raw.send_head("POST", "/aries/api/v1/image/create",
                  {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    sent = 0
    while sent < 300 * MiB and not raw.response_ready():
        if not raw.send_chunk(b"[" * MiB):
            break
        sent += MiB
    status, _, body = raw.read_response()
    assert status == 401
    aries_envelope(body, "Unauthorized")
    assert rss_kib(pid) - before < 64 * 1024
    raw.close()


# --- item 3: nesting depth -----------------------------------------------------------------

@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("face", ["keystone", "glance-create", "glance-patch", "glance-import", "metadefs",
                                  "native", "aries"])
def test_deep_nesting_is_400_and_the_connection_stays(server, deep, face):
    token = server.token("admin")
    image_id = "00000000-0000-0000-0000-000000000000"
    path, method, headers, check = {
        "keystone": ("/identity/v3/auth/tokens", "POST", {}, lambda b: glance_envelope(b, 400)),
        "glance-create": ("/v2/images", "POST", {"X-Auth-Token": token}, lambda b: glance_envelope(b, 400)),
        "glance-patch": (f"/v2/images/{image_id}", "PATCH",
                         {"X-Auth-Token": token, "Content-Type": "application/openstack-images-v2.1-json-patch"},
                         lambda b: glance_envelope(b, 400)),
        "glance-import": (f"/v2/images/{image_id}/import", "POST", {"X-Auth-Token": token},
                          lambda b: glance_envelope(b, 400)),
        "metadefs": ("/v2/metadefs/namespaces", "POST", {"X-Auth-Token": token}, lambda b: glance_envelope(b, 400)),
        "native": ("/vmimage/v1/servers", "POST", {"X-Auth-Token": token}, lambda b: native_envelope(b, 400)),
        "aries": ("/aries/api/v1/image/create", "POST", {"Authorization": basic("admin", "admin")},
                  lambda b: aries_envelope(b, "InvalidParameter")),
    }[face]
    raw = Raw(server.url)
    for _ in range(2):      # the same kept-alive connection answers twice
        raw.send_head(method, path, {"Content-Type": "application/json", **headers,
                                     "Content-Length": str(len(deep))})
        raw.send(deep)
        status, resp_headers, body = raw.read_response()
        assert status == 400, body
        check(body)
        assert resp_headers.get("connection") != "close"
    raw.close()


def test_moderate_nesting_is_still_accepted(server):
    with server.client("demo") as http:
        nested: object = "leaf"
        for _ in range(20):
            nested = [nested]
        resp = http.post("/v2/tasks", json={"type": "import", "input": {"x": nested}})
        assert resp.status_code in (400, 403), resp.text      # refused for what it says, not for its shape
        assert "nests deeper" not in resp.text


# --- item 2: stalled uploads ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tight_server(tmp_path_factory, database_factory):
    srv = start_server(tmp_path_factory.mktemp("tight"), database_factory(),
                       VMIMAGE_UPLOAD_IDLE_SECONDS="2", VMIMAGE_UPLOADS_PER_PROJECT="2")
    yield srv
    srv.stop()


def new_image(http: httpx.Client) -> str:
    resp = http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def stall_upload(server, token: str, image_id: str, what: str = "file") -> Raw:
    raw = Raw(server.url, timeout=30)
    raw.send_head("PUT", f"/v2/images/{image_id}/{what}",
                  {"X-Auth-Token": token, "Content-Type": OCTET, "Content-Length": "1000000"})
    raw.send(b"\0" * 1000)
    return raw


@pytest.mark.parametrize("what,status", [("file", "queued"), ("stage", "queued")])
def test_a_stalled_upload_fails_after_the_idle_timeout_and_leaves_nothing(tight_server, what, status):
    server = tight_server
    with server.client("demo") as http:
        image_id = new_image(http)
        raw = stall_upload(server, server.token("demo"), image_id, what)
        time.sleep(0.5)
        assert http.get(f"/v2/images/{image_id}").json()["status"] in ("saving", "uploading")
        started = time.monotonic()
        code, headers, body = raw.read_response()
        assert code == 408, body
        glance_envelope(body, 408)
        assert time.monotonic() - started < 6
        raw.close()
        image = http.get(f"/v2/images/{image_id}").json()
        assert image["status"] == status and image["size"] is None and image["checksum"] is None
        assert not [b for b in server.stored_blobs() if image_id in b]
        # and the image takes data afterwards
        resp = http.put(f"/v2/images/{image_id}/file", content=b"\1" * 4096, headers={"Content-Type": OCTET})
        assert resp.status_code == 204, resp.text


def test_uploads_past_the_project_cap_get_429_at_once(tight_server):
    server = tight_server
    token = server.token("demo")
    with server.client("demo") as http, ExitStack() as stack:
        held = [stall_upload(server, token, new_image(http)) for _ in range(2)]
        for raw in held:
            stack.callback(raw.close)
        time.sleep(0.3)
        extra = new_image(http)
        started = time.monotonic()
        resp = http.put(f"/v2/images/{extra}/file", content=b"\1" * 4096, headers={"Content-Type": OCTET})
        assert resp.status_code == 429, resp.text
        assert time.monotonic() - started < 1.5
        assert int(resp.headers["Retry-After"]) > 0
        glance_envelope(resp.content, 429)
        assert http.get(f"/v2/images/{extra}").json()["status"] == "queued"
        # staging counts against the same cap
        resp = http.put(f"/v2/images/{extra}/stage", content=b"\1" * 4096, headers={"Content-Type": OCTET})
        assert resp.status_code == 429
        # another project is not held back
        with server.client("alt") as alt:
            other = new_image(alt)
            resp = alt.put(f"/v2/images/{other}/file", content=b"\1" * 4096, headers={"Content-Type": OCTET})
            assert resp.status_code == 204, resp.text
    # once the stalled ones are gone (closed), the project uploads again
    deadline = time.monotonic() + 10
    with server.client("demo") as http:
        while True:
            resp = http.put(f"/v2/images/{extra}/file", content=b"\1" * 4096, headers={"Content-Type": OCTET})
            if resp.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert resp.status_code == 204, resp.text


# --- the IMS face: the body limits in IMS's envelope, with IMG codes ----------------------------

IMS_CREATE = "/v2/cloudimages/action"


@pytest.fixture(scope="module")
def ims_key(tight_server):
    pytest.importorskip("huaweicloudsdkcore")
    from tests.api.test_huawei_ims import Key
    return Key(tight_server, "demo")


def ims_envelope(body: bytes) -> dict:
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and re.fullmatch(r"IMG\.\d{4}", error["code"]) and error["message"], body
    return error


def ims_oversized_body() -> bytes:
    return b'{"name": "' + b"x" * (2 * MiB) + b'", "image_url": "bucket:object.qcow2", "min_disk": 40}'


def test_ims_chunked_body_over_the_cap_is_413_with_an_img_code(tight_server, ims_key):
    """A request signed by the SDK's own signer whose JSON body passes the app's byte cap
    (VMIMAGE_MAX_JSON_BYTES, 1 MiB): cut at the cap, 413 IMG.0001 (was 500 IMG.0061)."""
    body = ims_oversized_body()
    _, headers, _ = ims_key.signed("POST", IMS_CREATE, body)
    raw = Raw(tight_server.url)
    raw.send_head("POST", IMS_CREATE, {**headers, "Transfer-Encoding": "chunked"})
    sent = 0
    while sent < len(body) and not raw.response_ready():
        if not raw.send_chunk(body[sent:sent + (64 << 10)]):
            break
        sent += 64 << 10
    status, resp_headers, answer = raw.read_response()
    assert status == 413, answer
    assert ims_envelope(answer)["code"] == "IMG.0001"
    assert resp_headers.get("connection") == "close" and resp_headers.get("x-request-id")
    raw.close()
    # nothing changed, and a signed request of a normal size is served
    assert ims_key.client().show_image_quota(_quota_request()).quotas.resources


def test_ims_declared_body_over_the_cap_is_413_with_an_img_code(tight_server, ims_key):
    body = ims_oversized_body()
    _, headers, _ = ims_key.signed("POST", IMS_CREATE, body)
    raw = Raw(tight_server.url)
    raw.send_head("POST", IMS_CREATE, {**headers, "Content-Length": str(len(body))})
    raw.send(body[:1000])
    status, _, answer = raw.read_response()
    raw.close()
    assert status == 413, answer
    assert ims_envelope(answer)["code"] == "IMG.0001"


def test_ims_stalled_body_is_408_with_an_img_code(tight_server, ims_key):
    """The body of a signed create stops arriving: after the idle timeout (2 s here), 408
    IMG.0001 (was 500 IMG.0061), and the connection is closed."""
    body = json.dumps({"name": "stalled-ims", "image_url": "bucket:object.qcow2", "min_disk": 40,
                       "os_version": "CentOS 7.9 64bit"}).encode()
    _, headers, _ = ims_key.signed("POST", IMS_CREATE, body)
    raw = Raw(tight_server.url, timeout=30)
    raw.send_head("POST", IMS_CREATE, {**headers, "Content-Length": str(len(body))})
    raw.send(body[:20])
    started = time.monotonic()
    status, resp_headers, answer = raw.read_response()
    assert status == 408, answer
    assert ims_envelope(answer)["code"] == "IMG.0001"
    assert 1 < time.monotonic() - started < 6
    assert resp_headers.get("connection") == "close"
    raw.close()
    listed = ims_key.client().list_images(_list_request("stalled-ims"))
    assert listed.images == []


def _quota_request():
    from huaweicloudsdkims.v2 import model
    return model.ShowImageQuotaRequest()


def _list_request(name: str):
    from huaweicloudsdkims.v2 import model
    return model.ListImagesRequest(name=name)


@pytest.fixture(scope="module")
def default_server(tmp_path_factory, database_factory):
    """Default limits (8 uploads per project, 60 s idle timeout)."""
    srv = start_server(tmp_path_factory.mktemp("defaults"), database_factory())
    yield srv
    srv.stop()


def other_projects_round(server, clients: int = 8) -> list[float]:
    """Clients of two other projects each log in, list, and create + upload an image: timings."""
    def one(i: int) -> list[float]:
        timings = []
        persona = "alt" if i % 2 else "admin"
        started = time.monotonic()
        resp = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=auth_body(persona, persona, persona),
                          timeout=10)
        assert resp.status_code == 201
        timings.append(time.monotonic() - started)
        headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
            started = time.monotonic()
            assert c.get("/v2/images").status_code == 200
            timings.append(time.monotonic() - started)
            started = time.monotonic()
            image_id = new_image(c)
            resp = c.put(f"/v2/images/{image_id}/file", content=b"\2" * (256 << 10),
                         headers={"Content-Type": OCTET})
            assert resp.status_code == 204, resp.text
            timings.append(time.monotonic() - started)
            assert c.get(f"/v2/images/{image_id}").json()["status"] == "active"
        return timings

    with ThreadPoolExecutor(clients) as pool:
        return [t for ts in pool.map(one, range(clients)) for t in ts]


def test_45_stalled_uploads_do_not_freeze_other_projects(default_server):
    """Issue 11's attack: 45 sockets each start PUT /file (1,000 of 1,000,000 bytes) and stall.
    Meanwhile other projects log in, list and upload within a second or two each (or, on a
    machine busy with other work, no slower than 1.5 times the same round without the attack);
    before the fix they timed out (10 s here) as long as the uploads stalled."""
    server = default_server
    token = server.token("demo")
    quiet = other_projects_round(server)
    baseline_logins, baseline_rest = max(quiet[0::3]), max(t for i, t in enumerate(quiet) if i % 3)
    with server.client("demo") as http, ExitStack() as stack:
        images = [new_image(http) for _ in range(45)]
        stalled = []
        for image_id in images:
            raw = stall_upload(server, token, image_id)
            stack.callback(raw.close)
            stalled.append(raw)
        time.sleep(1)
        refused = sum(1 for raw in stalled if raw.response_ready())
        assert refused == 45 - 8          # the project's excess got its 429 at once

        timings = other_projects_round(server)
        # Logins queue for the two password-check slots (scrypt, CPU-bound): their time follows
        # the machine's load, not the stalled uploads, so they are held to "not frozen" only.
        logins, rest = timings[0::3], [t for i, t in enumerate(timings) if i % 3]
        assert max(rest) < max(2.0, 1.5 * baseline_rest), (baseline_rest, timings)
        assert max(logins) < 8.0, (baseline_logins, timings)
        # the stalled ones are still hanging (none finished, none failed yet)
        statuses = [http.get(f"/v2/images/{i}").json()["status"] for i in images]
        assert statuses.count("saving") == 8
