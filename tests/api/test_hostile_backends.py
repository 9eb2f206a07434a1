"""A backend that stalls or goes away (issue 19, items 2 and 7), against a real Swift s3api
behind a proxy the test switches (tests/backend_proxy.py): forward, stall (accepts, never
answers), down (resets).

- Downloads from a stalled S3 store fail with 503 in the Glance envelope within the stall
  deadline, while another project's list, job lists and Keystone login keep answering at once
  (before: every one of them timed out at 30 s); then the store is short-circuited (503 at once
  with Retry-After) and recovers when S3 answers again.
- A web server behind an http location is a backend of its own, short-circuited alone.
- Multipart uploads that S3 failed in the middle of are aborted once S3 is back, whether the
  process lives on or was killed and restarted meanwhile: none survives.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_import import OCTET, new_image, web  # noqa: F401 - module fixture reused
from tests.backend_proxy import DOWN, FORWARD, STALL, BackendProxy
from tests.conftest import auth_body, start_server

STALL_SECONDS = 3          # VMIMAGE_BACKEND_STALL_SECONDS here (15 by default)
RETRY_SECONDS = 4          # VMIMAGE_BACKEND_RETRY_SECONDS here (30 by default)
DOWNLOADS = 45


def rss_mb(srv) -> float:
    with open(f"/proc/{srv.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def proxied_env(swift_s3, proxy: BackendProxy, bucket: str) -> dict[str, str]:
    return {**swift_s3.env, "VMIMAGE_S3_ENDPOINT": proxy.endpoint, "VMIMAGE_STORES": f"obj=s3://{bucket}/imgs",
            "VMIMAGE_BACKEND_STALL_SECONDS": str(STALL_SECONDS), "VMIMAGE_BACKEND_RETRY_SECONDS": str(RETRY_SECONDS),
            "VMIMAGE_CACHE_ENABLED": "false",        # every download goes to S3
            "VMIMAGE_WEB_DOWNLOAD_ALLOW": "127.0.0.1", "VMIMAGE_SHOW_LOCATIONS": "true"}


def swift_proxy(swift_s3) -> BackendProxy:
    where = urlsplit(swift_s3.endpoint)
    return BackendProxy(where.hostname or "127.0.0.1", where.port or 80)


@pytest.fixture(scope="module")
def stallable(tmp_path_factory, database_factory, swift_s3):
    """A server whose only store is S3 behind a switchable proxy."""
    proxy = swift_proxy(swift_s3)
    bucket = f"vmimage-{uuid.uuid4().hex[:8]}"
    srv = start_server(tmp_path_factory.mktemp("stallable"), database_factory(),
                       **proxied_env(swift_s3, proxy, bucket))
    srv.proxy, srv.bucket, srv.s3 = proxy, bucket, swift_s3.client()
    yield srv
    srv.stop()
    proxy.close()


def unfinished_uploads(srv) -> list[str]:
    return sorted(u["Key"] for u in srv.s3.list_multipart_uploads(Bucket=srv.bucket).get("Uploads", []))


def eventually(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def answering_again(srv, c: httpx.Client, image_id: str, data: bytes) -> None:
    """S3 forwards again; the store answers once its breaker lets a probe through."""
    srv.proxy.set(FORWARD)

    def downloaded() -> bool:
        resp = c.get(f"/v2/images/{image_id}/file")
        return resp.status_code == 200 and resp.content == data
    eventually(downloaded, RETRY_SECONDS + 2 * STALL_SECONDS + 10, "the store did not recover")


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def other_project_round(srv) -> dict[str, float]:
    """Project alt: Keystone login, image list and native job list; seconds each."""
    timings = {}

    def login() -> None:
        resp = httpx.post(f"{srv.url}/identity/v3/auth/tokens", json=auth_body("alt", "alt", "alt"), timeout=60)
        assert resp.status_code == 201, resp.text
    timings["login"] = timed(login)
    with srv.client("alt") as c:
        for name, path in (("list", "/v2/images"), ("jobs", "/vmimage/v1/jobs")):
            timings[name] = timed(lambda: c.get(path).raise_for_status())
    return timings


def others_while(srv, calls: list, at_least: int = 0) -> list[dict[str, float]]:
    """Runs the calls at once; meanwhile, and at least at_least times, the other project's
    round (other_project_round). Its rounds."""
    pool = ThreadPoolExecutor(len(calls))
    futures = [pool.submit(call) for call in calls]
    during = []
    while not all(f.done() for f in futures) or len(during) < at_least:
        during.append(other_project_round(srv))
        time.sleep(0.2)
    pool.shutdown()
    for f in futures:
        f.result()
    return during


def test_a_stalled_s3_fails_its_downloads_in_time_and_starves_no_other_project(stallable):
    srv = stallable
    c = srv.client()
    data = {}
    for _ in range(3):
        image_id = new_image(c)
        data[image_id] = os.urandom(300_000)
        assert c.put(f"/v2/images/{image_id}/file", content=data[image_id], headers=OCTET).status_code == 204
    images = list(data)
    quiet = [other_project_round(srv) for _ in range(5)]
    quiet_worst = {op: max(r[op] for r in quiet) for op in quiet[0]}
    rss_before = rss_mb(srv)

    srv.proxy.set(STALL)
    results: list[tuple[int, float, httpx.Response]] = []
    downloads = httpx.Client(base_url=srv.url, headers={"X-Auth-Token": srv.token()}, timeout=60,
                             limits=httpx.Limits(max_connections=DOWNLOADS))

    def download(i: int) -> None:
        started = time.monotonic()
        resp = downloads.get(f"/v2/images/{images[i % 3]}/file")
        results.append((resp.status_code, time.monotonic() - started, resp))

    during = others_while(srv, [functools.partial(download, i) for i in range(DOWNLOADS)])
    downloads.close()

    # Every download failed with the Glance 503 within the stall deadline (not S3's 120 s read
    # timeout x 5 attempts): those waiting for a slot of the stalled store too.
    assert sorted(status for status, _, _ in results) == [503] * DOWNLOADS
    assert max(seconds for _, seconds, _ in results) < STALL_SECONDS + 3, sorted(s for _, s, _ in results)
    assert all(resp.json()["error"]["code"] == 503 for _, _, resp in results)
    # Meanwhile the other project answered at its usual pace (bound: 2 s, or a few times quiet).
    assert len(during) >= 2
    for op in quiet_worst:
        worst = max(r[op] for r in during)
        assert worst < max(2.0, 5 * quiet_worst[op]), (op, quiet_worst[op], [r[op] for r in during])

    # The store is short-circuited now: 503 at once, with the time to come back.
    for _ in range(3):
        started = time.monotonic()
        resp = c.get(f"/v2/images/{images[0]}/file")
        assert resp.status_code == 503 and time.monotonic() - started < 1.0
        assert 1 <= int(resp.headers["Retry-After"]) <= RETRY_SECONDS
    # Nothing piled up: memory as before, and the stalled connections were let go.
    assert rss_mb(srv) < rss_before + 100, (rss_before, rss_mb(srv))
    eventually(lambda: srv.proxy.open_connections() <= 16, 2 * STALL_SECONDS, "stalled connections kept open")

    answering_again(srv, c, images[1], data[images[1]])
    for image_id, content in data.items():
        assert c.get(f"/v2/images/{image_id}/file").content == content
    ranged = c.get(f"/v2/images/{images[2]}/file", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[images[2]][100:200]


def test_an_upload_to_a_stalled_s3_fails_in_time_and_the_image_can_be_uploaded_later(stallable):
    srv = stallable
    c = srv.client()
    image_id = new_image(c)
    srv.proxy.set(STALL)
    started = time.monotonic()
    resp = c.put(f"/v2/images/{image_id}/file", content=os.urandom(100_000), headers=OCTET)
    assert resp.status_code == 503 and time.monotonic() - started < 2 * STALL_SECONDS + 3, resp.text
    assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    srv.proxy.set(FORWARD)

    def uploaded() -> bool:
        return c.put(f"/v2/images/{image_id}/file", content=b"later", headers=OCTET).status_code == 204
    eventually(uploaded, RETRY_SECONDS + 2 * STALL_SECONDS + 10, "no upload after S3 came back")
    assert c.get(f"/v2/images/{image_id}/file").content == b"later"


def test_a_stalled_web_server_short_circuits_only_itself(stallable, web):  # noqa: F811
    srv = stallable
    c = srv.client()
    host, port = urlsplit(web[0]).hostname, urlsplit(web[0]).port
    proxy = BackendProxy(host or "127.0.0.1", port or 80)
    try:
        image_id = new_image(c)
        url = f"{proxy.endpoint}/disk.raw"
        resp = c.patch(f"/v2/images/{image_id}", json=[{"op": "add", "path": "/locations/-",
                                                        "value": {"url": url, "metadata": {}}}],
                       headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert resp.status_code == 200, resp.text
        content = (web[1] / "disk.raw").read_bytes()
        assert c.get(f"/v2/images/{image_id}/file").content == content
        s3_image = new_image(c)
        assert c.put(f"/v2/images/{s3_image}/file", content=b"in s3", headers=OCTET).status_code == 204

        proxy.set(STALL)
        for _ in range(5):          # VMIMAGE_BACKEND_TRIP_AFTER stalls in a row
            started = time.monotonic()
            resp = c.get(f"/v2/images/{image_id}/file")
            assert resp.status_code == 503 and time.monotonic() - started < STALL_SECONDS + 3, resp.text
        started = time.monotonic()
        resp = c.get(f"/v2/images/{image_id}/file")
        assert resp.status_code == 503 and time.monotonic() - started < 1.0 and "Retry-After" in resp.headers
        assert c.get(f"/v2/images/{s3_image}/file").content == b"in s3"     # another backend: untouched

        proxy.set(FORWARD)
        eventually(lambda: c.get(f"/v2/images/{image_id}/file").content == content,
                   RETRY_SECONDS + STALL_SECONDS + 10, "the web server's breaker did not close")
    finally:
        proxy.close()


def test_locations_at_a_stalled_web_server_hold_no_shared_thread(stallable, web):  # noqa: F811
    """45 PATCHes adding a location at a web server that accepts and never answers (each new
    location is reached first): they wait on the web's own threads and slots, so another
    project's list and login keep their pace; each is refused (400) within the stall deadline."""
    srv = stallable
    c = srv.client()
    host, port = urlsplit(web[0]).hostname, urlsplit(web[0]).port
    proxy = BackendProxy(host or "127.0.0.1", port or 80, mode=STALL)
    try:
        images = [new_image(c) for _ in range(DOWNLOADS)]
        quiet = [other_project_round(srv) for _ in range(3)]
        quiet_worst = {op: max(r[op] for r in quiet) for op in quiet[0]}
        results: list[tuple[int, float]] = []
        patches = httpx.Client(base_url=srv.url, timeout=60, limits=httpx.Limits(max_connections=DOWNLOADS),
                               headers={"X-Auth-Token": srv.token(),
                                        "Content-Type": "application/openstack-images-v2.1-json-patch"})

        def add_location(image_id: str) -> None:
            started = time.monotonic()
            resp = patches.patch(f"/v2/images/{image_id}", json=[{
                "op": "add", "path": "/locations/-", "value": {"url": f"{proxy.endpoint}/disk.raw", "metadata": {}}}])
            results.append((resp.status_code, time.monotonic() - started))

        during = others_while(srv, [functools.partial(add_location, image_id) for image_id in images])
        patches.close()
        assert sorted(status for status, _ in results) == [400] * DOWNLOADS
        assert max(seconds for _, seconds in results) < STALL_SECONDS + 3, sorted(s for _, s in results)
        for op in quiet_worst:
            worst = max(r[op] for r in during)
            assert worst < max(2.0, 5 * quiet_worst[op]), (op, quiet_worst[op], [r[op] for r in during])
        assert all(c.get(f"/v2/images/{i}").json()["status"] == "queued" for i in images)   # nothing changed
    finally:
        proxy.close()


