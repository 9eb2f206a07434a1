"""Requests signed with an access key (the Huawei IMS and JD Cloud faces): one path for all.

A dialect is a `SignatureScheme`: how it reads its Authorization and computes its signature
(pure functions in the face's signature.py). Everything else is done here, the same way for
every dialect, before a handler runs:

1. The signature's claims are parsed from the headers; `host` must be a signed header.
2. The request's date must lie within the core's replay window (core/services/replay.py).
3. The access key is looked up through the identity port.
4. The body is read once, under the app-wide cap (limits.BodyLimits; a streaming route's
   body too, when its payload is signed and must be hashed). A payload declared unsigned
   is not covered by the signature (as Huawei's gateway serves it: the SDK signs every
   body that is not JSON so, a JSON-patch included): an upload streams it; any other route
   reads it under the same cap once the signature holds, and hands it on.
5. The signature is checked, and what the handler acts on must be what was signed: the
   path it routes on, and every query item (a signer that leaves items out of its
   canonical form, as JD's drops an item without '=', would otherwise let `&platform` be
   added to a signed describeImages and change its answer).
6. Replays are refused by the core, in the database, so by every process: a nonce seen
   before (where the dialect has one), and a state-changing request (POST, PUT, PATCH,
   DELETE; not a query sent as a POST, marked `reads_only`) whose signature was already seen
   within the window — whatever its nonce, since
   neither SDK signs its nonce. Reads (GET, HEAD) are not refused for replay.

The cost of rule 6: the very same signed write is served once. A client that sends the same
write twice with the same signature — e.g. the same call twice within one second of the
signer's clock, the resolution of the signed date — gets 401 for the second and must sign
it anew.

The face's caller dependency calls `verify()` and adds its own checks; handlers take the
verified body from the dependency `signed_body(caller)` makes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core import audit
from vmimage.core.errors import SignatureFailed, Unauthenticated
from vmimage.core.log_context import note_caller
from vmimage.core.policy import Caller
from vmimage.core.services.replay import check_date, check_fresh, signature_key
from vmimage.faces import limits
from vmimage.faces.contract import face_context

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
F = TypeVar("F", bound=Callable[..., Any])
_STATE = "signed_request"
_CLAIMED_KEY = "signed_access_key"


@dataclass(frozen=True)
class SignedRequest:
    """The request as its signature covers it, off the wire."""
    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]        # lowercased names; a repeated header's values joined by ","
    path_params: Mapping[str, str]


@dataclass(frozen=True)
class Claim:
    """What a signed request says of itself, read before its body."""
    access_key: str
    signed_at: datetime               # naive UTC
    signature: str                    # hex
    signed_headers: tuple[str, ...]
    nonce: str | None = None          # a nonce to be used once (None: the dialect has none)
    body_signed: bool = True          # False: the payload is declared unsigned (an upload may stream it)
    details: Any = None               # the dialect's own parse of its Authorization, for verify()


class SignatureScheme(Protocol):
    """A dialect of access-key signatures."""
    dialect: str                                  # names the dialect in the replay memory
    errors: tuple[type[Exception], ...]           # what its functions raise when a signature does not hold
    utf8_headers: bool                            # header values are UTF-8 (else latin-1)

    def parse(self, request: SignedRequest) -> Claim:
        """The Authorization and the other headers the signature stands on."""
    def verify(self, request: SignedRequest, claim: Claim, secret: str, body: bytes | None) -> None:
        """Raises one of `errors` unless the request was signed with `secret`; body None: unread."""
    def signed_path(self, claim: Claim, raw_path: str) -> str:
        """The decoded path the signature covers."""
    def signed_query(self, claim: Claim, raw_query: str) -> list[tuple[str, str]]:
        """The query items the signature covers, decoded (an item it leaves out is not listed)."""


@dataclass(frozen=True)
class Verified:
    caller: Caller
    body: bytes | None                # None: not read (an unsigned payload a route streams)
    headers: Mapping[str, str]


def wire_headers(request: Request, utf8: bool) -> dict[str, str]:
    """Header values as the client wrote them (ASGI hands them over as bytes); a repeated
    header's values joined by "," so that a signature covers all of them."""
    out: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode("utf-8") if utf8 else raw_value.decode("latin-1")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _marked(request: Request, mark: str) -> bool:
    return bool(getattr(getattr(request.scope.get("route"), "endpoint", None), mark, False))


