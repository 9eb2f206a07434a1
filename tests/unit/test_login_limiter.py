"""The failed-login brake's rules: when a user or an address is blocked, and for how long."""

from __future__ import annotations

from datetime import datetime, timedelta

from vmimage.identity.limiter import (address_subject, after_failure, backoff_seconds, retry_after,
                                      user_subject)

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
