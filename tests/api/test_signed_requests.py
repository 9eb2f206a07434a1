"""Access-key-signed requests (Huawei IMS, JD Cloud) against a hostile client: captured requests
replayed, query items the signature leaves out, a credential scope or signed headers that
are not the request's. Requests are signed by each SDK's own signer and sent raw with httpx,
so they can be captured and sent again."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("huaweicloudsdkcore")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.sdk_request import SdkRequest  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer as HuaweiSigner  # noqa: E402
from jdcloud_sdk.core.credential import Credential  # noqa: E402
from jdcloud_sdk.core.logger import get_default_logger  # noqa: E402
from jdcloud_sdk.core.signer import Signer as JdSigner  # noqa: E402

from tests.conftest import PG_ADMIN_URL, start_server  # noqa: E402

REGION = "cn-north-1"
JSON = "application/json;charset=utf-8"
OCTET = "application/octet-stream"
MiB = 1 << 20


class HostlessSigner(HuaweiSigner):
    """The SDK's signer, leaving `host` out of SignedHeaders (the signature is right for the rest)."""

    @classmethod
    def _process_signed_headers(cls, request: SdkRequest) -> list[str]:
        return [name for name in super()._process_signed_headers(request) if name != "host"]


class PayloadSigner(HuaweiSigner):
    """The SDK's signer with the payload hashed even for octet-stream (it sends UNSIGNED-PAYLOAD)."""

    @classmethod
    def _process_content_header(cls, request: SdkRequest) -> None:
        request.header_params["X-Sdk-Content-Sha256"] = hashlib.sha256(request.body or b"").hexdigest()


class Keys:
    """An access key of a persona, and requests signed with it by each SDK's signer."""

    def __init__(self, server, persona: str) -> None:
        made = json.loads(server.admin_cli("access-key", "create", "--user", persona))
        self.ak, self.sk, self.project = made["access_key"], made["secret_key"], made["project_id"]
        self.url = server.url

    def ims(self, method: str, path: str, body: bytes = b"", query: list | None = None,
            content_type: str = JSON, signer: type[HuaweiSigner] = HuaweiSigner) -> tuple[str, dict, bytes]:
        """(url, headers, body) as huaweicloudsdkcore signs them."""
        headers = {"Content-Type": content_type, "X-Project-Id": self.project,
                   "User-Agent": "huaweicloud-usdk-python/3.0"}
        request = SdkRequest(method=method, schema="http", host=self.url.removeprefix("http://"), resource_path=path,
                             uri=path, query_params=list(query or []), header_params=headers, body=body)
        signer(BasicCredentials(self.ak, self.sk, self.project)).sign(request)
        return f"{self.url}{request.uri}", dict(request.header_params), body

    def jd(self, method: str, path: str, body: str = "", region: str = REGION, service: str = "vm") -> dict:
        """The headers jdcloud_sdk's signer makes (Host included: a captured request keeps it)."""
        headers = {"User-Agent": "JdcloudSdkPython/1.2.9 vm/1.6.1", "Content-Type": "application/json"}
        JdSigner(get_default_logger()).sign(method=method, service=service, region=region, uri=self.url + path,
                                            headers=headers, data=body, credential=Credential(self.ak, self.sk),
                                            security_token="")
        return {**headers, "Host": self.url.removeprefix("http://")}


def send(method: str, url: str, headers: dict, body: bytes | str = b"") -> httpx.Response:
    return httpx.request(method, url, headers=headers, content=body.encode() if isinstance(body, str) else body,
                         timeout=60)


def fresh_nonce(headers: dict) -> dict:
    return {**headers, "x-jdcloud-nonce": str(uuid.uuid4())}


def ims_refused(resp: httpx.Response, words: str = "") -> None:
    assert resp.status_code == 401, resp.text
    assert resp.json()["error_code"] == "APIGW.0301" and words in resp.json()["error_msg"], resp.text


def jd_refused(resp: httpx.Response, words: str = "") -> None:
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["status"] == "UNAUTHENTICATED" and words in error["message"], resp.text


