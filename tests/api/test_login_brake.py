"""Password guessing: no timing difference between users that exist and users that do not,
and a brake shared through the database (Keystone and Aries Basic)."""

from __future__ import annotations

import base64
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import auth_body, start_server

TOKENS = "/identity/v3/auth/tokens"


@pytest.fixture
def pair(tmp_path, database_factory):
    """Two processes on one database."""
    db = database_factory()
    first = start_server(tmp_path, db)
    second = start_server(tmp_path, db, provision=False, data_dir=first.data_dir)
    yield first, second
    second.stop()
    first.stop()


def login(srv, user: str, password: str, project: str = "demo") -> httpx.Response:
    return httpx.post(srv.url + TOKENS, json=auth_body(user, password, project), timeout=60)


def basic(srv, user: str, password: str) -> httpx.Response:
    creds = base64.b64encode(f"{user}:{password}".encode()).decode()
    return httpx.get(f"{srv.url}/aries/api/v1/image/list", headers={"Authorization": f"Basic {creds}"}, timeout=60)


def test_an_unknown_user_costs_what_a_wrong_password_costs(pair):
    srv = pair[0]
    srv.admin_cli("user", "create", "timed", "--project", "demo", "--role", "member", "--password", "right")
    login(srv, "warm-up", "x")
    known, unknown = [], []
    for i in range(7):
        for user, times in (("timed", known), (f"nobody-{i}", unknown)):
            started = time.perf_counter()
            assert login(srv, user, "wrong").status_code == 401
            times.append(time.perf_counter() - started)
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"wrong password: known user {k * 1000:.1f} ms, unknown user {u * 1000:.1f} ms")
    assert u > 0.6 * k and k > 0.6 * u


def test_a_guessed_user_is_braked_across_processes_and_lets_the_right_password_in_within_a_minute(pair):
    first, second = pair
    first.admin_cli("user", "create", "victim", "--project", "demo", "--role", "member", "--password", "right")
    statuses = []
    while 429 not in statuses:
        statuses.append(login(first, "victim", f"guess-{len(statuses)}").status_code)
        assert len(statuses) <= 13, statuses
    assert statuses[:10] == [401] * 10, statuses      # braked from the 10th failure, not before
    # The other process refuses too, the right password included, in each face's envelope.
    refused = login(second, "victim", "right")
    assert refused.status_code == 429, refused.text
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60 and refused.json()["error"]["code"] == 429
    aries = basic(second, "victim", "right")
    assert aries.status_code == 429 and aries.json()["code"] == "TooManyRequests"
    assert 1 <= int(aries.headers["Retry-After"]) <= 60
    assert login(second, "other-user", "wrong").status_code == 401     # others are not braked
    time.sleep(wait + 0.5)
    assert login(second, "victim", "right").status_code == 201
    assert login(first, "victim", "wrong").status_code == 401          # a success reset the count
    assert basic(first, "victim", "right").status_code == 200


def test_an_address_is_braked_after_a_hundred_failures_in_a_minute(tmp_path, database_factory):
    # The password checks' own line (two at once, 5 s of waiting, then 429) is not what this
    # test is about: on a loaded machine 100 checks could outwait it, so it waits a minute here.
    srv = start_server(tmp_path, database_factory(), VMIMAGE_PASSWORD_CHECK_WAIT_SECONDS="60")
    try:
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda i: login(srv, f"spray-{i}", "wrong").status_code, range(100)))
        assert codes == [401] * 100
        refused = login(srv, "demo", "demo")     # a user with no failures: the address is braked
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert basic(srv, "demo", "demo").status_code == 429
    finally:
        srv.stop()