def slow_upload(srv, c: httpx.Client, image_id: str, stop: threading.Event) -> threading.Thread:
    """A multipart upload that keeps sending 1 MiB chunks until stop is set."""
    def body():
        while not stop.is_set():
            yield os.urandom(1 << 20)
            time.sleep(0.01)

    def send() -> None:
        try:
            c.put(f"/v2/images/{image_id}/file", content=body(), headers=OCTET, timeout=120)
        except httpx.HTTPError:
            pass            # the server was killed under it
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    eventually(lambda: bool(unfinished_uploads(srv)), 60, "no multipart upload started")
    return sender


def test_an_upload_s3_failed_mid_way_is_aborted_once_s3_is_back(stallable):
    srv = stallable
    srv.proxy.set(FORWARD)
    c = srv.client()
    image_id = new_image(c)
    eventually(lambda: c.put(f"/v2/images/{image_id}/file", content=b"x", headers=OCTET).status_code == 204,
               RETRY_SECONDS + 2 * STALL_SECONDS + 10, "the store did not answer")
    image_id = new_image(c)
    stop = threading.Event()
    sender = slow_upload(srv, c, image_id, stop)
    srv.proxy.set(DOWN)                       # parts fail, and so does the writer's abort
    eventually(lambda: c.get(f"/v2/images/{image_id}").json()["status"] == "queued", 30,
               "the upload did not fail")
    stop.set()
    sender.join(30)
    assert unfinished_uploads(srv) == [f"imgs/{image_id}"]       # S3 still holds the parts
    assert list((srv.data_dir / "s3-uploads").glob("*.json"))     # written down for later
    srv.proxy.set(FORWARD)
    eventually(lambda: unfinished_uploads(srv) == [], 3 * RETRY_SECONDS + STALL_SECONDS + 10,
               "the unfinished upload was not aborted once S3 was back")
    eventually(lambda: not list((srv.data_dir / "s3-uploads").glob("*.json")), 10, "journal entry left")


