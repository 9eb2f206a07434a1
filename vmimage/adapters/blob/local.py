"""LocalFileBlobStore: one file per blob; write to a temp name, fsync, rename."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from vmimage.core.errors import NotFound

_TMP = ".partial"


class _LocalWriter:
    def __init__(self, final: Path, tmp: Path) -> None:
        self._final, self._tmp = final, tmp
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self) -> None:
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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


class LocalFileBlobStore:
    def __init__(self, name: str, root: str | Path) -> None:
        self.name = name
        self.root = Path(root)
        (self.root / _TMP).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> _LocalWriter:
        return _LocalWriter(self._path(key), self.root / _TMP / f"{key}.{uuid.uuid4().hex}")

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = 1 << 20) -> Iterator[bytes]:
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
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("Image data not found in the store", key=key) from None

    def cleanup_partial(self) -> int:
        count = 0
        for leftover in (self.root / _TMP).iterdir():
            leftover.unlink(missing_ok=True)
            count += 1
        return count

    def keys(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if p.is_file()]
