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
