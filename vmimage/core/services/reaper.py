"""Stored data the database no longer references is deleted by the reaper, never lost.

A use case that drops the last reference to stored data (an image deleted, a job failed, a
stage abandoned, a store's copy dropped) records that data with `reap_later`, in the same
transaction: a crash after the commit leaves a record, never an orphan. The request returns
at once; it does not wait on the store (a hung S3 server would hold its thread).

The Reaper, a thread of each serving process, claims due records (a lease: on PostgreSQL
rows another process is claiming are skipped, so processes share the work and each record
is deleted once), deletes the data through its store — within that store's backend bounds
(core/backends.py) — and removes the record. A store whose backend refuses calls or fails
has its records put off, with back-off, until the backend answers again: its breaker closing
(`Backend.on_recovery`) makes them due at once. A record whose store is not configured any
more is kept (and logged): the operator may configure the store again.

Why a thread of its own, not the job engine: job workers are few and shared fairly between
projects; a reaper waiting on a stalled store must not take one, nor wait behind imports.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import datetime, timedelta

from vmimage.core import audit
from vmimage.core.errors import NotFound, VmImageError
from vmimage.core.images import ImageStatus
from vmimage.core.liveness import known_dead
from vmimage.core.ports import DataToReap, UnitOfWork
from vmimage.core.rounds import RoundsThread
from vmimage.core.services.deps import Deps

log = logging.getLogger("vmimage.reaper")

BATCH = 32                  # records claimed at once
LEASE_SECONDS = 120         # a claim outlives the longest stalled delete; then another may take it
IDLE_SECONDS = 10.0         # a look at the table now and then: other processes record too
FIRST_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 600.0
UNKNOWN_STORE_SECONDS = 3600.0
AUDIT_PRUNE_SECONDS = 3600.0   # old audit events are pruned this often by each serving process
_RECEIVING = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)


def reap_later(deps: Deps, uow: UnitOfWork, store: str | None, key: str, *, partial: bool = False,
               image_id: str | None = None) -> None:
    """Record data no longer referenced, in the caller's transaction (store None: staging).
    Data of a read-only store (a web server's) is not ours to delete."""
    name = store or deps.default_store
    known = deps.stores.get(name)
    if known is not None and known.read_only:
        return
    uow.reaps.add(name, key, partial, image_id, deps.clock())


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** min(attempts, 20)))


