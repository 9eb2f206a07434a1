"""SDK-HMAC-SHA256 as the official huaweicloudsdkcore signer makes it, and what breaks it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

pytest.importorskip("huaweicloudsdkcore")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.sdk_request import SdkRequest  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer  # noqa: E402

from vmimage.faces.huawei_ims import signature as sig  # noqa: E402

AK, SK = "AKTEST0123456789", "secret-key-value"


def signed(method="POST", path="/v2/cloudimages/action", query=None, body=b'{"name": "x"}',
           content_type="application/json;charset=utf-8"):
    headers = {"Content-Type": content_type, "X-Project-Id": "proj0001", "User-Agent": "huaweicloud-usdk-python/3.0"}
    request = SdkRequest(method=method, schema="http", host="127.0.0.1:9292", resource_path=path, uri=path,
                         query_params=list(query or []), header_params=headers, body=body)
    Signer(BasicCredentials(AK, SK, "proj0001")).sign(request)
    sent = {k.lower(): v for k, v in request.header_params.items()}
    raw_query = request.uri.partition("?")[2]
    return sent, raw_query, request.body


def check(method, path, raw_query, headers, body, secret=SK):
    auth = sig.parse_authorization(headers["authorization"])
    payload = sig.payload_hash(headers, body)
    sig.verify(auth, secret, method, path, raw_query, headers, payload)
    return auth


def test_sdk_signature_verifies():
    headers, query, body = signed()
    auth = check("POST", "/v2/cloudimages/action", query, headers, body)
    assert auth.access_key == AK and "x-sdk-date" in auth.signed_headers


def test_query_is_canonicalised_as_the_sdk_does():
    params = [("name", "my img"), ("__imagetype", "private"), ("protected", False), ("limit", 10)]
    headers, query, _ = signed("GET", "/v2/cloudimages", params, body=b"", content_type="application/json")
    assert query.startswith("__imagetype=private&limit=10")
    check("GET", "/v2/cloudimages", query, headers, b"")
    with pytest.raises(sig.SignatureError):
        check("GET", "/v2/cloudimages", query.replace("limit=10", "limit=11"), headers, b"")


def test_unsigned_payload_upload():
    headers, query, _ = signed("PUT", "/v2/images/abc/file", body=b"\0" * 10, content_type="application/octet-stream")
    assert headers["x-sdk-content-sha256"] == sig.UNSIGNED_PAYLOAD
    check("PUT", "/v2/images/abc/file", query, headers, None)


@pytest.mark.parametrize("tamper", ["secret", "body", "path", "date", "header"])
def test_tampering_is_refused(tamper):
    headers, query, body = signed()
    secret, path = SK, "/v2/cloudimages/action"
    if tamper == "secret":
        secret = "wrong"
    elif tamper == "body":
        body = json.dumps({"name": "y"}).encode()
    elif tamper == "path":
        path = "/v2/cloudimages/other"
    elif tamper == "date":      # the date is signed (how far it may be from now is the core's rule)
        moved = sig.request_date(headers) + timedelta(seconds=1)
        headers = {**headers, "x-sdk-date": moved.strftime(sig.DATE_FORMAT)}
    elif tamper == "header":
        headers = {**headers, "x-project-id": "proj0002"}
    with pytest.raises(sig.SignatureError):
        check("POST", path, query, headers, body, secret=secret)


def test_other_algorithms_and_garbage_refused():
    for value in ["SDK-HMAC-SM3 Access=a, SignedHeaders=x-sdk-date, Signature=00", "Bearer abc", "SDK-HMAC-SHA256"]:
        with pytest.raises(sig.SignatureError):
            sig.parse_authorization(value)
