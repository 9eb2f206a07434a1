"""The JD face's signature check agrees with the official SDK's signer."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import get_default_logger
from jdcloud_sdk.core.signer import Signer

from vmimage.faces.jdcloud import signature as sig

HOST = "127.0.0.1:8080"


def sdk_sign(method: str, url: str, body: str) -> dict[str, str]:
    headers = {"User-Agent": "JdcloudSdkPython/1.2.9 vm/1.6.1", "Content-Type": "application/json"}
    Signer(get_default_logger()).sign(method=method, service="vm", region="cn-north-1", uri=url,
                                        headers=headers, data=body, credential=Credential("AKTEST", "SKTEST"),
                                        security_token="")
    return headers


def ours(method: str, path: str, query: str, headers: dict[str, str], body: str, secret: str = "SKTEST") -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    lower["host"] = HOST
    auth = sig.parse_authorization(lower["authorization"])
    expected = sig.signature(auth, secret, method, path, query, lower, lower["x-jdcloud-date"], body.encode())
    return sig.matches(expected, auth.signature)


@pytest.mark.parametrize("method,path,query,body", [
    ("POST", "/v1/regions/cn-north-1/instances/i-eumm1234d6:createImage", "",
     json.dumps({"regionId": "cn-north-1", "name": "my-image.1", "dataDisks": None})),
    ("GET", "/v1/regions/cn-north-1/images", "imageSource=private&ids.1=img-1&ids.2=img-2&imageName=my%20image"
     "&pageNumber=1&pageSize=10", ""),
    ("GET", "/v1/regions/cn-north-1/quotas", "filters.1.name=resourceTypes&filters.1.values.1=image", ""),
    ("DELETE", "/v1/regions/cn-north-1/images/img-abcdefghij", "", ""),
])
def test_signature_matches_the_sdk_signer(method, path, query, body):
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    headers = sdk_sign(method, url, body)
    assert headers["Authorization"].startswith("JDCLOUD3-HMAC-SHA256 Credential=AKTEST/")
    assert ours(method, path, query, headers, body)
    assert not ours(method, path, query, headers, body, secret="WRONG")
    assert not ours(method, path, query, headers, body + " ")
    if query:
        assert not ours(method, path, query.replace("1", "2", 1), headers, body)


def test_canonical_uri_encodes_the_action_colon():
    assert (sig.canonical_uri("JDCLOUD3-HMAC-SHA256", "/v1/regions/cn-north-1/instances/i-eumm1234d6:createImage")
            == "/v1/regions/cn-north-1/instances/i-eumm1234d6%3AcreateImage")
    assert sig.canonical_uri("JDCLOUD3-HMAC-SHA256", "//v1//a b") == "/v1/a%20b"
    assert sig.canonical_query("JDCLOUD3-HMAC-SHA256", "b=2&a=my+image&c") == "a=my%20image&b=2"


def test_legacy_jdcloud2_as_the_reference_describes():
    auth = sig.parse_authorization("JDCLOUD2-HMAC-SHA256 Credential=AK/20261122/cn-north-1/vm/jdcloud2_request, "
                                   "SignedHeaders=content-type;host;x-jdcloud-date;x-jdcloud-nonce, Signature=00")
    headers = {"content-type": "application/json", "host": HOST, "x-jdcloud-date": "20261122T133904Z",
               "x-jdcloud-nonce": "n-1"}
    canonical = "\n".join(["GET", "/v1/regions/cn-north-1/images%3Ax", "a=1&b=2",
                           "content-type:application/json\nhost:127.0.0.1:8080\nx-jdcloud-date:20261122T133904Z\n"
                           "x-jdcloud-nonce:n-1\n", "content-type;host;x-jdcloud-date;x-jdcloud-nonce",
                           hashlib.sha256(b"").hexdigest()])
    to_sign = "\n".join(["JDCLOUD2-HMAC-SHA256", "20261122T133904Z", "20261122/cn-north-1/vm/jdcloud2_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = b"JDCLOUD2SK"
    for part in ("20261122", "cn-north-1", "vm", "jdcloud2_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert sig.signature(auth, "SK", "GET", "/v1/regions/cn-north-1/images:x", "b=2&a=1", headers,
                         "20261122T133904Z", b"") == expected


@pytest.mark.parametrize("header", ["", "Bearer x", "JDCLOUD3-HMAC-SHA256 Credential=AK/d/r/vm/jdcloud2_request, "
                                    "SignedHeaders=host, Signature=ab", "JDCLOUD3-HMAC-SHA256 Credential=AK"])
def test_malformed_authorization_is_refused(header):
    with pytest.raises(sig.BadSignature):
        sig.parse_authorization(header)
