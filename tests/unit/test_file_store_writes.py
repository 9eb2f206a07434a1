"""The file store's two ways of writing (VMIMAGE_FILE_WRITES): cached leaves a committed
blob's pages in the page cache (its first download reads memory), direct does not; both give
back the bytes written, leave no temp file, and an unknown mode stops the start."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from vmimage.adapters.blob.local import WRITEBACK_WINDOW, LocalFileBlobStore

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