def test_an_export_s3_hung_in_the_middle_of_leaves_no_upload_in_the_bucket(stallable):
    """An export to a granted bucket whose S3 hangs at the second part: the job fails, its
    abort hangs as well; once S3 answers, the janitor aborts the upload in the user's bucket."""
    srv = stallable
    srv.proxy.set(FORWARD)
    c = srv.client()
    image_id = new_image(c)
    data = os.urandom(20 << 20)         # three parts
    eventually(lambda: c.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204,
               RETRY_SECONDS + 2 * STALL_SECONDS + 10, "the store did not answer")
    users = f"users-{uuid.uuid4().hex[:8]}"
    srv.s3.create_bucket(Bucket=users)
    srv.admin_cli("bucket", "grant", users, "--project", "demo")
    srv.proxy.stall_on(b"partNumber=2")
    resp = c.post(f"/vmimage/v1/images/{image_id}/export", json={"bucket": users, "key": "out/disk.raw"})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job"]["id"]

    def job_ended() -> bool:
        return c.get(f"/vmimage/v1/jobs/{job_id}").json()["job"]["status"] in ("SUCCESS", "FAIL")
    eventually(job_ended, 10 * STALL_SECONDS + 30, "the export did not end")
    assert c.get(f"/vmimage/v1/jobs/{job_id}").json()["job"]["status"] == "FAIL"
    in_bucket = lambda: srv.s3.list_multipart_uploads(Bucket=users).get("Uploads", [])  # noqa: E731
    assert [u["Key"] for u in in_bucket()] == ["out/disk.raw"]
    srv.proxy.set(FORWARD)
    eventually(lambda: in_bucket() == [], 3 * RETRY_SECONDS + STALL_SECONDS + 10,
               "the export's upload was not aborted once S3 was back")
    assert "Contents" not in srv.s3.list_objects_v2(Bucket=users)


