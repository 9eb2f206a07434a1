"""The failed-login brake's rules: when a user or an address is blocked, and for how long."""

from __future__ import annotations

from datetime import datetime, timedelta

from vmimage.identity.limiter import (address_subject, after_failure, backoff_seconds, blocked_from, retry_after,
                                      taken_back, user_subject)

T0 = datetime(2026, 12, 1, 6, 0, 0)


def test_a_user_is_braked_from_the_tenth_consecutive_failure_and_never_beyond_a_minute():
    assert [backoff_seconds(n) for n in range(1, 10)] == [0] * 9
    assert [backoff_seconds(n) for n in range(10, 18)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_seconds(10 ** 6) == 60
    record, subject = None, user_subject("default", "victim")
    for n in range(1, 10):
        record = after_failure(record, subject, T0)
        assert retry_after(record, T0) is None, n
    record = after_failure(record, subject, T0)
    assert retry_after(record, T0) == 1 and retry_after(record, T0 + timedelta(seconds=1)) is None
    for _ in range(100):
        record = after_failure(record, subject, T0)
    assert retry_after(record, T0) == 60 and retry_after(record, T0 + timedelta(seconds=60)) is None


def test_an_address_is_braked_from_its_hundredth_failure_in_a_minute_until_the_minute_ends():
    record, subject = None, address_subject("192.0.2.7")
    for n in range(99):
        record = after_failure(record, subject, T0 + timedelta(milliseconds=n))
    assert retry_after(record, T0 + timedelta(seconds=1)) is None
    record = after_failure(record, subject, T0 + timedelta(seconds=1))
    assert retry_after(record, T0 + timedelta(seconds=1)) == 59
    assert retry_after(record, T0 + timedelta(seconds=60)) is None
    # A new minute starts a new count.
    record = after_failure(record, subject, T0 + timedelta(seconds=61))
    assert record.failures == 1 and retry_after(record, T0 + timedelta(seconds=61)) is None


def test_failures_spread_over_minutes_never_brake_an_address():
    record, subject = None, address_subject("192.0.2.8")
    for n in range(300):
        record = after_failure(record, subject, T0 + timedelta(seconds=n * 0.7))
        assert retry_after(record, T0 + timedelta(seconds=n * 0.7)) is None
    assert record.failures < 100


def test_a_success_takes_back_the_attempt_counted_against_its_address():
    record, subject = None, address_subject("192.0.2.9")
    for n in range(100):
        record = after_failure(record, subject, T0)
    assert retry_after(record, T0) == 60
    # The hundredth attempt, counted before its hash, had the right password: no brake.
    record = taken_back(record)
    assert record.failures == 99 and retry_after(record, T0) is None
    assert taken_back(after_failure(None, subject, T0)).failures == 0


def test_a_users_block_runs_from_when_the_failure_is_known():
    record, subject = None, user_subject("default", "victim")
    for n in range(10):
        record = after_failure(record, subject, T0)     # the tenth counted at T0, before its hash
    later = T0 + timedelta(milliseconds=400)            # its hash done: a failure
    record = blocked_from(record, later)
    assert retry_after(record, later + timedelta(milliseconds=900)) == 1
    assert retry_after(record, later + timedelta(seconds=1)) is None
    # Never shorter than the block it had, and nothing for a user not blocked.
    assert blocked_from(record, T0).blocked_until == later + timedelta(seconds=1)
    assert blocked_from(after_failure(None, subject, T0), later).blocked_until is None
