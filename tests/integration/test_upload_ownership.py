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
