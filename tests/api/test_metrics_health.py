"""GET /metrics, /healthz and /readyz against real servers: counters move as requests, uploads,
logins, signatures and jobs happen; every process counts under --workers 2 (PostgreSQL), a
worker killed and restarted included; /metrics refused to other addresses and non-admin
tokens; /readyz follows the S3 store's server down and back."""

from __future__ import annotations

import os
import signal
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_import import do_import, new_image, stage, wait_import
from tests.backend_proxy import DOWN, FORWARD, BackendProxy
from tests.conftest import auth_body, start_server

OCTET = {"Content-Type": "application/octet-stream"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format (parsed by prometheus-client's own parser) -> {(name, labels): value}."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scraped: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include these (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= ls)


def scrape(url: str, **headers: str) -> dict:
    resp = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return samples(resp.text)


@pytest.fixture(scope="module")
def metered(tmp_path_factory, database_factory):
    srv = start_server(tmp_path_factory.mktemp("metered"), database_factory())
    yield srv
    srv.stop()


def test_healthz_and_readyz_answer_without_auth(metered):
    assert httpx.get(f"{metered.url}/healthz").status_code == 200
    resp = httpx.get(f"{metered.url}/readyz")
    assert resp.status_code == 200 and resp.json() == {"status": "ready"}


def test_requests_uploads_and_downloads_are_counted_by_route_template(metered):
    before = scrape(metered.url)
    data = os.urandom(3 << 20)
    with metered.client() as c:
        image_id = new_image(c)
        assert c.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204
        assert c.get(f"/v2/images/{image_id}/file").content == data
        missing = uuid.uuid4().hex
        assert c.get(f"/v2/nothing-here/{missing}").status_code == 404
    text = httpx.get(f"{metered.url}/metrics").text
    after = samples(text)
    put = dict(face="glance_v2", method="PUT", route="/v2/images/{image_id}/file", status="204")
    assert value(after, "vmimage_http_requests_total", **put) == value(before, "vmimage_http_requests_total", **put) + 1
    created = dict(face="glance_v2", method="POST", route="/v2/images", status="201")
    assert value(after, "vmimage_http_requests_total", **created) >= 1
    unmatched = dict(face="glance_v2", method="GET", route="unmatched", status="404")
    assert value(after, "vmimage_http_requests_total", **unmatched) >= 1
    assert value(after, "vmimage_http_request_duration_seconds_count", face="glance_v2",
                 route="/v2/images/{image_id}/file") >= 2
    for name in ("vmimage_upload_bytes_total", "vmimage_download_bytes_total"):
        assert value(after, name, face="glance_v2") - value(before, name, face="glance_v2") == len(data), name
    # No id and no raw path in any label.
    for secret in (image_id, missing, metered.project_id("demo")):
        assert secret not in text


def test_failed_logins_are_counted_by_face(metered):
    before = value(scrape(metered.url), "vmimage_login_failures_total", face="keystone")
    resp = httpx.post(f"{metered.url}/identity/v3/auth/tokens", json=auth_body("demo", "wrong", "demo"))
    assert resp.status_code == 401
    assert value(scrape(metered.url), "vmimage_login_failures_total", face="keystone") == before + 1


def test_signature_failures_are_counted_by_face(metered):
    from tests.api.test_signed_requests import Keys, send

    key = Keys(metered, "demo")
    key.sk = "not-" + key.sk
    before = value(scrape(metered.url), "vmimage_signature_failures_total", face="huawei_ims")
    url, headers, _ = key.ims("GET", "/v2/images")
    assert send("GET", url, headers).status_code == 401
    assert value(scrape(metered.url), "vmimage_signature_failures_total", face="huawei_ims") == before + 1


def test_jobs_are_counted_from_the_database_and_timed(metered):
    with metered.client() as c:
        image_id = new_image(c)
        stage(c, image_id, os.urandom(1 << 20))
        assert do_import(c, image_id, method={"name": "glance-direct"}).status_code == 202
        assert wait_import(c, image_id)["status"] == "active"
    # The gauge is read from the database at most once a second: within two it shows the job.
    deadline = time.monotonic() + 2.5
    while True:
        scraped = scrape(metered.url)
        jobs = {labels: v for (name, labels), v in scraped.items() if name == "vmimage_jobs"}
        if any(dict(labels)["status"] == "SUCCESS" and v >= 1 for labels, v in jobs.items()):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)
    kind = next(dict(labels)["kind"] for labels, v in jobs.items() if dict(labels)["status"] == "SUCCESS")
    assert value(scraped, "vmimage_job_duration_seconds_count", kind=kind, status="SUCCESS") >= 1


def test_metrics_refused_to_other_addresses_and_non_admin_tokens(tmp_path_factory, database_factory):
    srv = start_server(tmp_path_factory.mktemp("closed"), database_factory(), VMIMAGE_METRICS_ALLOW="192.0.2.0/24")
    try:
        assert httpx.get(f"{srv.url}/metrics").status_code == 403
        assert httpx.get(f"{srv.url}/metrics", headers={"X-Auth-Token": srv.token("demo")}).status_code == 403
        assert httpx.get(f"{srv.url}/metrics", headers={"X-Auth-Token": "not-a-token"}).status_code == 403
        scrape(srv.url, **{"X-Auth-Token": srv.token("admin")})
        assert httpx.get(f"{srv.url}/healthz").status_code == 200       # the probes stay open
    finally:
        srv.stop()


def test_readyz_follows_the_s3_store_down_and_back(tmp_path_factory, database_factory, swift_s3):
    where = urlsplit(swift_s3.endpoint)
    proxy = BackendProxy(where.hostname or "127.0.0.1", where.port or 80)
    srv = start_server(tmp_path_factory.mktemp("ready"), database_factory(),
                       **{**swift_s3.env, "VMIMAGE_S3_ENDPOINT": proxy.endpoint,
                          "VMIMAGE_STORES": f"obj=s3://ready-{uuid.uuid4().hex[:8]}/imgs",
                          "VMIMAGE_BACKEND_RETRY_SECONDS": "1", "VMIMAGE_BACKEND_STALL_SECONDS": "3"})
    try:
        assert httpx.get(f"{srv.url}/readyz", timeout=30).status_code == 200
        errors_before = value(scrape(srv.url), "vmimage_store_errors_total", store="obj")
        proxy.set(DOWN)
        resp = httpx.get(f"{srv.url}/readyz", timeout=30)
        assert resp.status_code == 503, resp.text
        assert resp.json() == {"status": "unready", "failed": {"store obj": "not answering"}}
        for secret in (swift_s3.env["VMIMAGE_S3_SECRET_KEY"], swift_s3.env["VMIMAGE_S3_ACCESS_KEY"],
                       str(proxy.port), str(srv.data_dir)):
            assert secret not in resp.text
        assert httpx.get(f"{srv.url}/healthz").status_code == 200     # serving, though not ready
        assert value(scrape(srv.url), "vmimage_store_errors_total", store="obj") > errors_before
        proxy.set(FORWARD)
        deadline = time.monotonic() + 30
        while (status := httpx.get(f"{srv.url}/readyz", timeout=30).status_code) != 200:
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        srv.stop()
        proxy.close()


def _workers(server_pid: int) -> list[int]:
    """The serving processes uvicorn's supervisor started (not multiprocessing's resource tracker)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server_pid and b"spawn_main" in cmdline:
                children.append(int(entry))
    return children


def _counting_pids(data_dir) -> set[int]:
    """Processes that have counted something (their counter files in the metrics directory)."""
    return {int(p.stem.rsplit("_", 1)[1]) for p in (data_dir / "metrics").glob("counter_*.db")}


def test_every_worker_is_counted_and_a_restart_loses_nothing(tmp_path_factory, database_factory):
    database = database_factory()
    if database is None:
        pytest.skip("--workers 2 needs PostgreSQL (VMIMAGE_TEST_DB=postgres)")
    srv = start_server(tmp_path_factory.mktemp("workers"), database, provision=False, VMIMAGE_WORKERS="2")
    try:
        route = dict(face="glance_v2", method="GET", route="/versions", status="200")
        base = value(scrape(srv.url), "vmimage_http_requests_total", **route)
        workers = _workers(srv.proc.pid)
        assert len(workers) == 2, workers
        sent = 0
        # A connection each: the kernel spreads them over the workers, until both have counted.
        while not set(workers) <= _counting_pids(srv.data_dir) or sent < 40:
            assert httpx.get(f"{srv.url}/versions").status_code == 200
            sent += 1
            assert sent < 400, _counting_pids(srv.data_dir)
        assert value(scrape(srv.url), "vmimage_http_requests_total", **route) - base == sent
        with httpx.Client(base_url=srv.url) as c:
            for _ in range(10):
                c.get("/versions")
        for _ in range(5):     # every scrape, whichever worker answers, sums both
            assert value(scrape(srv.url), "vmimage_http_requests_total", **route) - base == sent + 10
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(set(_workers(srv.proc.pid)) - {workers[0]}) < 2:
            assert time.monotonic() < deadline, "the killed worker was not restarted"
            time.sleep(0.2)
        for _ in range(5):     # the killed worker's counts are kept in its files
            assert value(scrape(srv.url), "vmimage_http_requests_total", **route) - base == sent + 10
    finally:
        srv.stop()
