"""LocalImageCache: the image cache as plain files in one directory of this node.

    <root>/data/<image id>.<fingerprint>   complete entries; they only ever arrive by rename
    <root>/incomplete/<image id>.<fp>      entries being written, flock()ed by their writer
    <root>/meta/<image id>.json            hits and last access (advisory: rebuilt if lost)
    <root>/queue/<image id>                images waiting for the prefetcher; mtime = when
    <root>/.lock                           serialises bookkeeping across processes

Everything the cache knows is in that directory, so it needs nothing from the shared
database and a node can wipe it at any time. Readers keep their file open, so pruning or
clearing never cuts a download short.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vmimage.core.ports import READ_CHUNK, CacheEntry

log = logging.getLogger("vmimage.cache")

_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,127}")
_FP = re.compile(r"[0-9a-f]{8,256}")
DEFAULT_MAX_BYTES = 10 << 30


def _valid(image_id: str, fingerprint: str | None = None) -> bool:
    # Both become file names: nothing that could climb out of the directory.
    return bool(_ID.fullmatch(image_id)) and (fingerprint is None or bool(_FP.fullmatch(fingerprint)))


def _parse(name: str) -> tuple[str, str] | None:
    image_id, dot, fp = name.partition(".")
    return (image_id, fp) if dot and _valid(image_id, fp) else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _CachedFile:
    """An open entry: its bytes stay readable even if the entry is pruned meanwhile."""

    def __init__(self, fd: int, size: int, chunk_size: int) -> None:
        self._fd, self.size, self._chunk = fd, size, chunk_size

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else min(end, self.size)

        def chunks() -> Iterator[bytes]:
            pos = start
            while pos < end:   # pread: readers sharing the descriptor never move each other
                data = os.pread(self._fd, min(self._chunk, end - pos), pos)
                if not data:
                    return
                pos += len(data)
                yield data
        return chunks()

    def __del__(self) -> None:
        # The descriptor lives as long as anything (a running download) can still read it.
        os.close(self._fd)


def _holds(fd: int, path: Path) -> bool:
    """Whether path still names the file open as fd (and not a newer one)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class _EntryWriter:
    """Writes an entry under incomplete/ while holding its flock; commit renames it into data/."""

    def __init__(self, cache: "LocalImageCache", image_id: str, fp: str, fd: int, path: Path,
                 epoch: tuple[int, ...]) -> None:
        self._cache, self._id, self._fp = cache, image_id, fp
        self._fd, self._path, self._epoch = fd, path, epoch

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self) -> None:
        """Publish the entry, unless the cache was cleared (or the image dropped) meanwhile."""
        if self._fd < 0:
            return
        try:
            os.fdatasync(self._fd)
            self._cache._publish(self._id, self._fp, self._path, self._epoch)
        except BaseException:
            self._discard()
            raise
        finally:
            self._close()

    def abort(self) -> None:
        if self._fd >= 0:
            try:
                self._discard()
            finally:
                self._close()

    def _discard(self) -> None:
        if _holds(self._fd, self._path):   # we hold its lock; a newer file there is not ours
            self._path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)   # releases the flock
            self._fd = -1


