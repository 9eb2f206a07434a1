"""The image cache: admin use cases over this node's cache, the prefetcher that fills it from
its queue, and the download hook that serves (and fills) it.

An entry is only ever looked up under the image's current fingerprint (its hash), so data
of an image whose bytes changed or that was deleted and re-created is never served; stale
entries are also swept away so they do not take space.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.images import Image, ImageStatus
from vmimage.core.policy import Caller, require_admin
from vmimage.core.ports import BlobWriter, CacheEntry, ImageCache
from vmimage.core.rounds import RoundsThread
from vmimage.core.services.deps import Deps

log = logging.getLogger("vmimage.cache")

Reader = Callable[[int, int | None], Iterator[bytes]]   # (start, end exclusive) -> chunks
CLEAR_TARGETS = ("", "cache", "queue")


@dataclass
class CacheState:
    cached: list[CacheEntry]
    queued: list[str]


def fingerprint(image: Image) -> str | None:
    """What names the image's bytes; the cache keeps and finds them only under it."""
    return image.os_hash_value or image.checksum


def _managed_cache(deps: Deps, caller: Caller) -> ImageCache:
    # Without a cache the API does not exist at all (Glance without its cache middleware).
    if deps.cache is None:
        raise NotFound("Caching via API is not supported at this site")
    require_admin(caller, "manage the image cache")   # Glance's cache_* policies: admin only
    return deps.cache


def _node_cache(deps: Deps) -> ImageCache:
    """This node's cache, where there is one (the prefetcher only runs there)."""
    if deps.cache is None:
        raise RuntimeError("Image caching is off on this node")
    return deps.cache


def _image(deps: Deps, image_id: str) -> Image | None:
    with deps.uow() as uow:
        image = uow.images.get(image_id)
    return None if image is None or image.status == ImageStatus.DELETED else image


def _is_cached(cache: ImageCache, image_id: str, fp: str) -> bool:
    return any(e.image_id == image_id and e.fingerprint == fp for e in cache.entries())


# --- admin use cases ----------------------------------------------------------------------

def cache_state(deps: Deps, caller: Caller) -> CacheState:
    cache = _managed_cache(deps, caller)
    drop_stale(deps, cache)
    return CacheState(sorted(cache.entries(), key=lambda e: e.image_id), cache.queued())


def queue_image(deps: Deps, caller: Caller, image_id: str) -> None:
    cache = _managed_cache(deps, caller)
    image = _image(deps, image_id)
    if image is None:
        raise NotFound(f"Image {image_id} not found", image_id=image_id)
    if image.status != ImageStatus.ACTIVE:
        raise Invalid("Only images with status active can be targeted for queueing", image_id=image_id)
    fp = fingerprint(image)
    if fp is not None and _is_cached(cache, image_id, fp):
        return      # already here: queueing again would only make the prefetcher look
    if cache.queue(image_id):
        deps.wake_prefetcher()


def delete_cached_image(deps: Deps, caller: Caller, image_id: str) -> None:
    """Out of the cache and the queue; 404 only when the id is unknown everywhere."""
    cache = _managed_cache(deps, caller)
    removed = cache.delete(image_id)
    unqueued = cache.dequeue(image_id)
    if not (removed or unqueued) and _image(deps, image_id) is None:
        raise NotFound(f"Image {image_id} not found", image_id=image_id)


def clear_cache(deps: Deps, caller: Caller, target: str | None) -> None:
    """target: '' or None for both, 'cache' or 'queue' for one of them."""
    cache = _managed_cache(deps, caller)
    target = (target or "").strip().lower()
    if target not in CLEAR_TARGETS:
        raise Invalid("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string",
                      target=target)
    # The queue first, so the prefetcher cannot refill what is cleared next.
    if target in ("", "queue"):
        cache.clear_queue()
    if target in ("", "cache"):
        cache.clear()


def drop_stale(deps: Deps, cache: ImageCache) -> int:
    """Remove entries whose image is gone or now has other bytes; they would never be served."""
    dropped = 0
    for entry in cache.entries():
        image = _image(deps, entry.image_id)
        if image is None or fingerprint(image) != entry.fingerprint:
            cache.delete(entry.image_id, entry.fingerprint)
            dropped += 1
    return dropped


# --- the download path --------------------------------------------------------------------

def through_cache(deps: Deps, image: Image, size: int, read: Reader,
                  fill: bool = True) -> tuple[int, Reader, bool]:
    """(size, reader, whether it reads the cache) for a download: the cached copy when this
    node holds exactly these bytes, else the store's reader, which also fills the cache when
    it reads everything and fill is true (data already in this node's files gains nothing
    from a second copy: the page cache serves a repeated read)."""
    cache, fp = deps.cache, fingerprint(image)
    if cache is None or fp is None or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return size, read, False
    try:
        hit = cache.open(image.id, fp)
    except OSError:
        log.warning("image cache unreadable for %s; serving from the store", image.id, exc_info=True)
        hit = None
    if hit is not None:
        if hit.size == size:
            return hit.size, hit.read, True
        cache.delete(image.id, fp)   # cannot be these bytes: never serve it
    if not fill or image.status != ImageStatus.ACTIVE or size > cache.max_bytes:
        return size, read, False

    def read_and_fill(start: int, end: int | None) -> Iterator[bytes]:
        chunks = read(start, end)     # opens the data now, as the plain reader does
        if start != 0 or (end is not None and end < size):
            return chunks             # part of the data cannot make an entry
        return _tee(cache, image.id, fp, size, chunks)
    return size, read_and_fill, False


