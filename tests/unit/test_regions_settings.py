"""VMIMAGE_REGIONS and the stores of each region (settings.py), and the core's reading of them
(Deps: home store, a region's stores, unknown regions), and the policy's region rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmimage.core.errors import Invalid
from vmimage.core.images import Image
from vmimage.core.policy import Caller, can_see
from vmimage.core.services.deps import Deps
from vmimage.settings import Settings


def settings(monkeypatch, **env: str) -> Settings:
    for name in ("VMIMAGE_REGIONS", "VMIMAGE_REGION", "VMIMAGE_STORES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=Path("/d"))


def test_one_region_by_default_with_its_one_store(monkeypatch):
    s = settings(monkeypatch)
    assert s.regions == ["RegionOne"]
    assert s.regional_store_specs() == [("file", "file", "/d/images", "RegionOne")]
    assert settings(monkeypatch, VMIMAGE_REGION="cn-north-1").regions == ["cn-north-1"]


def test_each_region_gets_a_file_store_of_its_own(monkeypatch):
    s = settings(monkeypatch, VMIMAGE_REGIONS="RegionOne, RegionTwo,RegionThree")
    assert s.regions == ["RegionOne", "RegionTwo", "RegionThree"]
    assert s.regional_store_specs() == [("file", "file", "/d/images", "RegionOne"),
                                        ("file-RegionTwo", "file", "/d/images-RegionTwo", "RegionTwo"),
                                        ("file-RegionThree", "file", "/d/images-RegionThree", "RegionThree")]


def test_named_stores_say_their_region(monkeypatch):
    s = settings(monkeypatch, VMIMAGE_REGIONS="A,B,C",
                 VMIMAGE_STORES="b1@B=file:/b1,a1=file:/a1,b2@B=s3://bucket/two,a2@A=file:/a2")
    assert s.regional_store_specs() == [("a1", "file", "/a1", "A"), ("a2", "file", "/a2", "A"),
                                        ("b1", "file", "/b1", "B"), ("b2", "s3", "bucket/two", "B"),
                                        ("file-C", "file", "/d/images-C", "C")]
    assert s.store_specs()[0][0] == "a1"       # the default store: the default region's first
    assert s.store_regions()["b2"] == "B"


@pytest.mark.parametrize("env, message", [
    ({"VMIMAGE_REGIONS": "A,B", "VMIMAGE_STORES": "x@Z=file:/x"}, "names region 'Z'"),
    ({"VMIMAGE_REGIONS": "A,A"}, "named twice"),
    ({"VMIMAGE_REGIONS": "A,b/c"}, "not a region name"),
])
def test_bad_region_settings_are_refused(monkeypatch, env, message):
    with pytest.raises(ValueError, match=message):
        settings(monkeypatch, **env).regional_store_specs()


class _Store:
    def __init__(self, name: str) -> None:
        self.name, self.read_only = name, False


def deps_with(stores: dict[str, str], regions: tuple[str, ...]) -> Deps:
    return Deps(uow=None, stores={n: _Store(n) for n in stores}, default_store=next(iter(stores)),  # type: ignore[arg-type,misc]
                limits=None, enforce_format_match=True, new_inspector=None, disks=None,  # type: ignore[arg-type]
                hypervisor=None, fetcher=None, regions=regions, store_regions=stores)  # type: ignore[arg-type]


def test_the_core_finds_a_regions_stores():
    deps = deps_with({"a": "A", "b1": "B", "b2": "B"}, ("A", "B"))
    assert deps.home_store("B") == "b1" and deps.home_store(None) == "a"
    assert deps.stores_of_region("B") == ["b1", "b2"]
    assert deps.require_region("B") == "B"
    with pytest.raises(Invalid) as refused:
        deps.require_region("C")
    assert refused.value.fields["field"] == "region"


def test_an_image_is_seen_in_its_own_region_only():
    image = Image(id="i", owner="p", region="B")
    assert can_see(Caller("u", "p", region="B"), image, None)
    assert not can_see(Caller("u", "p", frozenset({"admin"}), region="A"), image, None)
    assert can_see(Caller("u", "p"), image, None)     # the service itself (jobs): no region