class LocalImageCache:
    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 chunk_size: int = READ_CHUNK) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._chunk = chunk_size
        self._data, self._incomplete = self.root / "data", self.root / "incomplete"
        self._meta, self._queue = self.root / "meta", self.root / "queue"
        for d in (self._data, self._incomplete, self._meta, self._queue):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_path = self.root / ".lock"
        self._mutex = threading.RLock()
        self._depth = 0
        # Bumped by clear() and delete(): a write begun before must not publish afterwards.
        # Keyed by image id (every entry of it dropped) and by "id.fingerprint" (one dropped).
        self._clear_epoch = 0
        self._drop_epoch: dict[str, int] = {}

    # --- locking ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self):
        """Threads of this process (the mutex) and other processes (flock on .lock)."""
        with self._mutex:
            self._depth += 1
            fd = None
            if self._depth == 1:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    os.close(fd)

    # --- entries ---------------------------------------------------------------------------

    def _entry_path(self, image_id: str, fp: str) -> Path:
        return self._data / f"{image_id}.{fp}"

    def _read_meta(self, image_id: str) -> dict:
        try:
            return json.loads((self._meta / f"{image_id}.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write_meta(self, image_id: str, meta: dict) -> None:
        # Replaced whole by rename: a reader never sees half of it. No fsync: it is advisory.
        tmp = self._meta / f".{image_id}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._meta / f"{image_id}.json")

    def open(self, image_id: str, fingerprint: str) -> _CachedFile | None:
        if not _valid(image_id, fingerprint):
            return None
        try:
            fd = os.open(self._entry_path(image_id, fingerprint), os.O_RDONLY)
        except FileNotFoundError:
            return None
        entry = _CachedFile(fd, os.fstat(fd).st_size, self._chunk)
        with self._locked():
            meta = self._read_meta(image_id)
            if meta.get("fingerprint") != fingerprint:
                meta = {"fingerprint": fingerprint, "hits": 0}
            meta["hits"] = int(meta.get("hits", 0)) + 1
            meta["last_accessed"] = time.time()
            self._write_meta(image_id, meta)
        return entry

    def entries(self) -> list[CacheEntry]:
        found = []
        for path in self._data.iterdir():
            parsed = _parse(path.name)
            if parsed is None:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue     # pruned while we looked
            image_id, fp = parsed
            meta = self._read_meta(image_id)
            if meta.get("fingerprint") != fp:
                meta = {}
            found.append(CacheEntry(image_id=image_id, fingerprint=fp, size=st.st_size,
                                    hits=int(meta.get("hits", 0)),
                                    last_accessed=float(meta.get("last_accessed", st.st_mtime)),
                                    last_modified=st.st_mtime))
        return found

    def writer(self, image_id: str, fingerprint: str) -> _EntryWriter | None:
        if not _valid(image_id, fingerprint):
            raise ValueError(f"bad cache key {image_id!r}")
        if self._entry_path(image_id, fingerprint).exists():
            return None
        with self._mutex:
            epoch = self._epoch(image_id, fingerprint)
        path = self._incomplete / f"{image_id}.{fingerprint}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None      # someone is writing this entry right now
            raise
        # The path may have been renamed into data/ (or unlinked) between open and lock:
        # only the file still under that name is ours to write.
        if not _holds(fd, path):
            os.close(fd)
            return None
        if self._entry_path(image_id, fingerprint).exists():
            path.unlink(missing_ok=True)      # an empty leftover of ours: done meanwhile
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        return _EntryWriter(self, image_id, fingerprint, fd, path, epoch)

    def _epoch(self, image_id: str, fp: str) -> tuple[int, ...]:
        return (self._clear_epoch, self._drop_epoch.get(image_id, 0),
                self._drop_epoch.get(f"{image_id}.{fp}", 0))

    def _publish(self, image_id: str, fp: str, incomplete: Path, epoch: tuple[int, ...]) -> None:
        with self._locked():
            if epoch != self._epoch(image_id, fp):
                incomplete.unlink(missing_ok=True)
                return
            final = self._entry_path(image_id, fp)
            os.rename(incomplete, final)
            _fsync_dir(self._data)
            for other in self._data.glob(f"{image_id}.*"):
                if other != final:            # one entry per image: older bytes go
                    other.unlink(missing_ok=True)
            self._write_meta(image_id, {"fingerprint": fp, "hits": 0, "last_accessed": time.time()})
            (self._queue / image_id).unlink(missing_ok=True)   # cached: no longer waiting
            self._prune(keep=final.name)

    def _prune(self, keep: str | None = None) -> int:
        """Least recently used entries out until the cache fits max_bytes; caller holds the lock."""
        entries = self.entries()
        total = sum(e.size for e in entries)
        pruned = 0
        for entry in sorted(entries, key=lambda e: e.last_accessed):
            if total <= self.max_bytes:
                break
            if f"{entry.image_id}.{entry.fingerprint}" == keep:
                continue
            self._remove(entry.image_id, entry.fingerprint)
            total -= entry.size
            pruned += 1
            log.info("image cache pruned %s (%d bytes)", entry.image_id, entry.size)
        return pruned

    def prune(self) -> int:
        with self._locked():
            return self._prune()

    def _remove(self, image_id: str, fp: str | None) -> bool:
        pattern = f"{image_id}.{fp}" if fp else f"{image_id}.*"
        removed = False
        for path in self._data.glob(pattern):
            path.unlink(missing_ok=True)
            removed = True
        if not any(self._data.glob(f"{image_id}.*")):
            (self._meta / f"{image_id}.json").unlink(missing_ok=True)
        return removed

    def delete(self, image_id: str, fingerprint: str | None = None) -> bool:
        if not _valid(image_id, fingerprint):
            return False
        with self._locked():
            key = f"{image_id}.{fingerprint}" if fingerprint else image_id
            self._drop_epoch[key] = self._drop_epoch.get(key, 0) + 1
            return self._remove(image_id, fingerprint)

    def clear(self) -> int:
        with self._locked():
            self._clear_epoch += 1
            self._drop_epoch.clear()     # the bump above already outdates every writer
            count = 0
            for path in self._data.iterdir():
                path.unlink(missing_ok=True)
                count += 1
            for path in self._meta.iterdir():
                path.unlink(missing_ok=True)
            return count

    def cleanup_partial(self) -> int:
        """Unfinished entries whose writer is gone (its flock released), and stray files."""
        count = 0
        for path in self._incomplete.iterdir():
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _holds(fd, path):
                    path.unlink()
                    count += 1
            except OSError:
                pass          # being written: leave it
            finally:
                os.close(fd)
        with self._locked():
            for path in self._meta.iterdir():
                stem = path.name[:-len(".json")] if path.name.endswith(".json") else None
                if stem is None or not any(self._data.glob(f"{stem}.*")):
                    path.unlink(missing_ok=True)
            for path in self._data.iterdir():
                if _parse(path.name) is None:
                    path.unlink(missing_ok=True)
            self._prune()     # the limit may have shrunk since the last run
        return count

    # --- queue -----------------------------------------------------------------------------

    def queue(self, image_id: str) -> bool:
        if not _valid(image_id):
            raise ValueError(f"bad cache key {image_id!r}")
        try:
            os.close(os.open(self._queue / image_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True

    def queued(self) -> list[str]:
        cached = {parsed[0] for parsed in map(_parse, os.listdir(self._data)) if parsed}
        items = []
        for path in self._queue.iterdir():
            if path.name in cached:
                continue      # just published; its queue file goes next
            try:
                items.append((path.stat().st_mtime_ns, path.name))
            except FileNotFoundError:
                continue
        return [name for _, name in sorted(items)]

    def dequeue(self, image_id: str) -> bool:
        if not _valid(image_id):
            return False
        try:
            (self._queue / image_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def clear_queue(self) -> int:
        count = 0
        for path in self._queue.iterdir():
            path.unlink(missing_ok=True)
            count += 1
        return count