def ims_image(key: Keys, name: str | None = None, disk_format: str = "qcow2") -> str:
    url, headers, body = key.ims("POST", "/v2/images", json.dumps(
        {"name": name or f"signed-{uuid.uuid4().hex[:8]}", "disk_format": disk_format}).encode())
    resp = send("POST", url, headers, body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def ims_members(key: Keys, image_id: str) -> list[str]:
    url, headers, _ = key.ims("GET", f"/v2/images/{image_id}/members")
    resp = send("GET", url, headers)
    assert resp.status_code == 200, resp.text
    return [m["member_id"] for m in resp.json()["members"]]


def jd_image_ref(key: Keys, name: str) -> str:
    """The JD id of the caller's image of this name."""
    path = f"/v1/regions/{REGION}/images?imageSource=private&imageName={name}"
    resp = send("GET", key.url + path, key.jd("GET", path))
    assert resp.status_code == 200, resp.text
    (image,) = [i for i in resp.json()["result"]["images"] if i["name"] == name]
    return image["imageId"]


def jd_describe(key: Keys, ref: str) -> int:
    path = f"/v1/regions/{REGION}/images/{ref}"
    return send("GET", key.url + path, key.jd("GET", path)).status_code


def next_second() -> None:
    time.sleep(1.01 - time.time() % 1)


@pytest.fixture(scope="module")
def demo(server) -> Keys:
    return Keys(server, "demo")


@pytest.fixture(scope="module")
def alt(server) -> Keys:
    return Keys(server, "alt")


# --- replays of writes ---------------------------------------------------------------------------

def test_ims_replayed_add_member_after_its_removal_is_refused(demo, alt):
    image_id = ims_image(demo)
    add = demo.ims("POST", f"/v2/images/{image_id}/members", json.dumps({"member": alt.project}).encode())
    assert send("POST", *add).status_code == 200
    assert ims_members(demo, image_id) == [alt.project]
    url, headers, _ = demo.ims("DELETE", f"/v2/images/{image_id}/members/{alt.project}")
    assert send("DELETE", url, headers).status_code == 204
    ims_refused(send("POST", *add), "already")
    assert ims_members(demo, image_id) == []


def test_jd_replayed_share_after_unshare_is_refused_with_a_fresh_nonce_too(server, demo, alt):
    name = f"jd-share-{uuid.uuid4().hex[:8]}"
    ims_image(demo, name)
    ref = jd_image_ref(demo, name)
    path = f"/v1/regions/{REGION}/images/{ref}:share"
    body = json.dumps({"regionId": REGION, "imageId": ref, "pins": [alt.project]})
    share = demo.jd("POST", path, body)
    resp = send("POST", server.url + path, share, body)
    assert resp.status_code == 200 and "error" not in resp.json(), resp.text
    assert jd_describe(alt, ref) == 200
    unshare_path = f"/v1/regions/{REGION}/images/{ref}:unshare"
    unshare_body = json.dumps({"regionId": REGION, "imageId": ref, "pins": [alt.project]})
    assert send("POST", server.url + unshare_path, demo.jd("POST", unshare_path, unshare_body),
                unshare_body).status_code == 200
    assert jd_describe(alt, ref) == 404
    jd_refused(send("POST", server.url + path, share, body), "nonce")             # as captured
    jd_refused(send("POST", server.url + path, fresh_nonce(share), body), "already")  # the nonce is not signed
    assert jd_describe(alt, ref) == 404


def test_the_same_write_signed_anew_is_served(demo):
    """The rule's one cost: the very same signed write is served once; signed again (a second
    later: the signed date's resolution) it is a new request."""
    image_id = ims_image(demo)
    url, headers, _ = demo.ims("PUT", f"/v2/images/{image_id}/tags/t1")
    assert send("PUT", url, headers).status_code == 204
    ims_refused(send("PUT", url, headers), "sign it anew")
    next_second()
    url, headers, _ = demo.ims("PUT", f"/v2/images/{image_id}/tags/t1")
    assert send("PUT", url, headers).status_code == 204


def test_a_read_replayed_is_still_served(server, demo):
    url, headers, _ = demo.ims("GET", "/v2/cloudimages", query=[("limit", 5)])
    assert [send("GET", url, headers).status_code for _ in range(3)] == [200, 200, 200]
    path = f"/v1/regions/{REGION}/images?imageSource=private"
    headers = demo.jd("GET", path)
    assert send("GET", server.url + path, headers).status_code == 200
    assert send("GET", server.url + path, fresh_nonce(headers)).status_code == 200
    jd_refused(send("GET", server.url + path, headers), "nonce")      # a nonce is still used once


# --- what the signature does not cover -------------------------------------------------------------

@pytest.mark.parametrize("extra", ["&platform", "&=Ubuntu", "&status&platform"])
def test_a_jd_query_item_without_a_signature_is_refused(server, demo, extra):
    """jdcloud_sdk's canonical query drops an item without '=' (or without a name): appended to
    a captured describeImages it would change the answer, the signature still matching."""
    path = f"/v1/regions/{REGION}/images?imageSource=private"
    headers = demo.jd("GET", path)
    jd_refused(send("GET", server.url + path + extra, headers), "query")
    assert send("GET", server.url + path, headers).status_code == 200     # the refusal used up nothing


def test_an_ims_query_must_mean_what_was_signed(demo):
    """The SDK sends '+' as %2B; a bare '+' is a space to the handler but the same character
    to the canonical query, so it is refused."""
    url, headers, _ = demo.ims("GET", "/v2/cloudimages", query=[("name", "a+b")])
    assert "name=a%2Bb" in url
    ims_refused(send("GET", url.replace("a%2Bb", "a+b"), headers), "query")
    ims_refused(send("GET", url + "&name=other", headers))
    assert send("GET", url, headers).status_code == 200


@pytest.mark.parametrize("region,service", [("cn-south-1", "vm"), ("jdcloud-api", "vm"), (REGION, "disk")])
def test_a_jd_credential_scope_must_be_the_requests(server, demo, region, service):
    path = f"/v1/regions/{REGION}/images?imageSource=private"
    jd_refused(send("GET", server.url + path, demo.jd("GET", path, region=region, service=service)),
               "region" if region != REGION else "service")
    assert send("GET", server.url + path, demo.jd("GET", path)).status_code == 200


def test_a_jd_request_for_an_unknown_region_is_refused_after_its_signature(server, demo):
    path = "/v1/regions/cn-south-9/images?imageSource=private"
    resp = send("GET", server.url + path, demo.jd("GET", path, region="cn-south-9"))
    assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT", resp.text


def test_ims_host_must_be_signed(demo):
    url, headers, _ = demo.ims("GET", "/v1/cloudimages/quota", signer=HostlessSigner)
    assert "host" not in headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    ims_refused(send("GET", url, headers), "host")
    url, headers, _ = demo.ims("GET", "/v1/cloudimages/quota")
    assert send("GET", url, headers).status_code == 200


# --- bodies ------------------------------------------------------------------------------------------

def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"name": "'
    for _ in range(total // (256 << 10)):
        yield b"x" * (256 << 10)


def test_an_ims_body_over_the_app_wide_cap_is_refused_in_ims_envelope(demo):
    url, headers, _ = demo.ims("POST", "/v2/images", b"{}")
    resp = httpx.post(url, headers={k: v for k, v in headers.items() if k.lower() != "content-length"},
                      content=_chunks(4 * MiB), timeout=60)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "IMG.0001", resp.text
    big = b'{"name": "' + b"x" * (2 * MiB) + b'"}'
    url, headers, body = demo.ims("POST", "/v2/images", big)
    resp = send("POST", url, headers, body)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "IMG.0001", resp.text


def test_an_upload_streams_unless_its_payload_is_signed(demo):
    data = bytes(range(256)) * (8 * MiB // 256)             # 8 MiB of raw disk
    image_id = ims_image(demo, disk_format="raw")
    url, headers, body = demo.ims("PUT", f"/v2/images/{image_id}/file", data, content_type=OCTET,
                                  signer=PayloadSigner)
    assert headers["X-Sdk-Content-Sha256"] != "UNSIGNED-PAYLOAD"
    resp = send("PUT", url, headers, body)        # hashed before anything is done: held to the cap
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "IMG.0001", resp.text
    small = data[:64 << 10]
    url, headers, body = demo.ims("PUT", f"/v2/images/{image_id}/file", small, content_type=OCTET,
                                  signer=PayloadSigner)
    assert send("PUT", url, headers, body).status_code == 204
    other = ims_image(demo, disk_format="raw")
    url, headers, body = demo.ims("PUT", f"/v2/images/{other}/file", data, content_type=OCTET)
    assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert send("PUT", url, headers, body).status_code == 204
    url, headers, _ = demo.ims("GET", f"/v2/images/{other}")
    assert send("GET", url, headers).json()["size"] == len(data)


# --- two processes, one database ------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two vmimage processes on one fresh PostgreSQL database (and one data dir: the sealed
    secrets' key)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"vmimage_signed_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    tmp = tmp_path_factory.mktemp("signed-pair")
    first = start_server(tmp, url)
    second = start_server(tmp, url, provision=False, data_dir=first.data_dir)
    yield first, second
    second.stop()
    first.stop()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_a_write_served_by_one_process_is_refused_by_the_other(pair):
    first, second = pair
    key = Keys(first, "demo")
    name = f"pair-{uuid.uuid4().hex[:8]}"
    url, headers, body = key.ims("POST", "/v2/images", json.dumps({"name": name}).encode())
    assert send("POST", url, headers, body).status_code == 201
    ims_refused(send("POST", url.replace(first.url, second.url), headers, body), "already")
    url, headers, _ = key.ims("GET", "/v2/cloudimages", query=[("name", name)])
    for server in pair:         # a read is served by either, as often as sent
        resp = send("GET", url.replace(first.url, server.url), headers)
        assert resp.status_code == 200 and len(resp.json()["images"]) == 1, resp.text
    ref = jd_image_ref(key, name)
    path = f"/v1/regions/{REGION}/images/{ref}:modifyImageAttribute"
    body = json.dumps({"regionId": REGION, "imageId": ref, "description": "once"})
    headers = key.jd("POST", path, body)
    assert send("POST", first.url + path, headers, body).status_code == 200
    jd_refused(send("POST", second.url + path, fresh_nonce(headers), body), "already")
