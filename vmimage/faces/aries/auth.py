"""Who is calling: a Bearer token of vmimage's identity, or HTTP Basic user:password."""

from __future__ import annotations

import base64
from dataclasses import replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core.errors import Unauthenticated
from vmimage.core.log_context import note_caller
from vmimage.core.policy import Caller
from vmimage.faces.contract import face_context


def basic_credentials(credentials: str) -> tuple[str, str]:
    """(user, password) of Basic credentials: base64 of UTF-8 "user:password" (RFC 7617);
    Unauthenticated when they are not (a header's non-ASCII bytes arrive as latin-1 text)."""
    try:
        user, sep, password = base64.b64decode(credentials.encode("ascii"), validate=True).decode().partition(":")
    except ValueError:          # non-ASCII, not base64, not UTF-8 (binascii.Error, Unicode*Error)
        raise Unauthenticated("Malformed Basic credentials: base64 of UTF-8 user:password expected") from None
    if not sep or not user:
        raise Unauthenticated("Malformed Basic credentials: user:password expected")
    return user, password


async def aries_caller(request: Request) -> Caller:
    """Awaited on the event loop: a password check waits its turn without a thread."""
    # Aries has no regions: its callers act in their project's region, else the default one.
    who = await _aries_caller(request)
    return note_caller(replace(who, region=who.region or face_context(request).region))


async def _aries_caller(request: Request) -> Caller:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    identity = face_context(request).identity
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        known = identity.cached_caller(credentials)
        return known if known is not None else await run_in_threadpool(identity.caller, credentials)
    if scheme.lower() == "basic" and credentials:
        user, password = basic_credentials(credentials)
        return await identity.caller_for_password(user, password, request.client.host if request.client else None)
    raise Unauthenticated("Bearer token or Basic credentials required")
