"""One pass over image data: limit -> inspect -> hash (md5 + sha512) -> store.

sha512 runs on a second thread (hashlib releases the GIL on large buffers), so the two
digests are not serialised on one core; md5, inspection and the store write run on the
caller's thread while sha512 of the same chunk proceeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

from vmimage.core.errors import Invalid, TooLarge
from vmimage.core.ports import BlobWriter, ContentInspector, InspectionReport


@dataclass
class StreamResult:
    size: int
    md5: str
    sha512: str
    report: InspectionReport


def stream_into_store(chunks: Iterable[bytes], writer: BlobWriter, inspector: ContentInspector,
                      hash_pool: Executor, size_cap: int, expected_size: int | None = None
                      ) -> StreamResult:
    """Consume chunks once; raise while the data still flows when a limit is passed."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    pending = None
    try:
        for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size_cap >= 0 and size > size_cap:
                raise TooLarge(f"Image data exceeds the size cap of {size_cap} bytes", limit=size_cap)
            if expected_size is not None and size > expected_size:
                raise Invalid("More data received than the declared image size")
            if pending is not None:
                pending.result()
            pending = hash_pool.submit(sha.update, chunk)
            md5.update(chunk)
            inspector.feed(chunk)
            writer.write(chunk)
    finally:
        if pending is not None:
            pending.result()
    if expected_size is not None and size != expected_size:
        raise Invalid(f"Received {size} bytes but {expected_size} were declared")
    return StreamResult(size, md5.hexdigest(), sha.hexdigest(), inspector.report())
