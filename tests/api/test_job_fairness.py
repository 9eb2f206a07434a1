"""One project's backlog of jobs never holds up another project's job, and its line of waiting
jobs is bounded (issue 19, item 4), against a real server with six job workers: project demo
(A) imports from a web server that holds every download open until the test lets go, while
project alt (B) imports a small image; then A's 101st waiting job is refused with 429 through
Glance (openstacksdk), Huawei IMS (its SDK) and the native API, changing nothing."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time

import httpx
import pytest

from tests.conftest import sdk_connect, start_server

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402

V1 = "/vmimage/v1"
CHUNK = b"\0" * 4096


class _Web(http.server.BaseHTTPRequestHandler):
    """/held/N trickles zeros (a read never stalls) until the test sets `release`; /small
    answers 64 KiB at once. The server counts the held downloads open at once."""

    def do_GET(self):  # noqa: N802
        web = self.server
        if self.path.startswith("/held/"):
            self.send_response(200)
            self.end_headers()                 # no length: the body ends when the connection does
            with web.lock:
                web.open_held += 1
                web.most_held = max(web.most_held, web.open_held)
            try:
                while not web.release.wait(0.2):
                    self.wfile.write(CHUNK)
                    self.wfile.flush()
                self.wfile.write(CHUNK)
            except OSError:
                pass
            finally:
                with web.lock:
                    web.open_held -= 1
            return
        body = b"\0" * (64 << 10)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Web)
    httpd.daemon_threads = True
    httpd.release, httpd.lock, httpd.open_held, httpd.most_held = threading.Event(), threading.Lock(), 0, 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def fair(tmp_path_factory, database_factory):
    """Six job workers, so that the per-project limit (the default, 4), not the pool, is what
    holds project A back; the default of 100 waiting jobs per project."""
    srv = start_server(tmp_path_factory.mktemp("fair"), database_factory(), VMIMAGE_WEB_DOWNLOAD_ALLOW="127.0.0.1",
                       VMIMAGE_JOB_WORKERS="6")
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def task_statuses(admin: httpx.Client, owner: str) -> dict[str, int]:
    """How many of the project's import tasks are in each status."""
    found: dict[str, int] = {}
    url = "/v2/tasks?limit=1000"
    while url:
        body = admin.get(url).json()
        for task in body["tasks"]:
            if task["owner"] == owner:
                found[task["status"]] = found.get(task["status"], 0) + 1
        url = body.get("next")
    return found


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def held_import(conn, web, i: int) -> str:
    image = conn.image.create_image(name=f"a-{i}", disk_format="raw", container_format="bare")
    resp = conn.image.import_image(image, method="web-download", uri=f"{web.url}/held/{i}")
    assert resp.status_code == 202, resp.text
    return image.id


def test_a_backlog_holds_up_no_other_project_and_its_line_is_bounded(fair, web):
    a, b = sdk_connect(fair, "demo"), sdk_connect(fair, "alt")
    admin = fair.client("admin")
    a_project = fair.project_id("demo")
    a_images = [held_import(a, web, i) for i in range(16)]
    wait_until(lambda: web.open_held == 4, 30, "four of A's downloads to be open")
    time.sleep(1)            # two workers stay idle: still no fifth of A's jobs starts
    assert web.open_held == 4 and task_statuses(admin, a_project) == {"processing": 4, "pending": 12}

    started = time.monotonic()
    small = b.image.create_image(name="b-small", disk_format="raw", container_format="bare")
    assert b.image.import_image(small, method="web-download", uri=f"{web.url}/small").status_code == 202
    wait_until(lambda: b.image.get_image(small.id).status == "active", 30, "B's small import")
    print(f"B's small import behind A's backlog of 16: {time.monotonic() - started:.2f} s")
    assert task_statuses(admin, a_project) == {"processing": 4, "pending": 12}      # all of A's still there
    assert web.most_held == 4

    # A's line fills up to 100 waiting; the 101st is refused, in each face's own terms.
    a_images += [held_import(a, web, i) for i in range(16, 104)]
    assert task_statuses(admin, a_project) == {"processing": 4, "pending": 100}
    refused = a.image.create_image(name="a-refused", disk_format="raw", container_format="bare")
    glance = a.image.import_image(refused, method="web-download", uri=f"{web.url}/held/refused")
    assert glance.status_code == 429 and int(glance.headers["Retry-After"]) > 0
    assert glance.json()["error"]["title"] == "Too Many Requests" and "wait" in glance.json()["error"]["message"]
    shown = a.image.get_image(refused.id)
    assert shown.status == "queued" and a.image.get_image(refused.id).properties.get("os_glance_import_task") is None
    with fair.client("demo") as http_a:
        assert http_a.get(f"/v2/images/{refused.id}/tasks").json()["tasks"] == []

    made = json.loads(fair.admin_cli("access-key", "create", "--user", "demo"))
    ims = ImsClient.new_builder().with_credentials(
        BasicCredentials(made["access_key"], made["secret_key"], made["project_id"])).with_endpoints([fair.url]).build()
    shared = a.image.create_image(name="a-shared", disk_format="raw", container_format="bare", visibility="shared")
    with pytest.raises(ClientRequestException) as huawei:
        ims.batch_add_members(m.BatchAddMembersRequest(body=m.BatchAddMembersRequestBody(
            images=[shared.id], projects=[fair.project_id("alt")])))
    assert (huawei.value.status_code, huawei.value.error_code) == (429, "IMG.0060")
    assert list(a.image.members(shared.id)) == []

    with fair.client("demo") as native:
        volume = native.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"]
        resp = native.post(f"{V1}/volumes/{volume['id']}/images", json={"name": "from-volume"})
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
        assert resp.json()["error"]["code"] == "too_many_requests"
        assert native.get(f"{V1}/volumes/{volume['id']}").json()["volume"]["busy"] is False
        assert [i.name for i in a.image.images(name="from-volume")] == []
        assert task_statuses(admin, a_project) == {"processing": 4, "pending": 100}

    # Let go: every job ends, nothing stays waiting or running, and A may submit again.
    web.release.set()
    wait_until(lambda: task_statuses(admin, a_project) == {"success": 104}, 120, "A's jobs to end")
    assert {a.image.get_image(i).status for i in a_images} == {"active"}
    assert web.open_held == 0 and web.most_held == 4
    assert a.image.import_image(refused, method="web-download", uri=f"{web.url}/small").status_code == 202
    wait_until(lambda: a.image.get_image(refused.id).status == "active", 30, "A's retried import")
    assert rss_mb(fair.proc.pid) < 300
