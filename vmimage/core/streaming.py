"""One pass over image data: limit -> inspect -> hash (md5 + sha512) -> store.

Three stages work on the data at once: sha512 and the store write each run on a thread of
their own (hashlib and os.write release the GIL on large buffers), md5 and inspection on
the caller's thread. Each helper stage takes its chunks, in order, from a short queue, so a
stage that is briefly slower does not stall the others; the queues are bounded, so memory
stays bounded too.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vmimage.core.errors import Invalid, TooLarge
from vmimage.core.ports import BlobWriter, ContentInspector, InspectionReport

_STAGE_DEPTH = 3        # chunks a helper stage may lag behind the caller's thread
_END = object()


@dataclass
class StreamResult:
    size: int
    md5: str | None        # None when the pass skipped digests
    sha512: str | None
    report: InspectionReport


class _Stage:
    """A thread applying fn to each queued chunk, in order; remembers the first failure."""

    def __init__(self, fn: Callable[[bytes], object], name: str) -> None:
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(_STAGE_DEPTH)
        self.error: BaseException | None = None
        self._dropping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self.error is None and not self._dropping:   # else only drain: put() never blocks
                try:
                    self._fn(item)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                    self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(chunk)

    def drop(self) -> None:
        """The upload failed: skip what is still queued."""
        self._dropping = True

    def finish(self) -> None:
        """Wait until every queued chunk is done (the writer must be idle before a commit or
        an abort)."""
        self._queue.put(_END)
        self._thread.join()


def stream_into_store(chunks: Iterable[bytes], writer: BlobWriter, inspector: ContentInspector,
                      size_cap: int, expected_size: int | None = None, digests: bool = True) -> StreamResult:
    """Consume chunks once; raise while the data still flows when a limit is passed.

    The helper stages use threads of their own, so one long upload never holds a shared
    pool's worker for its whole length. digests=False skips md5 and sha512 for a pass whose
    data is hashed later anyway (staging).
    """
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    stages = [_Stage(writer.write, "upload-write")]
    if digests:
        stages.append(_Stage(sha.update, "upload-sha512"))
    try:
        for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size_cap >= 0 and size > size_cap:
                raise TooLarge(f"Image data exceeds the size cap of {size_cap} bytes", limit=size_cap)
            if expected_size is not None and size > expected_size:
                raise Invalid("More data received than the declared image size")
            for stage in stages:
                stage.put(chunk)
            if digests:
                md5.update(chunk)
            inspector.feed(chunk)
    except BaseException:
        for stage in stages:
            stage.drop()
        raise
    finally:
        for stage in stages:
            stage.finish()
    for stage in stages:
        if stage.error is not None:
            raise stage.error
    if expected_size is not None and size != expected_size:
        raise Invalid(f"Received {size} bytes but {expected_size} were declared")
    return StreamResult(size, md5.hexdigest() if digests else None, sha.hexdigest() if digests else None,
                        inspector.report())


class DiscardWriter:
    """A writer that keeps nothing: for passes that only hash and inspect data kept elsewhere."""

    def write(self, chunk: bytes) -> None:
        pass

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass
