"""Who is calling: a request signed with SDK-HMAC-SHA256 by an access key of vmimage's identity.

The key stands for a user in one project; the request's project (X-Project-Id, or the
`{project_id}` of the path) must be that project. JSON bodies are read (within a cap) and
their hash checked; an upload declares `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` and streams.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core.errors import Forbidden, Invalid, TooLarge, Unauthenticated
from vmimage.core.policy import Caller
from vmimage.faces.contract import face_context
from vmimage.faces.http import json_object, parse_json
from vmimage.faces.huawei_ims import signature as sig

MAX_JSON_BODY = 1 << 20     # a JSON request body larger than this is refused unread


def utf8_headers(request: Request) -> dict[str, str]:
    """Header values as the client wrote them: UTF-8 (ASGI hands them over as latin-1)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _is_json(headers: dict[str, str]) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json") or media.endswith("-json")


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"The request body is larger than {cap} bytes", limit=cap)
    chunks, held = [], 0
    async for chunk in request.stream():
        held += len(chunk)
        if held > cap:
            raise TooLarge(f"The request body is larger than {cap} bytes", limit=cap)
        chunks.append(chunk)
    return b"".join(chunks)


async def ims_caller(request: Request) -> Caller:
    """FastAPI dependency: the caller of a correctly signed request (Unauthenticated otherwise);
    the JSON body it read is kept for body_object()."""
    cached = getattr(request.state, "ims_caller", None)
    if cached is not None:
        return cached
    headers = utf8_headers(request)
    if not sig.is_signed(headers):
        raise Unauthenticated("The request is not signed (Authorization: SDK-HMAC-SHA256 ...)")
    try:
        auth = sig.parse_authorization(headers["authorization"])
    except sig.SignatureError as exc:
        raise Unauthenticated(str(exc)) from None
    grant = await run_in_threadpool(face_context(request).identity.access_key, auth.access_key)
    unsigned = headers.get("x-sdk-content-sha256") == sig.UNSIGNED_PAYLOAD
    body: bytes | None = None
    if headers.get("content-length") == "0":
        body = b""          # the signer hashes an empty body as such, even when told UNSIGNED-PAYLOAD
    elif _is_json(headers) or not unsigned:
        body = await _read_capped(request, MAX_JSON_BODY)
        if unsigned and body and _is_json(headers):
            raise Unauthenticated("A JSON body must be signed (not UNSIGNED-PAYLOAD)")
    try:
        payload = sig.payload_hash(headers, body)
        sig.verify(auth, grant.secret, request.method, request.scope.get("raw_path", b"").decode("latin-1")
                   .split("?", 1)[0] or request.url.path, request.scope.get("query_string", b"").decode("latin-1"),
                   headers, payload)
    except sig.SignatureError as exc:
        raise Unauthenticated(str(exc)) from None
    project = headers.get("x-project-id")
    if project is not None and project != grant.caller.project_id:
        raise Forbidden("X-Project-Id is not the access key's project", field="project_id")
    request.state.ims_body = body
    request.state.ims_caller = grant.caller
    return grant.caller


def same_project(who: Caller, project_id: str) -> None:
    """A path's {project_id} must be the caller's project."""
    if project_id != who.project_id:
        raise Forbidden("The project in the path is not the access key's project", field="project_id")


def body_value(request: Request) -> Any:
    """The signed request's JSON body (None when empty)."""
    return parse_json(getattr(request.state, "ims_body", None) or b"", None)


def body_object(request: Request) -> dict:
    value = body_value(request)
    if value is None:
        raise Invalid("The request body is empty", field="body", reason="missing")
    return json_object(value)
