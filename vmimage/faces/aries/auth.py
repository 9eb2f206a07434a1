"""Who is calling: a Bearer token of vmimage's identity, or HTTP Basic user:password."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from vmimage.core.errors import Unauthenticated
from vmimage.core.policy import Caller
from vmimage.faces.contract import face_context


def aries_caller(request: Request) -> Caller:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    identity = face_context(request).identity
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return identity.caller(credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            user, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed Basic credentials") from None
        if sep and user:
            return identity.caller_for_password(user, password, request.client.host if request.client else None)
    raise Unauthenticated("Bearer token or Basic credentials required")
