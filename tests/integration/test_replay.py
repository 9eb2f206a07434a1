"""The core's replay rule against a real database: what one process has seen, another refuses."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta

import pytest

from vmimage.bootstrap import build
from vmimage.core.errors import Unauthenticated
from vmimage.core.services.replay import WINDOW, check_date, check_fresh, signature_key
from vmimage.settings import Settings

NOW = datetime(2026, 12, 1, 6, 0, 0)
SIGNATURE = "ab" * 32


@pytest.fixture
def two_processes(tmp_path, database_factory):
    """Two containers (engines, identity, deps) on one database: as two processes of a service
    (SQLite in the data dir, or PostgreSQL with VMIMAGE_TEST_DB=postgres)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_factory())
    first = build(settings)
    second = build(settings, migrate=False)
    yield first, second
    second.close()
    first.close()


def at(container, when: datetime):
    return dataclasses.replace(container.deps, clock=lambda: when)


def test_the_date_must_be_within_the_window():
    deps = type("D", (), {"clock": staticmethod(lambda: NOW)})()
    check_date(deps, NOW - WINDOW)
    check_date(deps, NOW + WINDOW)
    for off in (NOW - WINDOW - timedelta(seconds=1), NOW + WINDOW + timedelta(seconds=1)):
        with pytest.raises(Unauthenticated, match="time"):
            check_date(deps, off)


def test_a_write_signature_is_served_once_by_every_process(two_processes):
    first, second = two_processes
    key = signature_key("jdcloud", SIGNATURE)
    assert key == f"sig:jdcloud:{SIGNATURE}" and len(key) <= 128
    check_fresh(at(first, NOW), NOW, "nonce-0001", key)
    with pytest.raises(Unauthenticated, match="already served"):
        check_fresh(at(second, NOW), NOW, "nonce-0002", key)        # a fresh nonce does not help
    with pytest.raises(Unauthenticated, match="already served"):
        check_fresh(at(first, NOW), NOW, None, key)
    # another dialect's same hex is another key; a read (no key) is not refused
    check_fresh(at(second, NOW), NOW, None, signature_key("huawei_ims", SIGNATURE))
    check_fresh(at(second, NOW), NOW, None, None)
    with first.deps.uow() as uow:
        assert uow.nonces.seen(key) and uow.nonces.seen("nonce-0001") and not uow.nonces.seen("nonce-0002")


def test_a_nonce_is_used_once_by_every_process(two_processes):
    first, second = two_processes
    check_fresh(at(first, NOW), NOW, "nonce-abcdef")
    with pytest.raises(Unauthenticated, match="nonce"):
        check_fresh(at(second, NOW), NOW, "nonce-abcdef")


def test_what_was_seen_is_forgotten_after_twice_the_window(two_processes):
    first, second = two_processes
    key = signature_key("huawei_ims", SIGNATURE)
    check_fresh(at(first, NOW), NOW, None, key)
    later = NOW + 2 * WINDOW + timedelta(seconds=1)
    # by then the request's own date is out of the window: its replay is refused for that
    with pytest.raises(Unauthenticated, match="time"):
        check_fresh(at(second, later), NOW, None, key)
    check_fresh(at(second, later), later, None, signature_key("huawei_ims", "cd" * 32))
    with first.deps.uow() as uow:
        assert not uow.nonces.seen(key)


def test_racing_replays_one_wins(two_processes):
    first, second = two_processes
    key = signature_key("jdcloud", "ef" * 32)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def replay(container) -> None:
        start.wait()
        try:
            check_fresh(at(container, NOW), NOW, None, key)
            outcomes.append("served")
        except Unauthenticated:
            outcomes.append("refused")

    threads = [threading.Thread(target=replay, args=(c,)) for c in (first, second) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["served"]


@pytest.mark.parametrize("nonce", ["short", "x" * 129, "sig:jdcloud:" + SIGNATURE])
def test_odd_nonces_are_refused(two_processes, nonce):
    with pytest.raises(Unauthenticated, match="nonce"):
        check_fresh(at(two_processes[0], NOW), NOW, nonce)


def test_an_overlong_signature_still_fits_the_column():
    key = signature_key("huawei_ims", "a" * 500)
    assert len(key) <= 128 and key.startswith("sig:huawei_ims:sha256:")
