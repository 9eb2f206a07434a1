"""Every core error, through every face's error table, is a refusal in the face's own envelope,
never a 500; and the one mechanism the tables share (vmimage.faces.errors) walks as it says.

Core error classes are found in vmimage.core.errors and faces in vmimage.app.FACES, so a class
or a face added later is covered without touching this file (a new face needs its envelope
below)."""

from __future__ import annotations

import inspect
import json
import re
import sys
from http import HTTPStatus

import pytest
from starlette.requests import HTTPConnection, Request

from vmimage.app import FACES
from vmimage.core import errors as e
from vmimage.faces.contract import Face, FaceContext
from vmimage.faces.errors import DEFAULT_STATUS, ErrorCodes, qualifiers
from vmimage.faces.mount import face_app

CORE_ERRORS = sorted((cls for cls in vars(e).values()
                      if inspect.isclass(cls) and issubclass(cls, e.VmImageError) and cls is not e.VmImageError),
                     key=lambda cls: cls.__name__)
RETRY_AFTER = 7


def test_the_core_errors_are_found():
    assert {e.NotFound, e.InvalidTransition, e.UnsafeImage, e.TooManyRequests, e.RequestTooLarge,
            e.Stalled} <= set(CORE_ERRORS)


def test_every_family_has_a_default_status():
    """A family added under VmImageError without a default would 500 in faces without a row."""
    for cls in CORE_ERRORS:
        assert any(base in DEFAULT_STATUS for base in cls.__mro__ if base is not e.VmImageError), cls


# --- the faces ---------------------------------------------------------------------------------

def _context() -> FaceContext:
    class _Deps:
        cache = object()
    return FaceContext(deps=_Deps(), identity=None)  # type: ignore[arg-type]


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [(b"host", b"test")], "scheme": "http", "server": ("test", 80),
            "state": {}}


def _first_claimant(scope: dict) -> Face:
    conn = HTTPConnection(scope)
    return next(face for face in FACES if face.claims(conn))


def claimed_path(face: Face) -> tuple[str, str]:
    """(method, path) of one of the face's own routes that the app hands to this face."""
    for route in face_app(face, _context()).router.routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path_format)
        for method in sorted(route.methods or {"GET"}):
            if _first_claimant(_scope(method, path)) is face:
                return method, path
    raise AssertionError(f"no route of {face.name} is claimed by it")


def request_to(face: Face, method: str | None = None, path: str | None = None) -> Request:
    if path is None:
        method, path = claimed_path(face)
    scope = _scope(method or "GET", path)
    assert _first_claimant(scope) is face, (face.name, path)
    scope["state"]["request_id"] = face.new_request_id()
    return Request(scope)


def tables_of(face: Face) -> list[ErrorCodes]:
    """The ErrorCodes a face's error table uses (its own attributes and its module's)."""
    found = [*vars(type(face.errors)).values(), *vars(face.errors).values(),
             *vars(sys.modules[type(face.errors).__module__]).values()]
    return [table for table in found if isinstance(table, ErrorCodes)]


def fields_of(qualifier: str | None) -> dict[str, object] | None:
    """The fields an error carries to meet a row's qualifier (None: a route, met by the path)."""
    if qualifier is None:
        return {}
    if qualifier.startswith("route="):
        return None
    if qualifier.startswith("field="):
        name, _, reason = qualifier.removeprefix("field=").partition("/")
        return {"field": name, **({"reason": reason} if reason else {})}
    return {qualifier: "x1"}


def make(cls: type[e.VmImageError], fields: dict[str, object]) -> e.VmImageError:
    """An instance of a core error with these fields, whatever its constructor asks for."""
    if cls is e.TooManyRequests:
        fields = {"retry_after": RETRY_AFTER, **fields}
    try:
        return cls("refused for a test", **fields)
    except TypeError:       # a constructor of its own (InvalidTransition): same class, same fields
        exc = cls.__new__(cls)
        e.VmImageError.__init__(exc, "refused for a test", **fields)
        return exc


def cases(face: Face) -> list[tuple[type[e.VmImageError], dict[str, object]]]:
    """Every core error class alone, and with the fields of every qualifier the face's tables
    (and the other faces') name, and a dotted field."""
    variants: list[dict[str, object]] = [{}, {"field": "storage.volumes.0.size"}]
    for face_ in FACES:
        for table in tables_of(face_):
            for _, qualifier in table.rows:
                fields = fields_of(qualifier)
                if fields and fields not in variants:
                    variants.append(fields)
    return [(cls, fields) for cls in CORE_ERRORS for fields in variants]


