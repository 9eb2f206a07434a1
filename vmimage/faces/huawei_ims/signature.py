"""SDK-HMAC-SHA256: the request signature of Huawei Cloud's SDKs, checked as its signer makes it.

The canonical request is six lines — method, URI (each segment percent-encoded with only
unreserved characters and `~` bare, always ending in `/`), the sorted query, the signed
headers as `name:value`, their names, and the payload hash — and the signature is the hex
HMAC-SHA256, keyed with the secret key as it is, of
`SDK-HMAC-SHA256 \\n X-Sdk-Date \\n sha256(canonical request)`. How far the date may be from
now is the core's replay rule, not the signature's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_AUTH = re.compile(r"^\s*(?P<alg>\S+)\s+Access=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
                   r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


class SignatureError(Exception):
    """Why a request's signature does not hold (said to the caller as a 401)."""


@dataclass(frozen=True)
class Authorization:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether the request carries Huawei's signature scheme (any of its algorithms)."""
    return headers.get("authorization", "").lstrip().upper().startswith("SDK-")


def parse_authorization(value: str) -> Authorization:
    match = _AUTH.match(value)
    if match is None:
        raise SignatureError("Malformed Authorization header")
    if match["alg"] != ALGORITHM:
        raise SignatureError(f"Unsupported signing algorithm {match['alg']}")
    signed = tuple(match["signed"].split(";"))
    if "x-sdk-date" not in signed:
        raise SignatureError("X-Sdk-Date must be signed")
    return Authorization(match["ak"], signed, match["sig"].lower())


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(raw_path: str) -> str:
    uri = "/".join(_encode(part) for part in unquote(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def query_items(raw_query: str) -> list[tuple[str, str]]:
    """The query's items as the canonical query covers them: split on `&` and the first `=`,
    percent-decoded (a `+` stays a `+`: the SDK sends a space as %20); empty items carry nothing."""
    return [(unquote(key), unquote(value))
            for key, _, value in (item.partition("=") for item in raw_query.split("&") if item)]


def canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        key, _, value = item.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def request_date(headers: Mapping[str, str]) -> datetime:
    """X-Sdk-Date (naive UTC)."""
    try:
        return datetime.strptime(headers.get("x-sdk-date", ""), DATE_FORMAT)
    except ValueError:
        raise SignatureError("Missing or malformed X-Sdk-Date") from None


def string_to_sign(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                   signed_headers: tuple[str, ...], payload_hash: str) -> str:
    missing = [name for name in signed_headers if name not in headers]
    if missing:
        raise SignatureError(f"Signed header {missing[0]} is missing")
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    canonical = "\n".join([method.upper(), canonical_uri(raw_path), canonical_query(raw_query),
                           canonical_headers, ";".join(signed_headers), payload_hash])
    return "\n".join([ALGORITHM, headers["x-sdk-date"].strip(),
                      hashlib.sha256(canonical.encode()).hexdigest()])


def payload_hash(headers: Mapping[str, str], body: bytes | None) -> str:
    """The payload line as the SDK's signer writes it; `body` None = not read (unsigned payload)."""
    declared = headers.get("x-sdk-content-sha256")
    if body is not None and not body:
        return EMPTY_HASH
    if declared == UNSIGNED_PAYLOAD:
        return UNSIGNED_PAYLOAD
    if body is None:
        raise SignatureError("The request body must be signed")
    actual = hashlib.sha256(body).hexdigest()
    if declared is not None and declared.lower() != actual:
        raise SignatureError("X-Sdk-Content-Sha256 does not match the body")
    return actual


def verify(auth: Authorization, secret: str, method: str, raw_path: str, raw_query: str,
           headers: Mapping[str, str], payload: str) -> None:
    """Raises SignatureError unless the request was signed with `secret`."""
    text = string_to_sign(method, raw_path, raw_query, headers, auth.signed_headers, payload)
    expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError("The request signature does not match")
