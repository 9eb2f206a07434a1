"""The local image cache adapter and the cache rules of the core, without a server."""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from vmimage.adapters.cache.local import LocalImageCache
from vmimage.core.errors import Invalid
from vmimage.core.images import Image, ImageStatus, Location
from vmimage.core.services.cache import Prefetcher, cache_one, through_cache

FP1, FP2 = "a" * 128, "b" * 128


def put(cache: LocalImageCache, image_id: str, data: bytes, fp: str = FP1) -> None:
    writer = cache.writer(image_id, fp)
    writer.write(data)
    writer.commit()
    time.sleep(0.01)     # distinct access times


def read_all(cache: LocalImageCache, image_id: str, fp: str = FP1) -> bytes | None:
    entry = cache.open(image_id, fp)
    return None if entry is None else b"".join(entry.read())


@pytest.fixture
def cache(tmp_path):
    return LocalImageCache(tmp_path / "cache", max_bytes=250, chunk_size=7)


def test_least_recently_used_entries_go_first(cache):
    put(cache, "a", b"1" * 100)
    put(cache, "b", b"2" * 100)
    assert read_all(cache, "a") == b"1" * 100        # a is used: b is now the oldest
    time.sleep(0.01)
    put(cache, "c", b"3" * 100)
    assert {e.image_id for e in cache.entries()} == {"a", "c"}
    assert sum(e.size for e in cache.entries()) <= cache.max_bytes
    entries = {e.image_id: e for e in cache.entries()}
    assert entries["a"].hits == 1 and entries["c"].hits == 0


def test_the_newest_entry_is_never_pruned_for_itself(cache):
    put(cache, "a", b"1" * 100)
    put(cache, "big", b"x" * 240)
    assert [e.image_id for e in cache.entries()] == ["big"]


def test_an_entry_is_invisible_until_committed_and_written_once(cache):
    writer = cache.writer("a", FP1)
    writer.write(b"half")
    assert cache.entries() == [] and cache.open("a", FP1) is None
    assert cache.writer("a", FP1) is None                 # being written
    assert cache.cleanup_partial() == 0                   # its writer is alive
    writer.write(b" and the rest")
    writer.commit()
    assert read_all(cache, "a") == b"half and the rest"
    assert cache.writer("a", FP1) is None                 # already cached
    assert not list((cache.root / "incomplete").iterdir())


def test_abort_and_dead_writers_leave_nothing(cache):
    writer = cache.writer("a", FP1)
    writer.write(b"data")
    writer.abort()
    assert cache.entries() == [] and not list((cache.root / "incomplete").iterdir())
    (cache.root / "incomplete" / f"b.{FP1}").write_bytes(b"left by a crash")
    assert cache.cleanup_partial() == 1
    assert cache.writer("b", FP1) is not None


def test_entries_are_found_by_fingerprint_only(cache):
    put(cache, "a", b"old bytes", FP1)
    assert cache.open("a", FP2) is None
    put(cache, "a", b"new bytes", FP2)
    assert [(e.image_id, e.fingerprint) for e in cache.entries()] == [("a", FP2)]
    assert read_all(cache, "a", FP2) == b"new bytes"


def test_clear_or_delete_during_a_write_wins(cache):
    writer = cache.writer("a", FP1)
    writer.write(b"data")
    cache.clear()
    writer.commit()
    assert cache.entries() == []
    writer = cache.writer("a", FP1)
    writer.write(b"data")
    cache.delete("a")
    writer.commit()
    assert cache.entries() == [] and not list((cache.root / "incomplete").iterdir())


def test_dropping_a_stale_entry_does_not_void_the_new_write(cache):
    put(cache, "a", b"old", FP1)
    writer = cache.writer("a", FP2)
    writer.write(b"new")
    cache.delete("a", FP1)
    writer.commit()
    assert [(e.image_id, e.fingerprint) for e in cache.entries()] == [("a", FP2)]


def test_an_open_entry_stays_readable_when_pruned(cache):
    put(cache, "a", b"1" * 100)
    entry = cache.open("a", FP1)
    assert cache.delete("a") is True and cache.entries() == []
    assert b"".join(entry.read(10, 20)) == b"1" * 10
    assert b"".join(entry.read()) == b"1" * 100


