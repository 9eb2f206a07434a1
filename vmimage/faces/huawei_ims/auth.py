"""Who is calling: a request signed with SDK-HMAC-SHA256 by an access key of vmimage's identity.

The checks every access-key dialect shares (date window, replays, body, query coverage) are
vmimage.faces.signed's; this is what is IMS's own: how its signature is read and checked,
and the project the request acts in: the one it names (X-Project-Id, or the `{project_id}` of
the path), which must be one the key's user holds a role in (403 otherwise), else the key's;
the request acts in that project's region (the default region when it has none). JSON bodies
are signed; an upload declares `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` and streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vmimage.core.errors import Forbidden, Invalid
from vmimage.core.log_context import note_caller
from vmimage.core.policy import Caller
from vmimage.faces.contract import face_context
from vmimage.faces.signed import Claim, SignedRequest, signed_body, verify
from vmimage.faces.http import json_object, parse_json
from vmimage.faces.huawei_ims import signature as sig


def _is_json(headers: Mapping[str, str]) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json") or media.endswith("-json")


class ImsSignature:
    """SDK-HMAC-SHA256 as a vmimage.faces.signed.SignatureScheme."""
    dialect = "huawei_ims"
    errors: tuple[type[Exception], ...] = (sig.SignatureError,)
    utf8_headers = True          # the SDK's signer sends header values as UTF-8

    def parse(self, request: SignedRequest) -> Claim:
        headers = request.headers
        if not sig.is_signed(headers):
            raise sig.SignatureError("The request is not signed (Authorization: SDK-HMAC-SHA256 ...)")
        auth = sig.parse_authorization(headers["authorization"])
        unsigned = headers.get("x-sdk-content-sha256") == sig.UNSIGNED_PAYLOAD
        # the signer hashes an empty body as such, even when told UNSIGNED-PAYLOAD; a JSON
        # body is read (and refused when unsigned)
        body_signed = headers.get("content-length") == "0" or _is_json(headers) or not unsigned
        return Claim(auth.access_key, sig.request_date(headers), auth.signature, auth.signed_headers,
                     body_signed=body_signed, details=auth)

    def verify(self, request: SignedRequest, claim: Claim, secret: str, body: bytes | None) -> None:
        headers = request.headers
        if body and _is_json(headers) and headers.get("x-sdk-content-sha256") == sig.UNSIGNED_PAYLOAD:
            raise sig.SignatureError("A JSON body must be signed (not UNSIGNED-PAYLOAD)")
        sig.verify(claim.details, secret, request.method, request.raw_path, request.raw_query, headers,
                   sig.payload_hash(headers, body))

    def signed_path(self, _claim: Claim, raw_path: str) -> str:
        return unquote(raw_path)

    def signed_query(self, _claim: Claim, raw_query: str) -> list[tuple[str, str]]:
        return sig.query_items(raw_query)


SCHEME = ImsSignature()


async def ims_caller(request: Request) -> Caller:
    """FastAPI dependency: the caller of a correctly signed request (Unauthenticated otherwise)."""
    verified = await verify(request, SCHEME)
    who = verified.caller
    header = verified.headers.get("x-project-id")
    path = request.path_params.get("project_id")
    if header is not None and path is not None and header != path:
        raise Forbidden("X-Project-Id is not the path's project", field="project_id")
    named = path if path is not None else header
    if named is not None and named != who.project_id:
        who = await run_in_threadpool(face_context(request).identity.caller_in_project, who, named)
    return note_caller(replace(who, region=who.region or face_context(request).region))


ims_body = signed_body(ims_caller)


def same_project(who: Caller, project_id: str) -> None:
    """A path's {project_id} must be the caller's project."""
    if project_id != who.project_id:
        raise Forbidden("The project in the path is not the access key's project", field="project_id")


async def body_value(raw: bytes | None = Depends(ims_body)) -> Any:
    """FastAPI dependency: the signed request's JSON body (None when empty)."""
    return parse_json(raw or b"", None)


async def body_object(value: Any = Depends(body_value)) -> dict:
    """FastAPI dependency: the signed request's JSON object body."""
    if value is None:
        raise Invalid("The request body is empty", field="body", reason="missing")
    return json_object(value)
