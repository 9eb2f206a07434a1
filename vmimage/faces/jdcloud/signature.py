"""JD Cloud request signatures (JDCLOUD3-HMAC-SHA256 and the legacy JDCLOUD2), computed
the way the official SDK computes them. Pure functions: no core, no framework."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

SERVICE = "vm"                  # the credential scope's service
NO_REGION = "jdcloud-api"       # the credential scope's region for an API without a regionId
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ALGORITHMS = {"JDCLOUD3-HMAC-SHA256": ("JDCLOUD3", "jdcloud3_request"),
              "JDCLOUD2-HMAC-SHA256": ("JDCLOUD2", "jdcloud2_request")}
_AUTH = re.compile(r"^(?P<alg>\S+)\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
                   r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


class BadSignature(Exception):
    """The Authorization header is malformed or names an unknown scheme."""


@dataclass(frozen=True)
class Authorization:
    algorithm: str
    access_key: str
    date: str            # yyyymmdd
    region: str
    service: str
    term: str
    signed_headers: list[str]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.term}"


def parse_authorization(header: str) -> Authorization:
    m = _AUTH.match(header or "")
    if not m or m["alg"] not in ALGORITHMS:
        raise BadSignature("Authorization must be JDCLOUD3-HMAC-SHA256 (or JDCLOUD2) Credential, SignedHeaders, "
                           "Signature")
    parts = m["cred"].split("/")
    if len(parts) != 5 or not all(parts):
        raise BadSignature("Malformed Credential")
    ak, date, region, service, term = parts
    if term != ALGORITHMS[m["alg"]][1]:
        raise BadSignature(f"Credential scope must end with {ALGORITHMS[m['alg']][1]}")
    signed = [h.strip().lower() for h in m["signed"].split(";") if h.strip()]
    return Authorization(m["alg"], ak, date, region, service, term, signed, m["sig"].lower())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_uri(algorithm: str, raw_path: str) -> str:
    if algorithm == "JDCLOUD2-HMAC-SHA256":
        return quote(raw_path, "/")
    path = re.sub("/+", "/", unquote_plus(raw_path))
    if not path:
        return "/"
    encoded = quote(path, "/~")
    return encoded if encoded.startswith("/") else "/" + encoded


def canonical_query(algorithm: str, raw_query: str) -> str:
    if not raw_query:
        return ""
    if algorithm == "JDCLOUD2-HMAC-SHA256":
        pairs = sorted("=".join(p.strip() for p in item.split("=")) for item in raw_query.split("&") if item)
        return "&".join(pairs)
    params = []
    for item in raw_query.split("&"):
        if not item:
            continue
        params.append([quote(unquote_plus(part), "~") for part in item.split("=", 1)])
    out = []
    for p in sorted(params):
        if p[0] != "" and len(p) == 2:     # the SDK drops items without '='
            out.append(f"{p[0]}={p[1]}")
    return "&".join(out)


def signed_path(algorithm: str, raw_path: str) -> str:
    """The decoded path the canonical URI stands for: JDCLOUD3's reads `+` as a space and runs
    of `/` as one; JDCLOUD2's encodes the raw path as it is."""
    if algorithm == "JDCLOUD2-HMAC-SHA256":
        return unquote(raw_path)
    return re.sub("/+", "/", unquote_plus(raw_path))


def query_items(algorithm: str, raw_query: str) -> list[tuple[str, str]]:
    """The query's items the canonical query covers, decoded: JDCLOUD3's leaves out an item
    without `=` or with an empty name, as the SDK's signer does."""
    items = [item for item in raw_query.split("&") if item]
    if algorithm != "JDCLOUD2-HMAC-SHA256":
        items = [item for item in items if "=" in item and not item.startswith("=")]
    return [(unquote_plus(key), unquote_plus(value)) for key, _, value in (item.partition("=") for item in items)]


def canonical_headers(signed: list[str], headers: dict[str, str]) -> str:
    return "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in sorted(signed))


def signing_key(algorithm: str, secret: str, date: str, region: str, service: str) -> bytes:
    prefix, term = ALGORITHMS[algorithm]
    key = (prefix + secret).encode()
    for part in (date, region, service, term):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(auth: Authorization, secret: str, method: str, raw_path: str, raw_query: str,
              headers: dict[str, str], jd_date: str, body: bytes) -> str:
    """headers: lowercased names, `host` as the client sent it."""
    canonical = "\n".join([method.upper(), canonical_uri(auth.algorithm, raw_path),
                           canonical_query(auth.algorithm, raw_query),
                           canonical_headers(auth.signed_headers, headers),
                           ";".join(sorted(auth.signed_headers)), _sha256(body)])
    to_sign = "\n".join([auth.algorithm, jd_date, auth.scope, _sha256(canonical.encode())])
    key = signing_key(auth.algorithm, secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
