"""Upload ownership against a real database and file store: what a survivor takes over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from vmimage.adapters.db.tables import uploads
from vmimage.bootstrap import build
from vmimage.core.policy import Caller
from vmimage.core.services.image_data import begin_saving
from vmimage.core.services.images import create_image, load_visible
from vmimage.core.services.uploads import recover_uploads
from vmimage.settings import Settings

ME = Caller("u", "p", frozenset({"member", "reader"}))
STALE = timedelta(seconds=40)


@pytest.fixture
def container(tmp_path):
    c = build(Settings(data_dir=tmp_path / "data"))
    yield c
    c.close()


def saving_image_of(container, worker: str, silent_for: timedelta):
    """An image in saving with partial data, as if another host's process were uploading it."""
    deps = container.deps
    image = create_image(deps, ME, {"name": "x", "disk_format": "raw", "container_format": "bare"}, {})
    begin_saving(deps, image.id)
    writer = deps.store(None).writer(image.id)
    writer.write(b"partial data")
    with container.engine.begin() as conn:
        conn.execute(update(uploads).where(uploads.c.image_id == image.id)
                     .values(worker=worker, heartbeat_at=deps.clock() - silent_for))
    return image.id


def partials(container, image_id):
    root = container.deps.stores["file"].root / ".partial"
    return [p for p in root.iterdir() if p.name.startswith(f"{image_id}.")]


def test_another_hosts_silent_upload_is_reset_and_its_partial_data_removed(container):
    image_id = saving_image_of(container, "elsewhere.example:4242:0badc0de", timedelta(seconds=41))
    assert partials(container, image_id)
    assert recover_uploads(container.deps, STALE) == [image_id]
    assert load_visible(container.deps, ME, image_id).status == "queued"
    assert partials(container, image_id) == []
    with container.deps.uow() as uow:
        assert uow.uploads.list() == []


def test_another_hosts_upload_that_still_heartbeats_is_left_alone(container):
    image_id = saving_image_of(container, "elsewhere.example:4242:0badc0de", timedelta(seconds=5))
    assert recover_uploads(container.deps, STALE) == []
    assert load_visible(container.deps, ME, image_id).status == "saving"
    assert partials(container, image_id)


def test_this_process_own_uploads_are_never_taken_over(container):
    image_id = saving_image_of(container, container.deps.worker_id, timedelta(days=1))
    assert recover_uploads(container.deps, STALE) == []
    assert load_visible(container.deps, ME, image_id).status == "saving"


def test_a_dead_stage_is_reset_unless_its_data_was_committed(container):
    """Two stages whose process died: one mid-write, one between its commit and the end of
    its record. Only the first goes back to queued."""
    from vmimage.core.images import ImageStatus, staging_key
    from vmimage.core.services.imports import stage_image_data
    from vmimage.core.services.uploads import begin_upload

    deps = container.deps
    cut, done = (create_image(deps, ME, {"name": n, "disk_format": "raw", "container_format": "bare"}, {}).id
                 for n in ("cut", "done"))
    deps.store(None).writer(staging_key(cut)).write(b"partial")
    stage_image_data(deps, ME, done, iter([b"staged bytes"]))
    with deps.uow(write=True) as uow:
        image = uow.images.get(cut, for_update=True)
        image.move_to(ImageStatus.UPLOADING)
        uow.images.save(image)
        begin_upload(deps, uow, image, "file", staging_key(cut))
        begin_upload(deps, uow, uow.images.get(done), "file", staging_key(done))
        uow.commit()
    with container.engine.begin() as conn:   # their owner: another host, silent for minutes
        conn.execute(update(uploads).values(worker="elsewhere.example:1:dead",
                                            heartbeat_at=deps.clock() - timedelta(minutes=5)))
    assert sorted(recover_uploads(deps, STALE)) == sorted([cut, done])
    assert load_visible(deps, ME, cut).status == "queued"
    assert partials(container, staging_key(cut)) == []
    assert load_visible(deps, ME, done).status == "uploading"
    assert deps.store(None).exists(staging_key(done))
