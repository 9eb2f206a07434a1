"""A value the database cannot hold is the core's Invalid, not a driver error (the last line
behind the faces' own refusals): text that is not Unicode on every database, a NUL character
in text on PostgreSQL (SQLite stores it)."""

from __future__ import annotations

import pytest

from vmimage.bootstrap import build
from vmimage.core.errors import Invalid
from vmimage.core.policy import Caller
from vmimage.core.services import images as svc
from vmimage.settings import Settings


@pytest.fixture
def container(tmp_path, database_factory):
    built = build(Settings(data_dir=tmp_path / "data", database_url=database_factory()))
    yield built
    built.close()


def project(container) -> str:
    return container.identity.ensure_project("unstorable").id


def create(container, name: str):
    caller = Caller("u-1", project(container), frozenset({"member"}))
    return svc.create_image(container.deps, caller, {"name": name, "disk_format": "raw", "container_format": "bare"},
                            {"note": "x"})


def test_text_that_is_not_unicode_is_invalid_and_stores_nothing(container):
    with pytest.raises(Invalid, match="cannot be stored"):
        create(container, "a\udc80b")
    with container.deps.uow() as uow:
        assert uow.images.usage(project(container)) == (0, 0)
    assert create(container, "a\U0001F600b").name == "a\U0001F600b"


def test_nul_in_text_is_invalid_where_the_database_cannot_hold_it(container):
    if not container.settings.db_url.startswith("postgresql"):
        assert create(container, "a\x00b").name == "a\x00b"
        return
    with pytest.raises(Invalid, match="cannot be stored"):
        create(container, "a\x00b")
