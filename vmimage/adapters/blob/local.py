"""LocalFileBlobStore: one file per blob; write to a temp name, fsync, rename.

By default (VMIMAGE_FILE_WRITES=cached) blob data is written through the page cache with
the writeback kept right behind the writer (Linux's sync_file_range): each 8 MiB window
written is sent to the device at once and the writer waits for the window two behind it,
so a large upload never holds more than a few windows of dirty data (no flood of dirty
pages for the kernel to flush at its own pace, no long fdatasync at the end), while its
pages stay in the cache, clean: the first download right after an upload, import or copy
reads memory, not the disk. fdatasync at commit then makes the rest and the file's size
durable before the image turns active, as before.

How much of that freshly written data stays cached is bounded per process
(VMIMAGE_FILE_CACHE_MIB, `CachedWrites`): past the bound, the oldest data written and not read
since is dropped from the cache as new data is written, so new writes reuse its pages rather
than growing the cache.

VMIMAGE_FILE_WRITES=direct keeps the O_DIRECT writes this replaced: less CPU per byte
written, the first download from the disk. Warming the cache after `active` instead was
measured too: it re-reads the file from the disk, racing the client's first download
(README, "The first download after an upload").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import re
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from vmimage.core.errors import BackendUnavailable, NotFound
from vmimage.core.liveness import pid_alive
from vmimage.core.ports import READ_CHUNK, BlobWriter

_TMP = ".partial"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
WRITE_MODES = ("cached", "direct")     # VMIMAGE_FILE_WRITES
_DIRECT_BUFFER = 4 << 20     # a multiple of any logical block size; mmap memory is page aligned
_O_DIRECT = getattr(os, "O_DIRECT", 0)
WRITEBACK_WINDOW = 8 << 20    # bytes sent to the device at once behind the writer
_WINDOWS_IN_FLIGHT = 2        # windows being written back while the writer goes on
# sync_file_range(2) flags
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):      # not Linux: fdatasync bounds the dirty data instead
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _sync_file_range()


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unavailable(store: str, exc: OSError) -> BackendUnavailable:
    return BackendUnavailable(f"Store '{store}' cannot take data: {exc.strerror or exc}", store=store)


class CachedWrites:
    """The image data a process wrote through the page cache and has not read since, kept
    cached for its first download up to `budget` bytes (VMIMAGE_FILE_CACHE_MIB; 0: no bound,
    the kernel alone decides).

    Why bound it: Linux keeps written pages until memory runs short, so on a machine with free
    memory every upload grows the cache by its size. Where the free memory is the host's to
    take back (a VM with virtio-balloon free page reporting, as this project's machines), each
    new page is a fault into the host: ~2 CPU-s per GiB here, five times the write itself,
    taken from the upload's hashing (bench/file_writes.py). So as each window of new data is
    written, the same amount of the oldest such data is dropped (posix_fadvise DONTNEED; it is
    on disk already, fdatasync'd at its commit) and the next window takes those warm pages.
    Data that has been read since is the kernel's to keep or drop as it likes (forget)."""

    def __init__(self, budget: int = 0) -> None:
        self.budget = max(0, budget)
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, list[int]] = OrderedDict()   # path -> [size, dropped up to]
        self._kept_bytes = 0
        self._writing = 0       # bytes of files still being written, counted window by window

    def written(self, n: int) -> None:
        if self.budget:
            with self._lock:
                self._writing += n
                self._drop_excess()

    def committed(self, path: str, size: int, counted: int) -> None:
        if self.budget:
            with self._lock:
                self._writing -= counted
                self._kept.pop(path, None)
                self._kept[path] = [size, 0]
                self._kept_bytes += size
                self._drop_excess()

    def aborted(self, counted: int) -> None:
        if self.budget:
            with self._lock:
                self._writing -= counted    # the file is removed, its pages freed with it

    def forget(self, path: str) -> None:
        """The file was read (it is wanted: the kernel's cache keeps it or not) or deleted."""
        if self.budget:
            with self._lock:
                entry = self._kept.pop(path, None)
                if entry is not None:
                    self._kept_bytes -= entry[0] - entry[1]

    def kept_bytes(self) -> int:
        return self._kept_bytes

    def _drop_excess(self) -> None:
        excess = self._kept_bytes + self._writing - self.budget
        while excess > 0 and self._kept:
            path, entry = next(iter(self._kept.items()))
            size, dropped = entry
            n = min(excess, size - dropped)
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, dropped, n, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
            except OSError:          # deleted meanwhile: its pages went with it
                n = size - dropped
            entry[1] += n
            self._kept_bytes -= n
            excess -= n
            if entry[1] >= size:
                del self._kept[path]


class _FileWriter:
    """A new file written under a temporary name, made durable and renamed into place at
    commit; the two kinds below differ only in how the bytes reach the disk."""

    def __init__(self, final: Path, tmp: Path, store: str) -> None:
        self._final, self._tmp, self._store = final, tmp, store
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def commit(self) -> None:
        try:
            self._before_commit()
            os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.rename(self._tmp, self._final)
            dir_fd = os.open(self._final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself must survive a power cut
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise _unavailable(self._store, exc) from None

    def _before_commit(self) -> None:
        """What is still to be written before the data is made durable."""

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


class _LocalWriter(_FileWriter):
    """VMIMAGE_FILE_WRITES=cached (the default): through the page cache, the writeback kept
    right behind the writer."""

    def __init__(self, final: Path, tmp: Path, store: str, cached: CachedWrites) -> None:
        super().__init__(final, tmp, store)
        self._cached = cached
        self._written = 0       # bytes written so far
        self._sent = 0          # bytes whose writeback was started (whole windows)
        self._counted = 0       # bytes told to CachedWrites as written

    def write(self, chunk: bytes) -> None:
        try:
            _write_all(self._fd, chunk)
            self._written += len(chunk)
            while self._written - self._sent >= WRITEBACK_WINDOW:
                self._write_back_window()
        except OSError as exc:     # disk full, I/O error: the store failed, not the caller
            raise _unavailable(self._store, exc) from None

    def _write_back_window(self) -> None:
        """Start writing the next window to the device and wait for the one
        _WINDOWS_IN_FLIGHT behind it (ctypes lets other threads run meanwhile)."""
        start = self._sent
        self._sent += WRITEBACK_WINDOW
        if _SYNC_FILE_RANGE is None:
            if self._sent % (WRITEBACK_WINDOW * (_WINDOWS_IN_FLIGHT + 1)) == 0:
                os.fdatasync(self._fd)
            return
        self._sync_range(start, WRITEBACK_WINDOW, _WRITE)
        behind = start - _WINDOWS_IN_FLIGHT * WRITEBACK_WINDOW
        if behind >= 0:
            self._sync_range(behind, WRITEBACK_WINDOW, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
        self._cached.written(WRITEBACK_WINDOW)
        self._counted += WRITEBACK_WINDOW

    def _sync_range(self, offset: int, length: int, flags: int) -> None:
        assert _SYNC_FILE_RANGE is not None
        if _SYNC_FILE_RANGE(self._fd, offset, length, flags) != 0:
            code = ctypes.get_errno()
            if code in (errno.ENOSYS, errno.EINVAL, errno.ESPIPE):
                return      # a file system without it: the fdatasync at commit still holds
            raise OSError(code, os.strerror(code))

    def commit(self) -> None:
        super().commit()
        self._cached.committed(str(self._final), self._written, self._counted)
        self._counted = 0

    def abort(self) -> None:
        super().abort()
        self._cached.aborted(self._counted)
        self._counted = 0


class _DirectWriter(_FileWriter):
    """VMIMAGE_FILE_WRITES=direct: O_DIRECT where the file system allows it, the bytes going
    from an aligned buffer straight to the device, not copied into the page cache (less CPU
    per byte; the first download then reads the disk). The tail that does not fill an
    aligned block is written through the page cache at commit; fdatasync then makes all of
    it durable."""

    def __init__(self, final: Path, tmp: Path, store: str) -> None:
        super().__init__(final, tmp, store)
        self._buf: mmap.mmap | None = None      # the aligned staging buffer, while O_DIRECT
        self._fill = 0
        if _O_DIRECT:
            try:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) | _O_DIRECT)
                self._buf = mmap.mmap(-1, _DIRECT_BUFFER)
            except OSError:       # the file system does not do O_DIRECT: buffered writes
                self._buf = None

    def write(self, chunk: bytes) -> None:
        try:
            self._write(chunk)
        except OSError as exc:     # disk full, I/O error: the store failed, not the caller
            raise _unavailable(self._store, exc) from None

    def _write(self, chunk: bytes) -> None:
        if self._buf is None:
            _write_all(self._fd, chunk)
            return
        view = memoryview(chunk)
        while view:
            n = min(len(view), _DIRECT_BUFFER - self._fill)
            self._buf[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == _DIRECT_BUFFER:
                self._flush_staged()

    def _flush_staged(self) -> None:
        """Write the staging buffer (whole aligned blocks while O_DIRECT) and empty it."""
        assert self._buf is not None     # only writers that stage call this
        view = memoryview(self._buf)[:self._fill]
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self._direct():
                    raise
                # O_DIRECT refused at write time (this device's alignment rules); nothing
                # was written, so carry on buffered from the same offset.
                self._to_buffered()
                continue
            view = view[n:]
            if view and self._direct() and n % 4096:
                self._to_buffered()   # a short direct write left us unaligned
        self._fill = 0

    def _direct(self) -> bool:
        return bool(fcntl.fcntl(self._fd, fcntl.F_GETFL) & _O_DIRECT)

    def _to_buffered(self) -> None:
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_O_DIRECT)

    def _before_commit(self) -> None:
        if self._buf is not None:
            self._to_buffered()        # the tail is not a whole block
            self._flush_staged()
            self._buf = None           # unmapped once no view refers to it

    def abort(self) -> None:
        self._buf = None
        super().abort()


class LocalFileBlobStore:
    kind = "file"
    read_only = False
    backend = None          # this node's own files: nothing that stalls in between

    def __init__(self, name: str, root: str | Path, description: str = "", writes: str = "cached",
                 cached_writes: CachedWrites | None = None) -> None:
        if writes not in WRITE_MODES:
            raise ValueError(f"VMIMAGE_FILE_WRITES: '{writes}' is not one of {', '.join(WRITE_MODES)}")
        self.name, self.writes = name, writes
        self.cached_writes = cached_writes or CachedWrites()
        self.root = Path(root)
        self.description = description or f"Files in {self.root}"
        (self.root / _TMP).mkdir(mode=0o700, parents=True, exist_ok=True)

    def url(self, key: str) -> str:
        return f"file://{(self.root / key).resolve()}"

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> BlobWriter:
        # The temp name says which process writes it (host~pid), so the node can tell at its
        # next start which leftovers are its dead processes' (cleanup_dead_partials).
        tmp = self.root / _TMP / f"{key}.{_HOST}~{os.getpid()}~{uuid.uuid4().hex}"
        try:
            if self.writes == "direct":
                return _DirectWriter(self._path(key), tmp, self.name)
            return _LocalWriter(self._path(key), tmp, self.name, self.cached_writes)
        except OSError as exc:
            raise _unavailable(self.name, exc) from None

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise NotFound("Image data not found in the store", key=key) from None
        self.cached_writes.forget(str(path))

        def chunks() -> Iterator[bytes]:
            with f:
                f.seek(start)
                remaining = None if end is None else end - start
                while remaining is None or remaining > 0:
                    n = chunk_size if remaining is None else min(chunk_size, remaining)
                    data = f.read(n)
                    if not data:
                        return
                    if remaining is not None:
                        remaining -= len(data)
                    yield data
        return chunks()

    def delete(self, key: str) -> None:
        path = self._path(key)
        self.cached_writes.forget(str(path))
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _unavailable(self.name, exc) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root / _TMP, os.W_OK | os.X_OK)):
            raise BackendUnavailable(f"Store '{self.name}' cannot be written", store=self.name)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("Image data not found in the store", key=key) from None

    def cleanup_partial(self, key: str | None = None) -> int:
        count = 0
        try:
            for leftover in (self.root / _TMP).iterdir():
                if key is None or leftover.name.startswith(f"{key}."):
                    leftover.unlink(missing_ok=True)
                    count += 1
        except OSError as exc:
            raise _unavailable(self.name, exc) from None
        return count

    def cleanup_dead_partials(self) -> int:
        """Remove the leftovers of this host's processes that are gone (this one is starting,
        so an earlier process with its pid is gone too); other hosts' writes are left alone."""
        count = 0
        try:
            for leftover in (self.root / _TMP).iterdir():
                parts = leftover.name.partition(".")[2].split("~")
                if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
                    continue
                pid = int(parts[1])
                if pid == os.getpid() or not pid_alive(pid):
                    leftover.unlink(missing_ok=True)
                    count += 1
        except OSError as exc:
            raise _unavailable(self.name, exc) from None
        return count

    def keys(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if p.is_file()]

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def open_file(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise NotFound("Image data not found in the store", key=key) from None
        self.cached_writes.forget(str(path))        # read: wanted (CachedWrites)
        return f
