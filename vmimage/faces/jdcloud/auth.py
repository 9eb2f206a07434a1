"""Who is calling: an access key whose secret signed the request (reference §4), through the
identity port. The checks every access-key dialect shares (date window, nonce and replays,
body, query coverage) are vmimage.faces.signed's; this is how JD's signature is read and
checked, its credential scope naming this request's region and the `vm` service."""

from __future__ import annotations

import hashlib
from datetime import datetime

from dataclasses import replace

from starlette.requests import Request

from vmimage.core.policy import Caller
from vmimage.faces.signed import Claim, SignedRequest, signed_body, verify
from vmimage.faces.jdcloud import signature as sig
from vmimage.faces.jdcloud.settings import core_region


class JdSignature:
    """JDCLOUD3-HMAC-SHA256 (and the legacy JDCLOUD2) as a vmimage.faces.signed.SignatureScheme."""
    dialect = "jdcloud"
    errors: tuple[type[Exception], ...] = (sig.BadSignature,)
    utf8_headers = False

    def parse(self, request: SignedRequest) -> Claim:
        headers = request.headers
        auth = sig.parse_authorization(headers.get("authorization", ""))
        jd_date = headers.get("x-jdcloud-date", "")
        try:
            signed_at = datetime.strptime(jd_date, sig.DATE_FORMAT)
        except ValueError:
            raise sig.BadSignature("x-jdcloud-date must be yyyymmddThhmmssZ") from None
        if jd_date[:8] != auth.date:
            raise sig.BadSignature("The credential date is not the request's date")
        region = request.path_params.get("region_id", sig.NO_REGION)
        if auth.region != region:
            raise sig.BadSignature(f"The credential scope's region must be the request's ({region})")
        if auth.service != sig.SERVICE:
            raise sig.BadSignature(f"The credential scope's service must be {sig.SERVICE}")
        return Claim(auth.access_key, signed_at, auth.signature, tuple(auth.signed_headers),
                     nonce=headers.get("x-jdcloud-nonce"), details=(auth, jd_date))

    def verify(self, request: SignedRequest, claim: Claim, secret: str, body: bytes | None) -> None:
        auth, jd_date = claim.details
        body = body or b""
        declared = request.headers.get("x-jdcloud-content-sha256")
        if declared is not None and declared.lower() != hashlib.sha256(body).hexdigest():
            raise sig.BadSignature("x-jdcloud-content-sha256 does not match the body")
        expected = sig.signature(auth, secret, request.method, request.raw_path, request.raw_query,
                                 dict(request.headers), jd_date, body)
        if not sig.matches(expected, auth.signature):
            raise sig.BadSignature("The signature does not match")

    def signed_path(self, claim: Claim, raw_path: str) -> str:
        return sig.signed_path(claim.details[0].algorithm, raw_path)

    def signed_query(self, claim: Claim, raw_query: str) -> list[tuple[str, str]]:
        return sig.query_items(claim.details[0].algorithm, raw_query)


SCHEME = JdSignature()


async def jd_caller(request: Request) -> Caller:
    """FastAPI dependency: the signed request's caller (Unauthenticated otherwise)."""
    who = (await verify(request, SCHEME)).caller
    # The key's project acts in the path's region (an unknown one is refused by the routes).
    region = core_region(request, request.path_params.get("region_id"))
    return replace(who, region=region or str(request.path_params.get('region_id')))


jd_body = signed_body(jd_caller)