def _streams(request: Request) -> bool:
    return _marked(request, "streams_body")


def reads_only(endpoint: F) -> F:
    """Marks a route that answers a query sent as a POST (IMS's images by tags): it changes
    nothing, so, like a GET, the same signed request may be sent again (rule 6)."""
    setattr(endpoint, "reads_only", True)
    return endpoint


async def verify(request: Request, scheme: SignatureScheme) -> Verified:
    """The signed request's caller and body, every check above passed (SignatureFailed
    otherwise, rendered by the face's error table as Unauthenticated). Done once per request."""
    done = getattr(request.state, _STATE, None)
    if done is not None:
        return done
    try:
        return await _verify(request, scheme)
    except Unauthenticated as exc:      # the key unknown or disabled, the date out of its window, a replay
        failed = exc if isinstance(exc, SignatureFailed) else SignatureFailed(exc.message, **exc.fields)
        # The access key's id names the caller; the signature itself never goes into the trail.
        await run_in_threadpool(audit.record, face_context(request).deps.uow, audit.event(
            audit.SIGNATURE, _claimed_key(request), outcome=audit.FAILURE, detail=scheme.dialect))
        raise failed from None


def _claimed_key(request: Request) -> str | None:
    """The access key the request says it was signed with, once its Authorization parsed."""
    return getattr(request.state, _CLAIMED_KEY, None)


async def _verify(request: Request, scheme: SignatureScheme) -> Verified:
    headers = wire_headers(request, scheme.utf8_headers)
    raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.scope["path"]
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    wire = SignedRequest(request.method, raw_path, raw_query, headers, request.path_params)
    try:
        claim = scheme.parse(wire)
    except scheme.errors as exc:
        raise SignatureFailed(str(exc)) from None
    setattr(request.state, _CLAIMED_KEY, claim.access_key)
    if "host" not in claim.signed_headers:
        raise SignatureFailed("The host header must be signed")
    context = face_context(request)
    check_date(context.deps, claim.signed_at)
    grant = await run_in_threadpool(context.identity.access_key, claim.access_key)
    body = None
    if claim.body_signed:
        if _streams(request):
            limits.cap_body(request.scope)      # read whole to be hashed: held to the cap
        body = await request.body()
    try:
        scheme.verify(wire, claim, grant.secret, body)
    except scheme.errors as exc:
        raise SignatureFailed(str(exc)) from None
    if not claim.body_signed and not _streams(request):
        body = await request.body()     # unsigned, read only now that the signature holds
    if scheme.signed_path(claim, raw_path) != request.scope["path"]:
        raise SignatureFailed("The path is not the one signed")
    if Counter(scheme.signed_query(claim, raw_query)) != Counter(request.query_params.multi_items()):
        raise SignatureFailed("The query has items the signature does not cover")
    write = request.method in WRITES and not _marked(request, "reads_only")
    if claim.nonce or write:
        once = signature_key(scheme.dialect, claim.signature) if write else None
        await run_in_threadpool(check_fresh, context.deps, claim.signed_at, claim.nonce, once)
    verified = Verified(note_caller(grant.caller), body, headers)
    setattr(request.state, _STATE, verified)
    return verified


def signed_body(caller: Callable[..., Any]) -> Callable[..., Any]:
    """A FastAPI dependency: the verified body (None when unread) of a request whose caller
    the face's `caller` dependency resolved."""
    async def verified_body(request: Request, _who: Caller = Depends(caller)) -> bytes | None:
        return getattr(request.state, _STATE).body
    return verified_body
