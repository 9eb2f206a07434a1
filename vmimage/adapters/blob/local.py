"""LocalFileBlobStore: one file per blob; write to a temp name, fsync, rename.

Blob data is written with O_DIRECT where the file system allows it: the bytes go from an
aligned buffer straight to the device instead of being copied into the page cache, which
is most of the CPU a buffered write costs (and, in a VM, faulting in fresh page-cache memory
costs more still). The tail that does not fill an aligned block is written through the page
cache at commit; fdatasync then makes all of it durable, as before.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from vmimage.core.errors import BackendUnavailable, NotFound
from vmimage.core.liveness import pid_alive
from vmimage.core.ports import READ_CHUNK

_TMP = ".partial"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
_DIRECT_BUFFER = 4 << 20     # a multiple of any logical block size; mmap memory is page aligned
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unavailable(store: str, exc: OSError) -> BackendUnavailable:
    return BackendUnavailable(f"Store '{store}' cannot take data: {exc.strerror or exc}", store=store)


class _LocalWriter:
    def __init__(self, final: Path, tmp: Path, store: str) -> None:
        self._final, self._tmp, self._store = final, tmp, store
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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

    def commit(self) -> None:
        try:
            self._commit()
        except OSError as exc:
            raise _unavailable(self._store, exc) from None

    def _commit(self) -> None:
        if self._buf is not None:
            self._to_buffered()        # the tail is not a whole block
            self._flush_staged()
            self._buf = None           # unmapped once no view refers to it
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.rename(self._tmp, self._final)
        dir_fd = os.open(self._final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)

    def abort(self) -> None:
        self._buf = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


class LocalFileBlobStore:
    kind = "file"
    read_only = False
    backend = None          # this node's own files: nothing that stalls in between

    def __init__(self, name: str, root: str | Path, description: str = "") -> None:
        self.name = name
        self.root = Path(root)
        self.description = description or f"Files in {self.root}"
        (self.root / _TMP).mkdir(mode=0o700, parents=True, exist_ok=True)

    def url(self, key: str) -> str:
        return f"file://{(self.root / key).resolve()}"

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> _LocalWriter:
        # The temp name says which process writes it (host~pid), so the node can tell at its
        # next start which leftovers are its dead processes' (cleanup_dead_partials).
        tmp = self.root / _TMP / f"{key}.{_HOST}~{os.getpid()}~{uuid.uuid4().hex}"
        try:
            return _LocalWriter(self._path(key), tmp, self.name)
        except OSError as exc:
            raise _unavailable(self.name, exc) from None

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb", buffering=0)
        except FileNotFoundError:
            raise NotFound("Image data not found in the store", key=key) from None

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
        try:
            self._path(key).unlink(missing_ok=True)
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
