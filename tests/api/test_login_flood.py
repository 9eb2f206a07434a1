"""Concurrent password guesses against a real server: each check costs 16 MiB of scrypt, so
they run a few at a time on threads of their own, the excess waits in line and is then
refused (429), every attempt is counted by the brake before its hash, and other clients
keep their latency."""

from __future__ import annotations

import base64
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest

from tests.conftest import auth_body, start_server
from vmimage.bootstrap import build
from vmimage.identity.limiter import Failures, address_subject
from vmimage.settings import Settings

TOKENS = "/identity/v3/auth/tokens"
FLOOD = 48      # concurrent wrong logins from one address: below its brake of 100 a minute


def proc_kib(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def keystone_login(url: str, user: str, password: str, project: str = "demo") -> httpx.Response:
    return httpx.post(url + TOKENS, json=auth_body(user, password, project), timeout=60)


def aries_login(url: str, user: str, password: str) -> httpx.Response:
    creds = base64.b64encode(f"{user}:{password}".encode()).decode()
    return httpx.get(f"{url}/aries/api/v1/image/list", headers={"Authorization": f"Basic {creds}"}, timeout=60)


def all_at_once(attempts: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Every attempt on its own thread, released together."""
    start = threading.Barrier(len(attempts))

    def run(attempt: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return attempt()

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(run, attempts))


def list_latencies(url: str, token: str, n: int, pause: float = 0.0) -> list[float]:
    """Another project's Glance image list, n times on one keep-alive connection."""
    took = []
    with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as http:
        for _ in range(n):
            started = time.perf_counter()
            assert http.get("/v2/images").status_code == 200
            took.append(time.perf_counter() - started)
            time.sleep(pause)
    return took


@pytest.fixture
def fresh(tmp_path, database_factory):
    srv = start_server(tmp_path, database_factory())
    yield srv
    srv.stop()


def test_a_flood_of_wrong_logins_costs_bounded_memory_and_others_keep_their_latency(fresh):
    srv = fresh
    token = srv.token("alt")
    for _ in range(3):      # every code path warm: logins (right and wrong), lists
        keystone_login(srv.url, "demo", "demo")
        keystone_login(srv.url, "nobody", "wrong")
    quiet = list_latencies(srv.url, token, 40)
    pid = srv.proc.pid
    peak_before = proc_kib(pid, "VmHWM")

    flood_done = threading.Event()
    under_attack: list[float] = []

    def other_client() -> None:
        while not flood_done.is_set():
            under_attack.extend(list_latencies(srv.url, token, 5, pause=0.02))

    watcher = threading.Thread(target=other_client)
    watcher.start()
    started = time.monotonic()
    try:
        answers = all_at_once([lambda i=i: keystone_login(srv.url, f"guess-{i}", "wrong") for i in range(FLOOD)])
    finally:
        flood_done.set()
        watcher.join()
    took = time.monotonic() - started

    # Checked two at a time (a 401 each); those still in line after the wait refused (429).
    codes = [a.status_code for a in answers]
    assert set(codes) <= {401, 429} and 401 in codes, codes
    grew_mib = (proc_kib(pid, "VmHWM") - peak_before) / 1024
    q50, a50 = statistics.median(quiet), statistics.median(under_attack)
    print(f"\n{FLOOD} wrong logins in {took:.1f} s; peak RSS grew {grew_mib:.0f} MiB; other project's list "
          f"p50 {q50 * 1000:.1f} ms quiet, {a50 * 1000:.1f} ms under the flood "
          f"(max {max(under_attack) * 1000:.0f} ms, {len(under_attack)} lists)")
    # Unbounded, the flood took 313 MiB (48 hashes of 16 MiB at once); two at a time take 32.
    assert grew_mib < 100
    # Unbounded, others' lists went from 4 to 185 ms; a bound several times the quiet median.
    assert a50 < max(5 * q50, 0.05), (q50, a50)
    assert keystone_login(srv.url, "demo", "demo").status_code == 201


def test_logins_beyond_the_line_are_refused_with_retry_after_in_each_face(tmp_path, database_factory):
    wait = 0.5
    srv = start_server(tmp_path, database_factory(), VMIMAGE_PASSWORD_CHECK_WAIT_SECONDS=str(wait))
    try:
        half = FLOOD // 2
        started = time.monotonic()
        answers = all_at_once([lambda i=i: keystone_login(srv.url, f"k-{i}", "wrong") for i in range(half)]
                              + [lambda i=i: aries_login(srv.url, f"a-{i}", "wrong") for i in range(half)])
        took = time.monotonic() - started
        keystone, aries = answers[:half], answers[half:]
        codes = [a.status_code for a in answers]
        assert set(codes) <= {401, 429} and 401 in codes, codes
        # Two checks at a time, 80 ms each or more: a dozen at most fit in the wait.
        for face in (keystone, aries):
            assert sum(a.status_code == 429 for a in face) >= half // 3, [a.status_code for a in face]
        for refused in (a for a in keystone if a.status_code == 429):
            assert refused.json()["error"]["code"] == 429 and "try again" in refused.json()["error"]["message"]
            assert int(refused.headers["Retry-After"]) >= 1
        for refused in (a for a in aries if a.status_code == 429):
            assert refused.json()["code"] == "TooManyRequests"
            assert int(refused.headers["Retry-After"]) >= 1
        # Refused once the wait is over (not held until a turn comes), in each face.
        waited = [a.elapsed.total_seconds() for a in answers if a.status_code == 429]
        print(f"\nflood of {FLOOD} over in {took:.1f} s; refusals after {min(waited):.2f}-{max(waited):.2f} s")
        assert min(waited) >= 0.9 * wait and max(waited) < wait + 5, waited
        # The line is free again: the right password gets in through both faces.
        assert keystone_login(srv.url, "demo", "demo").status_code == 201
        assert aries_login(srv.url, "demo", "demo").status_code == 200
    finally:
        srv.stop()


def test_concurrent_guesses_are_all_counted_across_processes(tmp_path, database_factory):
    """Counted before the hash: an address 90 failures into its minute sends 20 guesses at
    once through two processes; the brake (100 a minute) lets exactly ten be checked. (Counted
    after the hash, all twenty passed the check before any was counted.)"""
    db = database_factory()
    patient = {"VMIMAGE_PASSWORD_CHECK_WAIT_SECONDS": "120"}     # no refusal for a long line here
    first = start_server(tmp_path, db, **patient)
    second = start_server(tmp_path, db, provision=False, data_dir=first.data_dir, **patient)
    try:
        spent = Failures(address_subject("127.0.0.1"), 90, datetime.now(timezone.utc).replace(tzinfo=None))
        container = build(Settings(data_dir=first.data_dir, database_url=db), migrate=False)
        try:
            with container.deps.uow(write=True) as uow:
                uow.identity.save_failures(spent, new=True)
                uow.commit()
        finally:
            container.close()
        answers = all_at_once([lambda i=i, srv=srv: keystone_login(srv.url, f"guess-{i}", "wrong")
                               for i in range(10) for srv in (first, second)])
        codes = sorted(a.status_code for a in answers)
        assert codes == [401] * 10 + [429] * 10, codes
        for braked in (a for a in answers if a.status_code == 429):
            assert 1 <= int(braked.headers["Retry-After"]) <= 60
            assert braked.json()["error"]["message"] == "Too many failed logins; try again later"
    finally:
        second.stop()
        first.stop()