def _openstack(body: dict, status: int, exc: e.VmImageError) -> None:
    assert body == {"error": {"code": status, "title": HTTPStatus(status).phrase, "message": exc.message}}


def _native(body: dict, status: int, exc: e.VmImageError) -> None:
    assert body == {"error": {"code": exc.code, "status": status, "title": HTTPStatus(status).phrase,
                              "message": exc.message}}


def _aries(body: dict, status: int, exc: e.VmImageError) -> None:
    from vmimage.faces.aries.errors import MESSAGES
    assert set(body) == {"code", "message"} and re.fullmatch(r"[A-Z][A-Za-z]+", body["code"]), body
    assert body["message"] == MESSAGES[body["code"]]


def _ims(body: dict, status: int, exc: e.VmImageError) -> None:
    if status == 401:        # the gateway refuses the signature, in the gateway's envelope
        assert body == {"error_code": "APIGW.0301", "error_msg": exc.message}
        return
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert re.fullmatch(r"IMG\.\d{4}", body["error"]["code"]) and body["error"]["message"] == exc.message


def _jd(body: dict, status: int, exc: e.VmImageError) -> None:
    assert set(body) == {"requestId", "error"} and re.fullmatch(r"[0-9a-f]{32}", body["requestId"]), body
    error = body["error"]
    assert set(error) == {"code", "status", "message"} and error["code"] == status and error["message"], body
    assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", error["status"]), body


ENVELOPES = {"keystone": _openstack, "glance_v2": _openstack, "native": _native, "aries": _aries,
             "huawei_ims": _ims, "jdcloud": _jd, "console": _native}


@pytest.mark.parametrize("face", FACES, ids=lambda face: face.name)
def test_no_core_error_is_a_500_in_any_face(face):
    assert face.name in ENVELOPES, f"say what {face.name}'s error envelope looks like"
    envelope = ENVELOPES[face.name]
    request = request_to(face)
    checked = 0
    for cls, fields in cases(face):
        exc = make(cls, fields)
        response = face.errors.core(request, exc)
        status = response.status_code
        where = (face.name, cls.__name__, fields, status, response.body)
        assert 400 <= status < 500 or status == 503, where
        envelope(json.loads(response.body), status, exc)
        if status == 429 and "retry_after" in exc.fields:
            assert response.headers["Retry-After"] == str(RETRY_AFTER), where
        if cls is e.TooManyRequests:
            assert status == 429 and response.headers["Retry-After"] == str(RETRY_AFTER), where
        checked += 1
    assert checked >= len(CORE_ERRORS) * 10


@pytest.mark.parametrize("face", FACES, ids=lambda face: face.name)
def test_the_request_limits_are_413_and_408_in_every_face(face):
    request = request_to(face)
    for cls, status in ((e.RequestTooLarge, 413), (e.Stalled, 408)):
        exc = make(cls, {"limit": 1 << 20} if cls is e.RequestTooLarge else {"idle_seconds": 60})
        response = face.errors.core(request, exc)
        assert response.status_code == status, (face.name, cls.__name__, response.body)
        ENVELOPES[face.name](json.loads(response.body), status, exc)


def _face(name: str) -> Face:
    return next(face for face in FACES if face.name == name)


def _answer(name: str, exc: e.VmImageError, method: str | None = None, path: str | None = None):
    face = _face(name)
    response = face.errors.core(request_to(face, method, path), exc)
    return response.status_code, json.loads(response.body), response.headers


def test_ims_codes_of_the_families_it_had_no_row_for():
    status, body, _ = _answer("huawei_ims", e.RequestTooLarge("too big", limit=1 << 20))
    assert (status, body["error"]["code"]) == (413, "IMG.0001")
    status, body, _ = _answer("huawei_ims", e.Stalled("stalled", idle_seconds=60))
    assert (status, body["error"]["code"]) == (408, "IMG.0001")
    status, body, headers = _answer("huawei_ims", e.TooManyRequests("slow down", retry_after=3))
    assert (status, body["error"]["code"], headers["Retry-After"]) == (429, "IMG.0060", "3")
    status, body, _ = _answer("huawei_ims", e.Unauthenticated("bad signature"))
    assert (status, body) == (401, {"error_code": "APIGW.0301", "error_msg": "bad signature"})


