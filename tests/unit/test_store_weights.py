"""VMIMAGE_STORE_WEIGHTS (Glance's per-store weight) and the order it gives an image's copies;
VMIMAGE_CATALOG_EXTRA (more services in the Keystone catalog)."""

from __future__ import annotations

import pytest

from vmimage.core.images import Location
from vmimage.core.services.deps import Deps
from vmimage.faces.keystone.settings import from_environment
from vmimage.settings import Settings

STORES = "fast=file:/tmp/a,slow=file:/tmp/b,obj=s3://bucket/images"


def weights(monkeypatch, spec: str, stores: str = STORES) -> dict[str, int]:
    monkeypatch.setenv("VMIMAGE_STORES", stores)
    monkeypatch.setenv("VMIMAGE_STORE_WEIGHTS", spec)
    return Settings().store_weights()


def test_weights_parse_and_unnamed_stores_are_left_out(monkeypatch):
    assert weights(monkeypatch, "slow=100, obj=-5") == {"slow": 100, "obj": -5}
    assert weights(monkeypatch, "") == {}


@pytest.mark.parametrize("spec", ["slow", "slow=heavy", "nowhere=3", "slow=1,slow=2", "slow=1.5"])
def test_bad_weights_are_refused_at_start(monkeypatch, spec):
    with pytest.raises(ValueError, match="VMIMAGE_STORE_WEIGHTS"):
        weights(monkeypatch, spec)


def test_weights_need_named_stores(monkeypatch):
    with pytest.raises(ValueError, match="VMIMAGE_STORE_WEIGHTS"):
        weights(monkeypatch, "file=3", stores="")


def test_locations_heaviest_first_equal_weights_keep_their_order():
    deps = Deps.__new__(Deps)
    deps.store_weights = {"slow": 10, "obj": 10}
    locs = [Location("fast", "a"), Location("obj", "a"), Location("slow", "a"), Location("web", "u")]
    assert [loc.store for loc in deps.by_weight(locs)] == ["obj", "slow", "fast", "web"]


def test_catalog_extra_parses_and_refuses_what_is_not_a_url():
    assert from_environment({"VMIMAGE_CATALOG_EXTRA": "image_remote=http://127.0.0.1:9/x/"}).catalog_extra == (
        ("image_remote", "http://127.0.0.1:9/x"),)
    with pytest.raises(ValueError, match="VMIMAGE_CATALOG_EXTRA"):
        from_environment({"VMIMAGE_CATALOG_EXTRA": "image_remote=ftp://x"})
