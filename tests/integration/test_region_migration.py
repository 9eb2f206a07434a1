"""Migration 0016 on SQLite: the images made before regions get the default region (the first of
VMIMAGE_REGIONS, else VMIMAGE_REGION), projects none (they act in the default region)."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from vmimage.adapters.db.engine import alembic_config, upgrade_schema


@pytest.mark.parametrize("env, expected", [({"VMIMAGE_REGIONS": "East, West"}, "East"),
                                           ({"VMIMAGE_REGION": "cn-north-1"}, "cn-north-1"),
                                           ({}, "RegionOne")])
def test_images_made_before_regions_are_the_default_regions(tmp_path, monkeypatch, env, expected):
    for name in ("VMIMAGE_REGIONS", "VMIMAGE_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
        now = datetime(2026, 12, 1)
        conn.execute(text(
            "INSERT INTO images (id, owner, status, visibility, protected, os_hidden, min_disk, min_ram, kind, "
            "source, created_at, updated_at, seq, ref) VALUES ('i1', 'p', 'active', 'private', 0, 0, 0, 0, "
            "'system_disk', 'upload', :now, :now, 1, 'img-old000000001')"), {"now": now})
        conn.execute(text("INSERT INTO projects (id, name, domain_id, enabled, created_at) "
                          "VALUES ('p', 'p', 'default', 1, :now)"), {"now": now})
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT region FROM images WHERE id = 'i1'")).scalar_one() == expected
        assert conn.execute(text("SELECT region FROM projects WHERE id = 'p'")).scalar_one() is None
    engine.dispose()
