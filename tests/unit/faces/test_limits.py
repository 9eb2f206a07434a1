"""The one JSON parser of request bodies: depth limit, constants, encodings."""

from __future__ import annotations

import json

import pytest

from vmimage.core.errors import Invalid
from vmimage.faces.limits import MAX_DEPTH, parse_json, too_deep


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_depth_up_to_the_limit_is_accepted_and_beyond_refused():
    assert parse_json(nested(MAX_DEPTH).encode()) is not None
    with pytest.raises(Invalid, match="nests deeper"):
        parse_json(nested(MAX_DEPTH + 1).encode())
    with pytest.raises(Invalid, match="nests deeper"):
        parse_json(('{"a":' * 10000 + "1" + "}" * 10000).encode())
    with pytest.raises(Invalid, match="nests deeper"):
        parse_json(nested(100000).encode())          # past the interpreter's recursion limit


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 1000 + '\\"{' * 100, "b": ["]" * 50]})
    assert not too_deep(text)
    assert parse_json(text.encode())["b"] == ["]" * 50]


def test_many_shallow_containers_are_fine():
    text = json.dumps([[1]] * 5000)
    assert not too_deep(text)
    assert len(parse_json(text.encode())) == 5000


@pytest.mark.parametrize("raw", [b"{not json", b"NaN", b'{"a": Infinity}', b"\xff\xfe\x00", b"1" * 5000])
def test_malformed_json_is_invalid(raw):
    with pytest.raises(Invalid, match="Malformed"):
        parse_json(raw)


def test_empty_bodies_and_other_encodings():
    assert parse_json(b"", empty={}) == {}
    assert parse_json(b"  \n", empty=None) is None
    assert parse_json('{"name": "é"}'.encode("utf-16")) == {"name": "é"}


@pytest.mark.parametrize("raw, where", [
    (rb'{"name": "\udc80"}', "name"),
    (rb'{"name": "ok", "properties": [{"a": "x\ud800y"}]}', "properties.0.a"),
    (rb'[{"op": "replace", "path": "/name", "value": "\uDFFF"}]', "0.value"),
    (rb'{"tags": ["a", "\udbff\udbff"]}', "tags.1"),           # two high halves make no pair
    (rb'{"\udc80": "v"}', "\\udc80"),                          # a key: named by its escape
    (rb'{"a": {"b\udc80": 1}}', "a.b\\udc80"),
    (rb'"\ude00"', "body"),
])
def test_a_lone_surrogate_anywhere_is_invalid_and_named(raw, where):
    with pytest.raises(Invalid, match="lone surrogate") as info:
        parse_json(raw)
    assert info.value.fields["field"] == where
    assert info.value.fields["reason"] == "not_unicode"
    info.value.message.encode("utf-8")          # the message itself can be answered


def test_surrogate_pairs_and_escaped_backslashes_are_text():
    assert parse_json(rb'{"name": "\ud83d\ude00"}') == {"name": "\U0001F600"}
    assert parse_json(rb'{"name": "\\udc80"}') == {"name": "\\udc80"}    # a backslash, then "udc80"
    assert parse_json(rb'{"name": "\\\ud83d\ude00"}') == {"name": "\\\U0001F600"}


def test_encoded_surrogates_are_malformed_not_text():
    """Raw bytes cannot carry a surrogate: UTF-8 (ED B2 80) and UTF-16 refuse to decode it."""
    with pytest.raises(Invalid, match="Malformed"):
        parse_json(b'{"name": "\xed\xb2\x80"}')
    with pytest.raises(Invalid, match="Malformed"):
        parse_json('{"name": "\udc80"}'.encode("utf-16-le", "surrogatepass"))


def test_every_request_body_goes_through_parse_json():
    """No route has FastAPI parse a body (a pydantic parameter, Body(), Form()): each face
    reads its body itself, through parse_json (directly, json_object_body, bodies.body_of or
    a signed face's body dependency)."""
    from fastapi.dependencies.models import Dependant

    from vmimage.app import FACES
    from vmimage.faces.contract import FaceContext
    from vmimage.faces.mount import face_app

    class _Deps:
        cache = object()

    def body_params(dependant: Dependant) -> list[str]:
        return [p.name for p in dependant.body_params] + [n for d in dependant.dependencies for n in body_params(d)]

    context = FaceContext(deps=_Deps(), identity=None)  # type: ignore[arg-type]
    parsed_by_fastapi = [(face.name, route.path, body_params(route.dependant))
                         for face in FACES for route in face_app(face, context).router.routes
                         if route.body_field is not None or body_params(route.dependant)]
    assert parsed_by_fastapi == []


@pytest.mark.parametrize("raw_path, query", [
    (b"/v2/images/%ED%B2%80", b""), (b"/v2/images/%FF", b""), (b"/v2/images", b"name=%ED%B2%80"),
    (b"/v2/images", b"%C3=1"), (b"/v2/images", b"a=1&b=%E4%B8"),
])
def test_a_url_that_is_not_utf8_once_decoded_is_invalid(raw_path, query):
    from vmimage.faces.contract import utf8_url

    with pytest.raises(Invalid, match="not UTF-8"):
        utf8_url({"raw_path": raw_path, "query_string": query})


def test_a_utf8_url_passes():
    from vmimage.faces.contract import utf8_url

    utf8_url({"raw_path": b"/v2/images/%C3%A9%F0%9F%98%80", "query_string": b"name=%E4%B8%AD+x&y=%25"})
    utf8_url({"raw_path": b"/v2/images", "query_string": b""})
    utf8_url({"path": "/no/raw/path"})
