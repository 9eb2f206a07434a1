"""The file store's two ways of writing (VMIMAGE_FILE_WRITES): cached leaves a committed
blob's pages in the page cache (its first download reads memory), direct does not; both give
back the bytes written, leave no temp file, and an unknown mode stops the start. The data left
cached is bounded (VMIMAGE_FILE_CACHE_MIB): past the bound the oldest data written and not read
since leaves the cache as new data is written."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from vmimage.adapters.blob.local import WRITEBACK_WINDOW, CachedWrites, LocalFileBlobStore

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_share(path: str) -> float:
    """The share of the file's pages in the page cache (mincore(2) over a mapping of it)."""
    size = os.path.getsize(path)
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        try:
            vec = (ctypes.c_ubyte * pages)()
            assert _LIBC.mincore(address, size, vec) == 0, ctypes.get_errno()
        finally:
            _LIBC.munmap(address, size)
    finally:
        os.close(fd)
    return sum(v & 1 for v in vec) / pages


@pytest.mark.parametrize("writes", ["cached", "direct"])
def test_a_committed_blob_is_in_the_page_cache_only_when_cached(tmp_path, writes):
    store = LocalFileBlobStore("t", tmp_path / "store", writes=writes)
    data = os.urandom(5 * WRITEBACK_WINDOW + 12345)      # whole windows written back on the way, and a tail
    writer = store.writer("blob")
    for i in range(0, len(data), 100_000):
        writer.write(data[i:i + 100_000])
    writer.commit()
    path = str(tmp_path / "store" / "blob")
    share = resident_share(path)
    assert b"".join(store.read("blob")) == data
    assert os.listdir(tmp_path / "store" / ".partial") == []
    if writes == "cached":
        assert share > 0.99, share
    else:
        probe = store.writer("probe")
        direct = probe._buf is not None        # O_DIRECT taken by this file system (not tmpfs)
        probe.abort()
        if direct:
            assert share < 0.5, share


def test_an_unknown_way_of_writing_is_refused():
    with pytest.raises(ValueError, match="VMIMAGE_FILE_WRITES"):
        LocalFileBlobStore("t", "/nonexistent-never-made", writes="fast")


W = WRITEBACK_WINDOW


def write_blob(store: LocalFileBlobStore, key: str, size: int) -> bytes:
    data = os.urandom(size)
    writer = store.writer(key)
    for i in range(0, size, 1 << 20):
        writer.write(data[i:i + (1 << 20)])
    writer.commit()
    return data


def cached_store(tmp_path, budget: int) -> tuple[LocalFileBlobStore, CachedWrites]:
    cached = CachedWrites(budget)
    return LocalFileBlobStore("t", tmp_path / "store", writes="cached", cached_writes=cached), cached


def test_past_the_bound_the_oldest_written_data_leaves_the_cache_as_new_data_comes(tmp_path):
    store, cached = cached_store(tmp_path, 4 * W)
    first = write_blob(store, "first", 3 * W)
    assert resident_share(str(tmp_path / "store" / "first")) > 0.99
    write_blob(store, "second", 3 * W)
    # 6 windows written, 4 kept: the first blob's two oldest windows were dropped while the
    # second was written; the second stays whole for its first download.
    assert 0.2 < resident_share(str(tmp_path / "store" / "first")) < 0.45
    assert resident_share(str(tmp_path / "store" / "second")) > 0.99
    assert cached.kept_bytes() == 4 * W
    assert b"".join(store.read("first")) == first        # dropped from the cache, not from the disk


def test_data_read_since_it_was_written_is_not_dropped(tmp_path):
    store, cached = cached_store(tmp_path, 4 * W)
    write_blob(store, "read", 3 * W)
    assert sum(len(c) for c in store.read("read")) == 3 * W     # a download: the file is wanted
    assert cached.kept_bytes() == 0
    write_blob(store, "next", 3 * W)
    write_blob(store, "later", 3 * W)
    assert resident_share(str(tmp_path / "store" / "read")) > 0.99
    assert resident_share(str(tmp_path / "store" / "later")) > 0.99
    assert resident_share(str(tmp_path / "store" / "next")) < 0.45


def test_no_bound_drops_nothing_and_aborted_or_deleted_writes_are_not_counted(tmp_path):
    store, cached = cached_store(tmp_path, 0)
    for key in ("a", "b", "c"):
        write_blob(store, key, 2 * W)
    assert all(resident_share(str(tmp_path / "store" / key)) > 0.99 for key in ("a", "b", "c"))

    store, cached = cached_store(tmp_path / "bounded", 4 * W)
    writer = store.writer("aborted")
    for _ in range(3 * W // (1 << 20)):
        writer.write(b"x" * (1 << 20))
    writer.abort()
    write_blob(store, "kept", 2 * W)
    write_blob(store, "next", 2 * W)        # with the aborted write still counted, "kept" would go
    assert resident_share(str(tmp_path / "bounded" / "store" / "kept")) > 0.99
    store.delete("kept")
    assert cached.kept_bytes() == 2 * W
