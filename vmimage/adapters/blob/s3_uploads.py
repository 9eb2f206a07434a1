"""The multipart uploads this node started, until they end: nothing unfinished outlives a failure.

S3 keeps the parts of an upload nobody completed or aborted, invisible and billed, for ever.
A writer aborts its upload when it fails, but the abort itself fails when S3 does (down,
stalled), and a process that dies aborts nothing. So every upload is written down here (one
small file in the data directory, by upload id) from the moment S3 gives its id until it is
completed or aborted, and the janitor aborts the ones left:

- those this process gave up on (its abort failed): when the S3 server answers again (its
  breaker closes, core/backends.py), else every `retry_seconds`;
- those of processes of this node that are gone (a crash, a restart): at the start of the next
  process, and on any live one's later rounds;
- and, for a single process (SQLite), the store-wide sweep the start-up could not do because S3
  did not answer (S3BlobStore.cleanup_partial): uploads under the store's prefix that this
  process did not start, as soon as S3 answers.
An entry of a live process that is still writing is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vmimage.core.errors import NotFound, VmImageError
from vmimage.core.liveness import known_dead
from vmimage.core.rounds import RoundsThread

log = logging.getLogger("vmimage.s3")

IDLE_ROUND_SECONDS = 60.0      # a round now and then even with nothing due: a sibling process may have died


@dataclass(frozen=True)
class Entry:
    path: Path
    worker: str          # the process that started the upload (core/liveness.py worker id)
    backend: str         # the name of the backend whose client can abort it
    bucket: str
    key: str             # the object key
    upload_id: str
    orphaned: bool       # its writer gave up on it


class UploadJournal:
    """One file per unfinished upload under `directory` (the data directory's s3-uploads)."""

    def __init__(self, directory: Path, worker: str) -> None:
        self.directory, self.worker = Path(directory), worker
        self.directory.mkdir(parents=True, exist_ok=True)

    def begin(self, backend: str, bucket: str, key: str, upload_id: str) -> Path:
        path = self.directory / f"{uuid.uuid4().hex}.json"
        self._write(path, {"worker": self.worker, "backend": backend, "bucket": bucket, "key": key,
                           "upload_id": upload_id, "orphaned": False,
                           "started": datetime.now(timezone.utc).isoformat()})
        return path

    def orphan(self, path: Path) -> None:
        """Its writer gave up on the upload: the janitor aborts it."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        self._write(path, {**data, "orphaned": True})

    def end(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def entries(self) -> list[Entry]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                found.append(Entry(path, str(data["worker"]), str(data["backend"]), str(data["bucket"]),
                                   str(data["key"]), str(data["upload_id"]), bool(data.get("orphaned"))))
            except (OSError, ValueError, KeyError, TypeError):
                continue            # being written right now, or gone meanwhile
        return found

    def live_upload_ids(self) -> set[str]:
        """Uploads this process is writing now."""
        return {e.upload_id for e in self.entries() if e.worker == self.worker and not e.orphaned}

    def due(self, entry: Entry) -> bool:
        """Whether the janitor may abort it: given up by this process, or of a process gone."""
        if entry.worker == self.worker:
            return entry.orphaned
        return known_dead(entry.worker)   # another node's are not this node's to judge

    def _write(self, path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(data).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


# abort(entry) -> None; raises VmImageError when S3 cannot be reached (NotFound: already gone)
Aborter = Callable[[Entry], None]


class UploadJanitor(RoundsThread):
    """Aborts what the journal says is left over, on a thread of its own (start/stop)."""

    def __init__(self, journal: UploadJournal, retry_seconds: float) -> None:
        self.journal, self.retry_seconds = journal, max(0.5, retry_seconds)
        super().__init__("s3-upload-janitor", after_failure=self.retry_seconds)
        self._aborters: dict[str, Aborter] = {}
        self._sweeps: dict[str, Callable[[], object]] = {}      # store-wide sweeps still to do
        self._lock = threading.Lock()

    def register(self, backend: str, abort: Aborter) -> None:
        with self._lock:
            self._aborters.setdefault(backend, abort)

    def sweep_later(self, name: str, sweep: Callable[[], object]) -> None:
        """A store-wide sweep to do once S3 answers (it raises VmImageError while it does not)."""
        with self._lock:
            self._sweeps[name] = sweep
        self.wake()

    def next_round(self) -> float:
        return self.retry_seconds if self.round() else IDLE_ROUND_SECONDS

    def round(self) -> int:
        """One pass: abort what is due; how many are still due (S3 did not answer)."""
        left = 0
        with self._lock:
            sweeps = list(self._sweeps.items())
        for name, sweep in sweeps:
            try:
                sweep()
            except VmImageError as exc:
                log.info("store-wide sweep of %s still to do: %s", name, exc.message)
                left += 1
                continue
            with self._lock:
                if self._sweeps.get(name) is sweep:
                    del self._sweeps[name]
        for entry in self.journal.entries():
            if self.stopping:
                break
            if not self.journal.due(entry):
                continue
            with self._lock:
                abort = self._aborters.get(entry.backend) or next(iter(self._aborters.values()), None)
            if abort is None:
                left += 1
                continue
            try:
                abort(entry)
            except VmImageError as exc:
                if not isinstance(exc, NotFound):
                    left += 1
                    log.info("unfinished upload %s of %s/%s not aborted yet: %s", entry.upload_id,
                             entry.bucket, entry.key, exc.message)
                    continue
            self.journal.end(entry.path)
            log.warning("aborted the unfinished upload of %s/%s left by %s", entry.bucket, entry.key,
                        "this process" if entry.worker == self.journal.worker else "a process that is gone")
        return left