def test_jd_too_many_requests_is_rate_limit_with_retry_after():
    status, body, headers = _answer("jdcloud", e.TooManyRequests("slow down", retry_after=5))
    assert (status, body["error"]["status"], body["error"]["code"], headers["Retry-After"]) == \
        (429, "RATE_LIMIT", 429, "5")
    # a quota stays JD's QUOTA_EXCEEDED, a value given twice DUPLICATE
    status, body, _ = _answer("jdcloud", e.QuotaExceeded("no more images"))
    assert (status, body["error"]["status"], body["error"]["message"]) == \
        (429, "QUOTA_EXCEEDED", "Image quota limit exceeded")
    status, body, _ = _answer("jdcloud", e.Invalid("twice", field="device", device="vdb", duplicate=True))
    assert (status, body["error"]["status"], body["error"]["message"]) == (400, "DUPLICATE", "Duplicate deviceName")


def test_aries_names_entities_fields_and_one_route():
    from vmimage.faces.aries.routes import PREFIX
    assert _answer("aries", e.NotFound("x", volume_id="v1"))[:2] == (404, {"code": "VolumeNotFound",
                                                                          "message": "云盘不存在"})
    assert _answer("aries", e.Invalid("x", field="volumes.0.size"))[1]["code"] == "InvalidDiskSize"
    assert _answer("aries", e.NameTaken("x"), "POST", f"{PREFIX}/image/create")[1]["code"] == "ImageExists"
    assert _answer("aries", e.NameTaken("x"), "PUT", f"{PREFIX}/image")[1]["code"] == "ImageNameExists"


# --- the mechanism -----------------------------------------------------------------------------

def test_the_closest_class_wins_and_the_default_fills_the_rest():
    codes = ErrorCodes({(e.Conflict, None): (400, "conflict"), (e.NameTaken, None): (409, "taken")},
                       by_status={status: f"s{status}" for status in set(DEFAULT_STATUS.values())})
    assert codes.lookup(e.NameTaken("x")) == (409, "taken")
    assert codes.lookup(e.Duplicate("x")) == (400, "conflict")       # its parent's row
    assert codes.lookup(e.UnsafeImage("x")) == (415, "s415")          # no row: BadImageFormat's default
    assert codes.lookup(e.Stalled("x")) == (408, "s408")
    assert codes.lookup(e.VmImageError("x")) == (500, "s500")         # no family: internal
    assert ErrorCodes().lookup(e.Gone("x")) == (410, None)           # no codes of its own: status alone


def test_a_face_row_on_any_class_beats_the_default_of_a_closer_one():
    codes = ErrorCodes({(e.Invalid, None): (400, "invalid")})
    assert codes.lookup(e.BadImageFormat("x")) == (400, "invalid")   # not the default 415


def test_within_a_class_the_most_specific_qualifier_wins():
    codes = ErrorCodes({
        (e.Invalid, None): (400, "any"),
        (e.Invalid, "field=name"): (400, "name"),
        (e.Invalid, "field=name/too_long"): (400, "name too long"),
        (e.Invalid, "field=size"): (400, "size"),
        (e.Invalid, "bucket"): (400, "bucket"),
        (e.Invalid, "route=PUT /image"): (400, "route"),
        (e.OutOfRange, None): (400, "out of range"),
    })
    assert codes.lookup(e.Invalid("x", field="name", reason="too_long", bucket="b")) == (400, "name too long")
    assert codes.lookup(e.Invalid("x", field="name", reason="format", bucket="b")) == (400, "name")
    assert codes.lookup(e.Invalid("x", field="a.0.size")) == (400, "size")       # a dotted field by its leaf
    assert codes.lookup(e.Invalid("x", field="other", bucket="b"), route="PUT /image") == (400, "bucket")
    assert codes.lookup(e.Invalid("x"), route="PUT /image") == (400, "route")
    assert codes.lookup(e.Invalid("x"), route="GET /image") == (400, "any")
    assert codes.lookup(e.OutOfRange("x", field="name")) == (400, "out of range")   # closest class first


def test_qualifiers_are_tried_most_specific_first():
    exc = e.Invalid("x", field="disks.0.name", reason="missing", image_id="i")
    assert qualifiers(exc, "POST /image") == [
        "field=disks.0.name/missing", "field=disks.0.name", "field=name/missing", "field=name",
        "field", "reason", "image_id", "route=POST /image", None]


def test_a_face_must_name_a_code_for_every_default_status():
    with pytest.raises(ValueError, match="408"):
        ErrorCodes(by_status={status: "x" for status in set(DEFAULT_STATUS.values()) - {408}})
