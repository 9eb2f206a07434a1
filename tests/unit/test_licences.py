"""scripts/licences.py: which licence a package's metadata names, and which ones pass."""

from __future__ import annotations

import importlib.util
from email.message import Message
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "licences.py"
spec = importlib.util.spec_from_file_location("licences", SCRIPT)
assert spec is not None and spec.loader is not None
licences = importlib.util.module_from_spec(spec)
spec.loader.exec_module(licences)


class FakeDistribution:
    def __init__(self, **fields: str | list[str]) -> None:
        self.metadata = Message()
        self.metadata["Name"] = "some-package"
        for key, value in fields.items():
            for one in value if isinstance(value, list) else [value]:
                self.metadata[key.replace("_", "-")] = one


def accepted(dist: FakeDistribution) -> bool:
    alternatives, _ = licences.spdx_ids(dist)
    return any(all(ident in licences.ACCEPTED for ident in alt) for alt in alternatives)


@pytest.mark.parametrize("fields, ok", [
    ({"License_Expression": "MIT"}, True),
    ({"License_Expression": "LGPL-3.0-only"}, True),                      # psycopg: a library we import
    ({"License_Expression": "Apache-2.0 OR BSD-3-Clause"}, True),
    ({"License_Expression": "GPL-3.0-only OR MIT"}, True),                # we may take the MIT one
    ({"License_Expression": "MIT AND GPL-2.0-or-later"}, False),          # both bind
    ({"License_Expression": "AGPL-3.0-or-later"}, False),
    ({"License_Expression": "GPL-2.0-only WITH Classpath-exception-2.0"}, False),
    ({"Classifier": ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]}, False),
    ({"Classifier": ["License :: OSI Approved :: GNU Affero General Public License v3"]}, False),
    ({"Classifier": ["License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)"]}, True),
    ({"Classifier": ["License :: OSI Approved :: BSD License", "License :: OSI Approved :: Apache Software License"]},
     True),
    ({"License": "GPLv2+"}, False),
    ({"License": "Apache License 2.0"}, True),
    ({"License": "Copyright (c) somebody, all rights reserved"}, False),  # unknown
    ({"License": "UNKNOWN"}, False),
    ({}, False),                                                          # silent
])
def test_which_licences_pass(fields, ok):
    assert accepted(FakeDistribution(**fields)) is ok


def test_the_metadata_wins_over_the_allow_list(monkeypatch):
    monkeypatch.setitem(licences.KNOWN_SILENT, "some-package", "MIT")
    assert licences.spdx_ids(FakeDistribution()) == ([["MIT"]], "allow-list")
    assert not accepted(FakeDistribution(License_Expression="GPL-3.0-only"))