def test_queue_keeps_order_and_clears(cache):
    assert cache.queue("x") and cache.queue("y") and not cache.queue("x")
    assert cache.queued() == ["x", "y"]
    assert cache.dequeue("x") and not cache.dequeue("x")
    assert cache.clear_queue() == 1 and cache.queued() == []


def test_keys_cannot_escape_the_directory(cache):
    with pytest.raises(ValueError):
        cache.queue("../etc")
    with pytest.raises(ValueError):
        cache.writer("a", "../../x")
    assert cache.open("../a", FP1) is None and cache.delete("..") is False


# --- core rules -----------------------------------------------------------------------------

class FakeImages:
    def __init__(self, *images: Image) -> None:
        self.by_id = {i.id: i for i in images}

    def get(self, image_id, for_update=False):
        return self.by_id.get(image_id)


class FakeStore:
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def read(self, key, start=0, end=None, chunk_size=4):
        data = self.blobs[key][start:end]
        return iter([data[i:i + chunk_size] for i in range(0, len(data), chunk_size)])


def fake_deps(cache, images: FakeImages, blobs: dict[str, bytes]):
    @contextmanager
    def uow(write=False):
        yield SimpleNamespace(images=images)
    store = FakeStore(blobs)
    return SimpleNamespace(cache=cache, uow=uow, store=lambda name: store, by_weight=lambda locations: locations)


def image_of(image_id: str, data: bytes) -> Image:
    image = Image(id=image_id, owner="p")
    image.status = ImageStatus.ACTIVE
    image.size, image.checksum = len(data), hashlib.md5(data).hexdigest()
    image.os_hash_algo, image.os_hash_value = "sha512", hashlib.sha512(data).hexdigest()
    image.locations = [Location("file", image_id)]
    return image


def test_prefetch_verifies_the_bytes(tmp_path):
    cache = LocalImageCache(tmp_path, max_bytes=1000)
    good, bad = image_of("good", b"good data"), image_of("bad", b"expected")
    deps = fake_deps(cache, FakeImages(good, bad), {"good": b"good data", "bad": b"tampered"})
    for image_id in ("good", "bad"):
        cache.queue(image_id)
    assert cache_one(deps, "good") is True
    with pytest.raises(Invalid):
        cache_one(deps, "bad")
    assert [e.image_id for e in cache.entries()] == ["good"]
    assert cache.queued() == ["bad"]                     # left for a later try
    assert not list((tmp_path / "incomplete").iterdir())
    cache.queue("gone")
    assert cache_one(deps, "gone") is False and cache.queued() == ["bad"]


def test_prefetcher_backs_off_a_failing_image(tmp_path):
    cache = LocalImageCache(tmp_path, max_bytes=1000)
    bad = image_of("bad", b"expected")
    deps = fake_deps(cache, FakeImages(bad), {"bad": b"tampered"})
    cache.queue("bad")
    prefetcher = Prefetcher(deps, first_backoff=30)
    assert prefetcher.run_once() == 0
    retry_at, wait = prefetcher._failed["bad"]
    assert wait == 30
    assert prefetcher.run_once() == 0 and prefetcher._failed["bad"] == (retry_at, wait)   # not yet
    deps.store("file").blobs["bad"] = b"expected"     # the source heals
    prefetcher._failed["bad"] = (0.0, wait)
    assert prefetcher.run_once() == 1 and cache.queued() == [] and "bad" not in prefetcher._failed


def test_downloads_use_only_an_entry_of_the_current_bytes(tmp_path):
    cache = LocalImageCache(tmp_path, max_bytes=1000)
    data = b"current bytes"
    image = image_of("img", data)
    stale = cache.writer("img", "c" * 128)
    stale.write(b"older  bytes!")      # same size, other fingerprint
    stale.commit()
    deps = fake_deps(cache, FakeImages(image), {"img": data})
    store_read = lambda start, end: FakeStore({"img": data}).read("img", start, end)  # noqa: E731
    size, read, cached = through_cache(deps, image, len(data), store_read)
    assert not cached and b"".join(read(0, None)) == data        # from the store, filling the cache
    assert read_all(cache, "img", image.os_hash_value) == data
    size, read, cached = through_cache(deps, image, len(data), lambda s, e: iter([b"not the store"]))
    assert cached and size == len(data) and b"".join(read(0, None)) == data  # from the cache now
