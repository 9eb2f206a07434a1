"""The journal of S3 multipart uploads and its janitor (adapters/blob/s3_uploads.py): which
entries are left over, and that they are aborted until S3 answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from vmimage.adapters.blob.s3_uploads import UploadJanitor, UploadJournal
from vmimage.core.errors import BackendUnavailable, NotFound

HOST = socket.gethostname()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def entry_of(journal: UploadJournal, worker: str, upload_id: str, orphaned: bool = False) -> None:
    path = journal.directory / f"{upload_id}.json"
    path.write_text(json.dumps({"worker": worker, "backend": "S3 store 'obj'", "bucket": "b", "key": f"k/{upload_id}",
                                "upload_id": upload_id, "orphaned": orphaned}))


def test_the_janitor_aborts_what_is_left_over_and_nothing_live(tmp_path):
    me = f"{HOST}:{os.getpid()}:aaaa0000"
    journal = UploadJournal(tmp_path, me)
    live = journal.begin("S3 store 'obj'", "b", "k/live", "live")          # being written now
    given_up = journal.begin("S3 store 'obj'", "b", "k/given-up", "given-up")
    journal.orphan(given_up)                                               # its abort failed
    entry_of(journal, f"{HOST}:{dead_pid()}:bbbb0000", "dead")             # a process that is gone
    entry_of(journal, f"{HOST}:{os.getpid()}:cccc0000", "earlier")         # this pid, an earlier life
    entry_of(journal, f"{HOST}:{os.getppid()}:dddd0000", "sibling")        # another live process
    entry_of(journal, f"elsewhere:{os.getpid()}:eeee0000", "other-host")   # not this node's to judge
    aborted = []
    janitor = UploadJanitor(journal, retry_seconds=1)
    janitor.register("S3 store 'obj'", lambda entry: aborted.append(entry.upload_id))
    assert janitor.round() == 0
    assert sorted(aborted) == ["dead", "earlier", "given-up"]
    assert sorted(e.upload_id for e in journal.entries()) == ["live", "other-host", "sibling"]
    assert journal.live_upload_ids() == {"live"}
    journal.end(live)
    assert sorted(e.upload_id for e in journal.entries()) == ["other-host", "sibling"]


def test_entries_stay_until_s3_answers(tmp_path):
    journal = UploadJournal(tmp_path, f"{HOST}:{os.getpid()}:aaaa0000")
    journal.orphan(journal.begin("S3 buckets", "users", "out/disk.raw", "u1"))
    journal.orphan(journal.begin("S3 buckets", "users", "out/gone.raw", "u2"))
    answering = False

    def abort(entry) -> None:
        if not answering:
            raise BackendUnavailable("S3 buckets is not answering")
        if entry.upload_id == "u2":
            raise NotFound("no such upload")       # aborted meanwhile: done as well

    janitor = UploadJanitor(journal, retry_seconds=1)
    janitor.register("S3 buckets", abort)
    assert janitor.round() == 2 and len(journal.entries()) == 2
    answering = True
    assert janitor.round() == 0 and journal.entries() == []


def test_a_store_wide_sweep_is_done_once_s3_answers(tmp_path):
    janitor = UploadJanitor(UploadJournal(tmp_path, f"{HOST}:{os.getpid()}:aaaa0000"), retry_seconds=1)
    calls = []

    def sweep() -> int:
        calls.append(len(calls))
        if len(calls) < 3:
            raise BackendUnavailable("no answer")
        return 4

    janitor.sweep_later("store obj", sweep)
    assert janitor.round() == 1 and janitor.round() == 1
    assert janitor.round() == 0 and janitor.round() == 0
    assert calls == [0, 1, 2]


def test_the_janitor_thread_works_when_woken(tmp_path):
    journal = UploadJournal(tmp_path, f"{HOST}:{os.getpid()}:aaaa0000")
    janitor = UploadJanitor(journal, retry_seconds=60)
    aborted = []
    janitor.register("S3 store 'obj'", lambda entry: aborted.append(entry.upload_id))
    janitor.start()
    try:
        journal.orphan(journal.begin("S3 store 'obj'", "b", "k", "u1"))
        janitor.wake()                              # as a breaker closing again does
        deadline = time.monotonic() + 10
        while journal.entries() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert aborted == ["u1"] and journal.entries() == []
    finally:
        janitor.stop()
