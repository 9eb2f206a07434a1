"""Who is calling: an access key whose secret signed the request (reference §4), through
the identity port; the date and nonce checked against replays by the core."""

from __future__ import annotations

import hashlib
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core.errors import Unauthenticated
from vmimage.core.policy import Caller
from vmimage.core.services.replay import check_fresh
from vmimage.faces.contract import face_context
from vmimage.faces.jdcloud import signature as sig


def _verify(request: Request, body: bytes) -> tuple[Caller, datetime, str | None]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        auth = sig.parse_authorization(headers.get("authorization", ""))
    except sig.BadSignature as exc:
        raise Unauthenticated(str(exc)) from None
    jd_date = headers.get("x-jdcloud-date", "")
    try:
        signed_at = datetime.strptime(jd_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise Unauthenticated("x-jdcloud-date must be yyyymmddThhmmssZ") from None
    if jd_date[:8] != auth.date:
        raise Unauthenticated("The credential date is not the request's date")
    declared = headers.get("x-jdcloud-content-sha256")
    if declared is not None and declared.lower() != hashlib.sha256(body).hexdigest():
        raise Unauthenticated("x-jdcloud-content-sha256 does not match the body")
    if "host" not in auth.signed_headers:
        raise Unauthenticated("The host header must be signed")
    grant = face_context(request).identity.access_key(auth.access_key)
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?", 1)[0]
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    expected = sig.signature(auth, grant.secret, request.method, raw_path, raw_query, headers, jd_date, body)
    if not sig.matches(expected, auth.signature):
        raise Unauthenticated("The signature does not match")
    return grant.caller, signed_at, headers.get("x-jdcloud-nonce")


async def jd_caller(request: Request) -> Caller:
    """The signed request's caller; the body read here is kept for the handler."""
    body = await request.body()
    request.state.jd_body = body
    caller, signed_at, nonce = await run_in_threadpool(_verify, request, body)
    await run_in_threadpool(check_fresh, face_context(request).deps, signed_at, nonce)
    return caller
