"""Deleted images' data goes by the reaper, never on the request's thread, never lost (issue 19,
item 2, and "no orphaned data"); against a real Swift s3api behind the switchable proxy.

- 45 deletes of one project while S3 hangs answer 204 at once (before: each held a shared-pool
  thread up to the stall deadline, then answered 503 for an image already gone), another
  project's list keeps its pace, and the bytes leave Swift once it answers again.
- A server killed after the deletes, before the reaping, leaves the records; the restarted
  server reaps them.
- Two processes on one PostgreSQL database share the records, every one reaped.
"""

from __future__ import annotations

import functools
import os
import signal
import time
import uuid

import httpx
import pytest

from tests.api.test_hostile_backends import (RETRY_SECONDS, STALL_SECONDS, eventually, other_project_round,
                                             others_while, proxied_env, swift_proxy)
from tests.api.test_import import OCTET, new_image
from tests.backend_proxy import DOWN, FORWARD, STALL
from tests.conftest import start_server

DELETES = 45
# Once S3 answers: a probe after the breaker's wait, a stalled call or two, and back-off.
REAP_DEADLINE = 3 * RETRY_SECONDS + 3 * STALL_SECONDS + 30


def stored_objects(srv) -> set[str]:
    found = srv.s3.list_objects_v2(Bucket=srv.bucket, Prefix="imgs/").get("Contents", [])
    return {o["Key"].removeprefix("imgs/") for o in found}


def images_with_data(c: httpx.Client, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        image_id = new_image(c)
        assert c.put(f"/v2/images/{image_id}/file", content=os.urandom(20_000), headers=OCTET).status_code == 204
        ids.append(image_id)
    return ids


@pytest.fixture
def s3_server(tmp_path, database_factory, swift_s3):
    """A server whose only store is S3 behind a switchable proxy (restartable: srv.restart())."""
    proxy = swift_proxy(swift_s3)
    bucket = f"vmimage-{uuid.uuid4().hex[:8]}"
    env = proxied_env(swift_s3, proxy, bucket)
    db = database_factory()
    servers = []

    def start(data_dir=None):
        srv = start_server(tmp_path, db, provision=data_dir is None, data_dir=data_dir, **env)
        srv.proxy, srv.bucket, srv.s3, srv.db = proxy, bucket, swift_s3.client(), db
        servers.append(srv)
        return srv
    srv = start()
    srv.start = start
    yield srv
    for s in servers:
        s.stop()
    proxy.close()


def test_deletes_while_s3_hangs_answer_at_once_and_the_bytes_go_once_it_answers(s3_server):
    srv = s3_server
    c = srv.client()
    ids = images_with_data(c, DELETES)
    assert stored_objects(srv) >= set(ids)
    quiet = [other_project_round(srv) for _ in range(5)]
    quiet_list = max(r["list"] for r in quiet)

    srv.proxy.set(STALL)
    deletes = httpx.Client(base_url=srv.url, headers={"X-Auth-Token": srv.token()}, timeout=60,
                           limits=httpx.Limits(max_connections=DELETES))
    results: list[tuple[int, float]] = []

    def delete(image_id: str) -> None:
        started = time.monotonic()
        resp = deletes.delete(f"/v2/images/{image_id}")
        results.append((resp.status_code, time.monotonic() - started))

    during = others_while(srv, [functools.partial(delete, image_id) for image_id in ids], at_least=5)
    deletes.close()

    # Every delete answered 204 well within the stall deadline: none waited on S3.
    assert sorted(status for status, _ in results) == [204] * DELETES
    assert max(seconds for _, seconds in results) < STALL_SECONDS, sorted(s for _, s in results)
    worst = max(r["list"] for r in during)
    assert worst < max(1.0, 5 * quiet_list), (quiet_list, [r["list"] for r in during])
    for image_id in ids[:3]:
        assert c.get(f"/v2/images/{image_id}").status_code == 404
    time.sleep(STALL_SECONDS + 1)        # the reaper has met the stalled server by now
    assert stored_objects(srv) >= set(ids), "bytes deleted while S3 did not answer?"

    srv.proxy.set(FORWARD)
    eventually(lambda: not stored_objects(srv) & set(ids), REAP_DEADLINE, "deleted images' bytes left in S3")


def test_a_server_killed_before_the_reaping_leaves_records_the_restarted_one_reaps(s3_server):
    srv = s3_server
    c = srv.client()
    ids = images_with_data(c, 5)
    srv.proxy.set(DOWN)
    for image_id in ids:
        assert c.delete(f"/v2/images/{image_id}").status_code == 204
    time.sleep(1)                         # the reaper tries, S3 refuses
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv.proxy.set(FORWARD)
    assert stored_objects(srv) >= set(ids)      # nothing reaped before the kill

    srv = srv.start(srv.data_dir)
    eventually(lambda: not stored_objects(srv) & set(ids), REAP_DEADLINE, "the restarted server reaped nothing")


def test_two_processes_reap_every_record(s3_server):
    srv = s3_server
    if srv.db is None:
        pytest.skip("several processes share a database on PostgreSQL only")
    other = srv.start(srv.data_dir)       # a second process on the same database and store
    c = srv.client()
    ids = images_with_data(c, 20)
    srv.proxy.set(DOWN)                   # both reapers find records they cannot reap yet
    for image_id in ids:
        assert c.delete(f"/v2/images/{image_id}").status_code == 204
    time.sleep(2)
    assert stored_objects(srv) >= set(ids)
    srv.proxy.set(FORWARD)
    eventually(lambda: not stored_objects(srv) & set(ids), REAP_DEADLINE, "bytes left in S3")
    assert other.proc.poll() is None
