"""The brake on password guessing, counted in the database so it holds across processes.

Two counters: per user (consecutive failures; from the 10th on, each failure blocks the user
for a back-off doubling from 1 s and capped at 60 s; a success resets it) and per client
address (failures within a one-minute window; from the 100th, the address is blocked until
the window ends). A user is counted by the name given, whether it exists or not, so the
brake tells nothing about which users exist. Blocked attempts are refused before any
password is checked, with the seconds to wait. Each attempt is counted as a failure before
its password is checked, so that concurrent guesses are all counted; a success takes it back
(`taken_back`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

USER_FAILURES_BEFORE_BACKOFF = 10
ADDRESS_FAILURES_PER_MINUTE = 100
WINDOW = timedelta(minutes=1)
MAX_BACKOFF_SECONDS = 60


@dataclass
class Failures:
    subject: str                 # user_subject() or address_subject()
    failures: int
    window_start: datetime
    blocked_until: datetime | None = None


def user_subject(domain_id: str | None, name: str) -> str:
    return f"user:{domain_id or ''}/{name}"[:300]


def address_subject(address: str) -> str:
    return f"addr:{address}"[:300]


def backoff_seconds(failures: int) -> int:
    """The block after the n-th consecutive failure of a user: 0 before the 10th."""
    if failures < USER_FAILURES_BEFORE_BACKOFF:
        return 0
    return min(MAX_BACKOFF_SECONDS, 2 ** min(failures - USER_FAILURES_BEFORE_BACKOFF, 16))


def after_failure(record: Failures | None, subject: str, now: datetime) -> Failures:
    """The counter after one more failure."""
    if subject.startswith("addr:"):
        if record is None or now - record.window_start >= WINDOW:
            record = Failures(subject, 0, now)
        record.failures += 1
        if record.failures >= ADDRESS_FAILURES_PER_MINUTE:
            record.blocked_until = record.window_start + WINDOW
        return record
    record = record or Failures(subject, 0, now)
    record.failures += 1
    wait = backoff_seconds(record.failures)
    record.blocked_until = now + timedelta(seconds=wait) if wait else None
    return record


def blocked_from(record: Failures, now: datetime) -> Failures:
    """A user's block once the failure it was counted for is known: its back-off from now."""
    wait = backoff_seconds(record.failures)
    if wait and record.blocked_until is not None:
        record.blocked_until = max(record.blocked_until, now + timedelta(seconds=wait))
    return record


def taken_back(record: Failures) -> Failures:
    """An address's counter once a login counted against it succeeded."""
    record.failures = max(0, record.failures - 1)
    if record.failures < ADDRESS_FAILURES_PER_MINUTE:
        record.blocked_until = None
    return record


def retry_after(record: Failures | None, now: datetime) -> int | None:
    """Seconds until the subject may try again, or None when it may now."""
    if record is None or record.blocked_until is None or record.blocked_until <= now:
        return None
    return max(1, math.ceil((record.blocked_until - now).total_seconds()))
