"""Replay defence for signed requests: a request's date must be near now; its nonce, and the
signature of a state-changing request, must not have been seen within the window. What was
seen lives in the database, so every process of the service refuses a request another
process has already served.

A signed write is served once: a second request with the very same signature is refused,
whatever nonce it carries (an unsigned nonce does not make a captured request new). The one
cost: a client that sends the same write twice with the same signature — the same call
twice within one second of its clock, the resolution of the signed date — must sign it anew.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from vmimage.core.errors import Duplicate, Unauthenticated
from vmimage.core.services.deps import Deps

WINDOW = timedelta(minutes=15)
SIGNATURE_PREFIX = "sig:"
_KEY_LENGTH = 128       # request_nonces.nonce


def check_date(deps: Deps, signed_at: datetime, window: timedelta = WINDOW) -> None:
    """signed_at: the request's own date (naive UTC); it must be within the window of now."""
    if abs(deps.clock() - signed_at) > window:
        raise Unauthenticated("The request date is too far from the server's time")


def signature_key(dialect: str, signature: str) -> str:
    """What stands for a signed write in the replay memory: "sig:<dialect>:<signature>"."""
    key = f"{SIGNATURE_PREFIX}{dialect}:{signature.lower()}"
    if len(key) > _KEY_LENGTH:
        key = f"{SIGNATURE_PREFIX}{dialect}:sha256:{hashlib.sha256(signature.lower().encode()).hexdigest()}"
    return key[:_KEY_LENGTH]


def check_fresh(deps: Deps, signed_at: datetime, nonce: str | None = None, signed_write: str | None = None,
                window: timedelta = WINDOW) -> None:
    """Refuses (Unauthenticated) a request dated outside the window, or whose nonce or write
    signature (signature_key()) was already seen. Both are remembered for twice the window
    (a request may be dated up to one window ahead or behind) and then forgotten."""
    check_date(deps, signed_at, window)
    keys = []
    if nonce:
        if not 8 <= len(nonce) <= _KEY_LENGTH or nonce.startswith(SIGNATURE_PREFIX):
            raise Unauthenticated("Invalid nonce")
        keys.append((nonce, "The nonce was already used"))
    if signed_write:
        keys.append((signed_write, "This signed request was already served; sign it anew"))
    if not keys:
        return
    now = deps.clock()
    try:
        with deps.uow(write=True) as uow:
            uow.nonces.forget_before(now - 2 * window)
            for key, refusal in keys:
                if uow.nonces.seen(key):
                    raise Unauthenticated(refusal)
                uow.nonces.add(key, now)
            uow.commit()
    except Duplicate:       # another process took one of the keys meanwhile
        raise Unauthenticated("This request was already served (its nonce or signature was seen)") from None
