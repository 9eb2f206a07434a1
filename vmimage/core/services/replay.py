"""Replay defence for signed requests: a request's date must be near now, and its nonce
must not have been seen within the window. Nonces live in the database, so every process
of the service refuses a request another process has already served."""

from __future__ import annotations

from datetime import datetime, timedelta

from vmimage.core.errors import Duplicate, Unauthenticated
from vmimage.core.services.deps import Deps

WINDOW = timedelta(minutes=15)


def check_fresh(deps: Deps, signed_at: datetime, nonce: str | None, window: timedelta = WINDOW) -> None:
    """signed_at: the request's own date (naive UTC). A nonce is remembered for twice the
    window (a request may be dated up to one window ahead or behind) and then forgotten."""
    now = deps.clock()
    if abs(now - signed_at) > window:
        raise Unauthenticated("The request date is too far from the server's time")
    if not nonce:
        return
    if not 8 <= len(nonce) <= 128:
        raise Unauthenticated("Invalid nonce")
    try:
        with deps.uow(write=True) as uow:
            uow.nonces.forget_before(now - 2 * window)
            if uow.nonces.seen(nonce):
                raise Unauthenticated("The nonce was already used")
            uow.nonces.add(nonce, now)
            uow.commit()
    except Duplicate:
        raise Unauthenticated("The nonce was already used") from None