class Reaper(RoundsThread):
    """Deletes recorded data on a thread of its own (start/stop/wake), and every
    `audit_prune_seconds` forgets the audit events older than `audit_days` (the start
    prunes too: the first time here is one interval after it)."""

    # The reapers of this process: same pid, alive (several containers in one process).
    _here: set[str] = set()

    def __init__(self, deps: Deps, audit_days: int = -1, audit_prune_seconds: float = AUDIT_PRUNE_SECONDS) -> None:
        super().__init__("data-reaper", after_failure=IDLE_SECONDS)
        self.deps = deps
        self.audit_days, self.audit_prune_seconds = audit_days, audit_prune_seconds
        self._audit_due = time.monotonic() + audit_prune_seconds
        Reaper._here.add(deps.worker_id)
        self._lock = threading.Lock()
        self._recovered: set[str] = set()       # stores whose backend answers again
        self._unknown_logged: set[str] = set()
        for name, store in deps.stores.items():
            backend = store.backend
            if backend is not None and not store.read_only:
                backend.on_recovery(functools.partial(self._recovered_store, name))

    def _recovered_store(self, name: str) -> None:
        with self._lock:      # called on the thread whose call closed the breaker: no blocking
            self._recovered.add(name)
        self.wake()

    def stop(self) -> None:
        Reaper._here.discard(self.deps.worker_id)
        super().stop()

    def next_round(self) -> float:
        self._prune_audit_when_due()
        if self.round() >= BATCH:
            return 0
        return min(self._idle(), max(0.0, self._audit_due - time.monotonic())) if self.audit_days >= 0 \
            else self._idle()

    def _prune_audit_when_due(self) -> None:
        if self.audit_days < 0 or time.monotonic() < self._audit_due:
            return
        self._audit_due = time.monotonic() + self.audit_prune_seconds   # a failure waits for the next time too
        pruned = audit.prune(self.deps.uow, self.audit_days)
        if pruned:
            log.info("audit: %d events older than %d days pruned", pruned, self.audit_days)

    def _idle(self) -> float:
        try:
            with self.deps.uow() as uow:
                due = uow.reaps.next_due()
        except VmImageError:
            return IDLE_SECONDS
        if due is None:
            return IDLE_SECONDS
        return max(0.2, min(IDLE_SECONDS, (due - self.deps.clock()).total_seconds()))

    def round(self) -> int:
        """Claim what is due and reap it; how many records were claimed."""
        now = self.deps.clock()
        with self._lock:
            recovered, self._recovered = self._recovered, set()
        with self.deps.uow() as uow:
            due = uow.reaps.next_due()
            dead = {w for w in uow.reaps.claimants() if w not in Reaper._here and known_dead(w)}
        if not recovered and not dead and (due is None or due > now):
            return 0                      # nothing due: no write transaction (SQLite has one writer)
        with self.deps.uow(write=True) as uow:
            uow.reaps.release(dead, now)  # claims of a process of this host that died are due now (others': lease)
            uow.reaps.hasten(recovered, now)
            claimed = uow.reaps.claim(self.deps.worker_id, now, now + timedelta(seconds=LEASE_SECONDS), BATCH)
            uow.commit()
        failing: set[str] = set()        # stores that failed this round: their other records wait
        for record in claimed:
            if self.stopping:
                break                     # the leases run out; this or another process goes on
            self._reap(record, failing)
        return len(claimed)

    def _reap(self, record: DataToReap, failing: set[str]) -> None:
        store = self.deps.stores.get(record.store)
        if store is None:
            if record.store not in self._unknown_logged:
                self._unknown_logged.add(record.store)
                log.warning("data of store '%s', which is not configured, kept for the reaper: %s",
                            record.store, record.key)
            self._postpone(record, timedelta(seconds=UNKNOWN_STORE_SECONDS), count=False)
            return
        if record.store in failing:
            self._postpone(record, backoff(record.attempts))
            return
        backend = store.backend
        refusal = backend.breaker().refusal() if backend is not None else None
        if refusal is not None:          # refusing calls; its breaker closing makes the record due again
            wait = refusal.fields.get("retry_after")
            self._postpone(record, timedelta(seconds=wait if isinstance(wait, int) else 1), count=False)
            return
        if self._in_use_again(record):
            self._done(record)
            return
        try:
            try:
                store.delete(record.key)
            except NotFound:
                pass
            if record.partial:
                store.cleanup_partial(record.key)
        except VmImageError as exc:
            failing.add(record.store)
            log.info("data %s of store '%s' not deleted yet: %s", record.key, record.store, exc.message)
            self._postpone(record, backoff(record.attempts))
            return
        self._done(record)

    def _in_use_again(self, record: DataToReap) -> bool:
        """Whether the key holds an image's data again (an image that failed to take data
        takes it again under the same key): then the record is stale, the data not ours."""
        if record.image_id is None:
            return False
        with self.deps.uow() as uow:
            image = uow.images.get(record.image_id)
        if image is None:
            return False
        return image.status in _RECEIVING or any(loc.store == record.store and loc.key == record.key
                                                 for loc in image.locations)

    def _done(self, record: DataToReap) -> None:
        with self.deps.uow(write=True) as uow:
            uow.reaps.done(record.id)
            uow.commit()

    def _postpone(self, record: DataToReap, wait: timedelta, count: bool = True) -> None:
        until: datetime = self.deps.clock() + wait
        with self.deps.uow(write=True) as uow:
            uow.reaps.postpone(record.id, until, record.attempts + (1 if count else 0))
            uow.commit()