def test_no_unfinished_upload_survives_a_restart(tmp_path, database_factory, swift_s3):
    """Killed while S3 was down in the middle of an upload, restarted while it still is: once S3
    is back, the upload is aborted (the start-up sweep waits for S3, the journal names it)."""
    proxy = swift_proxy(swift_s3)
    bucket = f"vmimage-{uuid.uuid4().hex[:8]}"
    env = proxied_env(swift_s3, proxy, bucket)
    db = database_factory()
    srv = start_server(tmp_path, db, **env)
    srv.bucket, srv.s3 = bucket, swift_s3.client()
    try:
        c = srv.client()
        image_id = new_image(c)
        stop = threading.Event()
        slow_upload(srv, c, image_id, stop)
        proxy.set(DOWN)
        time.sleep(1)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        assert unfinished_uploads(srv) == [f"imgs/{image_id}"]
        srv = start_server(tmp_path, db, provision=False, data_dir=srv.data_dir, **env)   # S3 still down
        srv.bucket, srv.s3 = bucket, swift_s3.client()
        c = srv.client()
        assert c.get(f"/v2/images/{image_id}").json()["status"] == "queued"
        time.sleep(1)
        assert unfinished_uploads(srv) == [f"imgs/{image_id}"]
        proxy.set(FORWARD)
        eventually(lambda: unfinished_uploads(srv) == [], 3 * RETRY_SECONDS + STALL_SECONDS + 10,
                   "the upload survived the restart")
        eventually(lambda: c.put(f"/v2/images/{image_id}/file", content=b"again", headers=OCTET).status_code == 204,
                   RETRY_SECONDS + STALL_SECONDS + 10, "the store did not answer after the restart")
        assert c.get(f"/v2/images/{image_id}/file").content == b"again"
    finally:
        srv.stop()
        proxy.close()
