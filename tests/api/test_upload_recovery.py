"""Uploads belong to the process that took them: a crash mid-upload does not leave the image
stuck, and a surviving process (PostgreSQL, several processes) recovers it without a restart."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.conftest import reaped, start_server

pytestmark = pytest.mark.skipif(os.environ.get("VMIMAGE_TEST_DB", "sqlite") != "postgres",
                                reason="several processes on one database: PostgreSQL (VMIMAGE_TEST_DB=postgres)")
FAST = {"VMIMAGE_UPLOAD_HEARTBEAT_SECONDS": "1", "VMIMAGE_UPLOAD_STALE_SECONDS": "5"}
OCTETS = {"Content-Type": "application/octet-stream"}


class SlowUpload:
    """PUT /file from a thread, 256 KiB every 20 ms, until finish() (or the server dies)."""

    def __init__(self, srv, image_id: str) -> None:
        self.srv, self.image_id = srv, image_id
        self.sent, self.response, self.error = 0, None, None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _body(self):
        block = os.urandom(256 << 10)
        while not self._done.is_set():
            self.sent += len(block)
            yield block
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            with self.srv.client("demo") as http:
                http.timeout = 120
                self.response = http.put(f"/v2/images/{self.image_id}/file", content=self._body(), headers=OCTETS)
        except httpx.HTTPError as exc:
            self.error = exc

    def finish(self) -> httpx.Response | None:
        self._done.set()
        self._thread.join(timeout=120)
        return self.response


def new_image(http, name: str) -> str:
    resp = http.post("/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def partials(srv, image_id: str) -> list[str]:
    return [p.name for p in (srv.store_dir / ".partial").iterdir() if p.name.startswith(f"{image_id}.")]


def wait_for(what, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status(http, image_id: str) -> str:
    return http.get(f"/v2/images/{image_id}").json()["status"]


def test_a_survivor_resets_a_dead_process_uploads_and_spares_live_ones(tmp_path, database_factory):
    db = database_factory()
    first = start_server(tmp_path, db, **FAST)
    second = start_server(tmp_path, db, provision=False, data_dir=first.data_dir, **FAST)   # one shared store
    uploads = []
    try:
        with second.client("demo") as http:
            doomed, live, deleted = (new_image(http, n) for n in ("doomed", "live", "deleted"))
            uploads = [SlowUpload(first, doomed), SlowUpload(second, live), SlowUpload(second, deleted)]
            wait_for(lambda: all(partials(second, i) for i in (doomed, live, deleted)))
            assert {status(http, i) for i in (doomed, live, deleted)} == {"saving"}
            # Before the fix a re-upload of a stuck image got 409: it is one now, as expected.
            assert http.put(f"/v2/images/{doomed}/file", content=b"x", headers=OCTETS).status_code == 409

            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            killed = time.monotonic()
            wait_for(lambda: status(http, doomed) == "queued", timeout=60)
            print(f"reset {time.monotonic() - killed:.1f} s after the kill")
            reaped(lambda: partials(second, doomed) == [], what="the dead upload's partial data")
            assert status(http, live) == "saving" and partials(second, live)   # the live one untouched

            # DELETE during an upload: its partial data goes (the reaper's, soon after the
            # answer); the upload answers 410.
            assert http.delete(f"/v2/images/{deleted}").status_code == 204
            reaped(lambda: partials(second, deleted) == [], what="the deleted image's partial data")
            ended = uploads[2].finish()
            assert ended is not None and ended.status_code == 410, ended.text if ended else uploads[2].error

            finished = uploads[1].finish()
            assert finished is not None and finished.status_code == 204, finished.text
            shown = http.get(f"/v2/images/{live}").json()
            assert shown["status"] == "active" and shown["size"] == uploads[1].sent

            data = os.urandom(1 << 20)
            assert http.put(f"/v2/images/{doomed}/file", content=data, headers=OCTETS).status_code == 204
            assert http.get(f"/v2/images/{doomed}/file").content == data
        assert sorted(p.name for p in second.store_dir.iterdir() if p.is_file()) == sorted([doomed, live])
        reaped(lambda: list((second.store_dir / ".partial").iterdir()) == [], what="partial data")
    finally:
        for upload in uploads:
            upload.finish()
        second.stop()
        first.stop()


def test_a_dead_node_local_partial_files_go_at_its_next_start(tmp_path, database_factory):
    db = database_factory()
    first = start_server(tmp_path, db, **FAST)
    second = start_server(tmp_path, db, provision=False, **FAST)    # its own data dir: another node
    upload = None
    try:
        with second.client("demo") as http:
            doomed = new_image(http, "doomed")
            upload = SlowUpload(first, doomed)
            wait_for(lambda: bool(partials(first, doomed)))
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            wait_for(lambda: status(http, doomed) == "queued", timeout=60)
        assert partials(first, doomed), "the other node cannot reach these files"
        first = start_server(tmp_path, db, provision=False, data_dir=first.data_dir, **FAST)
        reaped(lambda: partials(first, doomed) == [], what="the dead node's partial data")
        with first.client("demo") as http:
            assert http.put(f"/v2/images/{doomed}/file", content=b"data", headers=OCTETS).status_code == 204
    finally:
        if upload is not None:
            upload.finish()
        second.stop()
        first.stop()
