"""The reaper on a real database (SQLite; PostgreSQL with VMIMAGE_TEST_DB=postgres) and the real
file store: reapers of several containers (as several processes have them) claiming at once
take every record exactly once; a record of a store no longer configured is kept; data an
image holds again under the same key is not deleted."""

from __future__ import annotations

import threading

import pytest

from vmimage.bootstrap import build
from vmimage.core.images import Location
from vmimage.core.policy import Caller
from vmimage.core.services.images import create_image
from vmimage.core.services.reaper import reap_later
from vmimage.settings import Settings


@pytest.fixture
def make_container(tmp_path, database_factory):
    url = database_factory()
    made = []

    def make():
        c = build(Settings(data_dir=tmp_path / "data", database_url=url))
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def stored(deps, key: str, data: bytes = b"bytes") -> None:
    writer = deps.store(None).writer(key)
    writer.write(data)
    writer.commit()


def record(deps, store: str | None, key: str, image_id: str | None = None) -> None:
    with deps.uow(write=True) as uow:
        reap_later(deps, uow, store, key, image_id=image_id)
        uow.commit()


def left(deps) -> int:
    with deps.uow() as uow:
        return uow.reaps.count()


def test_reapers_of_several_processes_claim_every_record_once(make_container):
    containers = [make_container() for _ in range(3)]
    deps = containers[0].deps
    keys = [f"orphan-{i}" for i in range(60)]
    for key in keys:
        stored(deps, key)
        record(deps, None, key)
    claimed = [0] * len(containers)
    start = threading.Barrier(len(containers))

    def reap(i: int) -> None:
        start.wait()
        while (n := containers[i].reaper.round()) > 0:
            claimed[i] += n

    threads = [threading.Thread(target=reap, args=(i,)) for i in range(len(containers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # A record claimed twice would count twice: the claims add up to the records exactly.
    assert sum(claimed) == len(keys), claimed
    assert left(deps) == 0
    assert not any(deps.store(None).exists(key) for key in keys)


def test_a_record_of_a_store_no_longer_configured_is_kept(make_container):
    c = make_container()
    with c.deps.uow(write=True) as uow:
        uow.reaps.add("gone-store", "some-key", False, None, c.deps.clock())
        uow.commit()
    c.reaper.round()
    assert left(c.deps) == 1


def test_data_an_image_holds_again_is_not_deleted(make_container):
    c = make_container()
    deps = c.deps
    admin = Caller(user_id="u", project_id="p", roles=frozenset({"admin"}))
    image = create_image(deps, admin, {"name": "again", "disk_format": "raw", "container_format": "bare"}, {})
    stored(deps, image.id)
    record(deps, None, image.id, image_id=image.id)         # its old data, recorded...
    with deps.uow(write=True) as uow:                       # ...then the key holds its data again
        current = uow.images.get(image.id, for_update=True)
        assert current is not None
        current.locations = [Location(deps.default_store, image.id)]
        uow.images.save(current)
        uow.commit()
    c.reaper.round()
    assert left(deps) == 0 and deps.store(None).exists(image.id)