def _tee(cache: ImageCache, image_id: str, fp: str, size: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass the chunks on, keeping a copy; the copy becomes an entry only when complete.
    A cache failure never fails the download."""
    try:
        writer: BlobWriter | None = cache.writer(image_id, fp)
    except OSError:
        log.warning("cannot start a cache entry for %s", image_id, exc_info=True)
        writer = None
    written, complete = 0, False
    try:
        for chunk in chunks:
            if writer is not None:
                try:
                    writer.write(chunk)
                    written += len(chunk)
                except OSError:
                    log.warning("cache write failed for %s", image_id, exc_info=True)
                    writer.abort()
                    writer = None
            yield chunk
        complete = True
    finally:
        if writer is not None:
            try:
                if complete and written == size:
                    writer.commit()
                else:
                    writer.abort()
            except OSError:
                log.warning("cache entry for %s not kept", image_id, exc_info=True)
                writer.abort()


# --- the prefetcher -----------------------------------------------------------------------

class _Stopped(Exception):
    pass


def _verifier(image: Image):
    """A hash object and the digest the image's bytes must have."""
    if image.os_hash_algo and image.os_hash_value and image.os_hash_algo in hashlib.algorithms_available:
        return hashlib.new(image.os_hash_algo), image.os_hash_value
    return hashlib.md5(usedforsecurity=False), image.checksum


def cache_one(deps: Deps, image_id: str, stopping: Callable[[], bool] = lambda: False) -> bool:
    """Fill the cache with one queued image; True when it is cached afterwards.
    It leaves the queue once cached or when it can never be (gone, not active, too big);
    when reading or verifying fails it stays queued and the error goes up."""
    cache = _node_cache(deps)
    image = _image(deps, image_id)
    fp = fingerprint(image) if image is not None else None
    if image is None or image.status != ImageStatus.ACTIVE or not image.locations or fp is None:
        cache.dequeue(image_id)
        return False
    if _is_cached(cache, image_id, fp):
        cache.dequeue(image_id)
        return True
    if image.size is not None and image.size > cache.max_bytes:
        log.warning("image %s (%d bytes) is larger than the whole cache; not cached", image_id, image.size)
        cache.dequeue(image_id)
        return False
    writer = cache.writer(image_id, fp)
    if writer is None:
        return False            # being written by a download right now: look again later
    hasher, expected = _verifier(image)
    loc = deps.by_weight(image.locations)[0]
    size = 0
    try:
        for chunk in deps.store(loc.store).read(loc.key):
            if stopping():
                raise _Stopped
            hasher.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        if (image.size is not None and size != image.size) or hasher.hexdigest() != expected:
            raise Invalid("The stored data does not match the image's size and hash", image_id=image_id)
        writer.commit()
    except _Stopped:
        writer.abort()          # stays queued for the next start
        return False
    except BaseException:
        writer.abort()
        raise
    cache.dequeue(image_id)
    return True


class Prefetcher(RoundsThread):
    """Caches queued images on a thread of the serving process.

    Woken when an image is queued; it also looks at the queue every poll_seconds (another
    process on this node may queue into the same directory) and sweeps stale entries every
    sweep_seconds. An image whose fill failed stays queued and is tried again later, each
    time waiting twice as long (up to max_backoff), so a broken source is not hammered."""

    def __init__(self, deps: Deps, poll_seconds: float = 5.0, sweep_seconds: float = 60.0,
                 first_backoff: float = 15.0, max_backoff: float = 900.0) -> None:
        super().__init__("cache-prefetcher", after_failure=poll_seconds)
        self.deps, self.poll_seconds, self.sweep_seconds = deps, poll_seconds, sweep_seconds
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self._failed: dict[str, tuple[float, float]] = {}   # image id -> (retry at, last wait)
        self._swept_at: float | None = None                 # None: this thread has not started

    def start(self) -> None:
        if self.deps.cache is not None:
            super().start()

    def run_once(self) -> int:
        """One pass over the queue; how many images got cached."""
        cached = 0
        queued = _node_cache(self.deps).queued()
        for image_id in list(self._failed):
            if image_id not in queued:          # dequeued or cleared meanwhile: start afresh
                del self._failed[image_id]
        now = time.monotonic()
        for image_id in queued:
            if self.stopping:
                break
            if image_id in self._failed and self._failed[image_id][0] > now:
                continue
            try:
                cached += cache_one(self.deps, image_id, lambda: self.stopping)
                self._failed.pop(image_id, None)
            except Exception:
                wait = min(self._failed.get(image_id, (0.0, self.first_backoff / 2))[1] * 2, self.max_backoff)
                self._failed[image_id] = (time.monotonic() + wait, wait)
                log.exception("caching image %s failed; trying again in %.0f s", image_id, wait)
        return cached

    def next_round(self) -> float:
        cache = _node_cache(self.deps)
        now = time.monotonic()
        if self._swept_at is None:       # the first round: what a process before left unfinished goes
            try:
                cache.cleanup_partial()
            except OSError:
                log.exception("image cache cleanup failed")
        if self._swept_at is None or now - self._swept_at >= self.sweep_seconds:
            self._swept_at = now
            drop_stale(self.deps, cache)
        self.run_once()
        return self.poll_seconds

