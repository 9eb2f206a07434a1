"""Who is calling: a Bearer token of vmimage's identity, or HTTP Basic user:password."""

from __future__ import annotations

import base64
import binascii

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core.errors import Unauthenticated
from vmimage.core.policy import Caller
from vmimage.faces.contract import face_context


async def aries_caller(request: Request) -> Caller:
    """Awaited on the event loop: a password check waits its turn without a thread."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    identity = face_context(request).identity
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        known = identity.cached_caller(credentials)
        return known if known is not None else await run_in_threadpool(identity.caller, credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            user, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed Basic credentials") from None
        if sep and user:
            return await identity.caller_for_password(user, password,
                                                      request.client.host if request.client else None)
    raise Unauthenticated("Bearer token or Basic credentials required")
