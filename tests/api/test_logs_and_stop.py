"""VMIMAGE_LOG_FORMAT=json and a clean stop, against real servers: one parseable line per request
with the id the client saw (its own when valid), job lines with the id of the request that
caused them, no secret anywhere in the log of a server that served logins, signed IMS and JD
requests and a web-download whose URL carries a token; SIGTERM during an upload and a
web-download ends with status 0, the upload's image queued with nothing partial, the import
handed back to the queue and run by the next start."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import httpx
import pytest
import sqlalchemy as sa

from tests.api.test_import import _db, do_import, new_image, web  # noqa: F401 - web is a fixture
from tests.api.test_signed_requests import REGION, Keys, send
from tests.conftest import Server, auth_body, start_server

REQUEST_FIELDS = {"time", "level", "request_id", "face", "method", "route", "status", "duration_ms", "bytes_in",
                  "bytes_out", "user_id", "project_id", "remote"}


def server_log(srv: Server) -> str:
    return "".join(p.read_text() for p in srv.data_dir.glob("server-*.log"))


# What `vmimage serve` prints to stdout for the operator before serving: not log records.
_SERVE_SAYS = ("clouds.yaml written to", "admin password", "serving at most")


def json_lines(text: str) -> list[dict]:
    """Every log record of the log, each a JSON object (uvicorn's included)."""
    lines = [line for line in text.splitlines() if line and not line.startswith(_SERVE_SAYS)]
    return [json.loads(line) for line in lines]


def wait_for(check, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_json_log_has_one_line_per_request_with_the_client_id_and_no_secrets(tmp_path, database_factory, web):
    base, _root = web
    srv = start_server(tmp_path, database_factory(), VMIMAGE_LOG_FORMAT="json",
                       VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1")
    try:
        token = srv.token("demo")
        refused = httpx.post(f"{srv.url}/identity/v3/auth/tokens", json=auth_body("demo", "PASSWORDSECRET789", "demo"))
        assert refused.status_code == 401
        sent_id = "req-from-the-client-0001"
        with srv.client() as c:
            resp = c.get("/v2/images", headers={"X-OpenStack-Request-Id": sent_id})
            assert resp.status_code == 200 and resp.headers["x-openstack-request-id"] == sent_id
            forged = c.get("/v2/images", headers={"X-OpenStack-Request-Id": "bad id\" {}"})
            new_id = forged.headers["x-openstack-request-id"]
            assert new_id.startswith("req-") and new_id != "bad id\" {}"
            image_id = new_image(c)
            secret_query = "token=QUERYSECRET123&Signature=SIGSECRET456"
            resp = do_import(c, image_id, method={"name": "web-download", "uri": f"{base}/disk.raw?{secret_query}"})
            assert resp.status_code == 202, resp.text
            import_id = resp.headers["x-openstack-request-id"]
            wait_for(lambda: c.get(f"/v2/images/{image_id}").json()["status"] == "active", what="the import")
        keys = Keys(srv, "demo")
        url, headers, _ = keys.ims("GET", "/v2/images")
        headers["X-Request-Id"] = "ims-client-id-42"
        resp = send("GET", url, headers)
        assert resp.status_code == 200 and resp.headers["x-request-id"] == "ims-client-id-42"
        path = f"/v1/regions/{REGION}/images?imageSource=private"
        resp = send("GET", keys.url + path, keys.jd("GET", path))
        assert resp.status_code == 200, resp.text
        jd_id = resp.headers["x-jdcloud-request-id"]
    finally:
        srv.stop()
    text = server_log(srv)
    lines = json_lines(text)
    requests = [line for line in lines if line.get("logger") == "vmimage.requests"]
    by_id = {line["request_id"]: line for line in requests}
    seen = by_id[sent_id]
    assert REQUEST_FIELDS <= set(seen), seen
    assert (seen["face"], seen["method"], seen["route"], seen["status"]) == ("glance_v2", "GET", "/v2/images", 200)
    assert seen["user_id"] and seen["project_id"] == srv.project_id("demo") and seen["remote"] == "127.0.0.1"
    assert seen["bytes_out"] > 0 and seen["duration_ms"] >= 0
    assert by_id[new_id]["route"] == "/v2/images"
    assert by_id[import_id]["route"] == "/v2/images/{image_id}/import"
    assert by_id["ims-client-id-42"]["face"] == "huawei_ims" and by_id["ims-client-id-42"]["user_id"]
    assert by_id[jd_id]["face"] == "jdcloud"
    assert any(line["route"] == "/identity/v3/auth/tokens" or line["face"] == "keystone" for line in requests)
    # The job's lines carry the id of the request that started it.
    job_lines = [line for line in lines if line.get("logger") == "vmimage.jobs"]
    assert job_lines and all(line["request_id"] == import_id for line in job_lines), job_lines
    # Nothing secret: tokens, passwords, the secret key, signatures, the URL's query.
    secrets = [token, keys.sk, "QUERYSECRET123", "SIGSECRET456", "PASSWORDSECRET789", headers["Authorization"].split("Signature=")[-1]]
    for secret in secrets:
        assert secret not in text, secret


def _slow_upload(srv: Server, image_id: str, token: str) -> socket.socket:
    """An upload that sends 1 MiB of the 8 it announces, and then nothing."""
    host, port = srv.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: {8 << 20}\r\n\r\n").encode())
    sock.sendall(os.urandom(1 << 20))
    return sock


def _job_of(srv: Server, image_id: str) -> tuple[str, str | None] | None:
    engine = _db(srv)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, error_code FROM jobs WHERE image_id = :i AND kind != 'image_inspect'"), {"i": image_id}).first()
    engine.dispose()
    return None if row is None else (row[0], row[1])


def _image_status(srv: Server, image_id: str) -> str:
    engine = _db(srv)
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM images WHERE id = :i"), {"i": image_id}).scalar_one()
    engine.dispose()
    return status


def test_sigterm_with_an_upload_and_a_job_in_flight(tmp_path, database_factory, web):
    base, _root = web
    srv = start_server(tmp_path, database_factory(), VMIMAGE_SHUTDOWN_GRACE_SECONDS="3",
                       VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1")
    sock = None
    try:
        token = srv.token("demo")
        with srv.client() as c:
            uploading = new_image(c)
            importing = new_image(c)
            # /stall sends nothing for a minute after its first bytes: the job is still in its
            # first step (no progress report) when both graces (3 s each) are over; the stop
            # takes it over and hands it back, without waiting for the download.
            assert do_import(c, importing, method={"name": "web-download", "uri": f"{base}/stall"}).status_code == 202
            wait_for(lambda: _job_of(srv, importing) == ("RUNNING", None), what="the job to run")
            sock = _slow_upload(srv, uploading, token)
            wait_for(lambda: c.get(f"/v2/images/{uploading}").json()["status"] == "saving", what="the upload")
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=60) == 0, server_log(srv)
        took = time.monotonic() - started
    finally:
        if sock is not None:
            sock.close()
        srv.stop()
    # The grace for the upload, the grace for the job, a second for a progress report.
    assert 6 <= took < 20, took
    assert _image_status(srv, uploading) == "queued"
    assert not [name for name in srv.stored_blobs() if uploading in name], srv.stored_blobs()
    # Stopped with its data staged and nothing in a store: handed back, the image still locked.
    assert _job_of(srv, importing) == ("INIT", None)
    assert _image_status(srv, importing) == "importing"
    engine = _db(srv)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM uploads")).scalar_one() == 0
    engine.dispose()
    # The next start takes uploads again (nothing left locked) and runs the import.
    again = start_server(tmp_path, srv.env.get("VMIMAGE_DATABASE_URL"), provision=False, data_dir=srv.data_dir,
                         VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1")
    try:
        with httpx.Client(base_url=again.url, headers={"X-Auth-Token": again.token("demo")}, timeout=60) as c:
            resp = c.put(f"/v2/images/{uploading}/file", content=os.urandom(1 << 20),
                         headers={"Content-Type": "application/octet-stream"})
            assert resp.status_code == 204, resp.text
            wait_for(lambda: c.get(f"/v2/images/{importing}").json()["status"] in ("active", "queued"),
                     what="the import")
        assert _job_of(again, importing) == ("SUCCESS", None)
    finally:
        again.stop()



def test_sigterm_to_the_supervisor_of_two_workers(tmp_path, database_factory):
    url = database_factory()
    if not url:
        pytest.skip("--workers above 1 needs PostgreSQL (VMIMAGE_TEST_DB=postgres)")
    srv = start_server(tmp_path, url, VMIMAGE_WORKERS="2", VMIMAGE_SHUTDOWN_GRACE_SECONDS="2",
                       VMIMAGE_LOG_FORMAT="json")
    sock = None
    try:
        with srv.client() as c:
            uploading = new_image(c)
            sock = _slow_upload(srv, uploading, srv.token("demo"))
            wait_for(lambda: c.get(f"/v2/images/{uploading}").json()["status"] == "saving", what="the upload")
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=60) == 0, server_log(srv)
    finally:
        if sock is not None:
            sock.close()
        srv.stop()
    assert _image_status(srv, uploading) == "queued"
    assert not [name for name in srv.stored_blobs() if uploading in name], srv.stored_blobs()
    lines = json_lines(server_log(srv))     # every worker's lines and the supervisor's parse
    assert any(line["logger"].startswith("uvicorn") for line in lines), lines
