"""A backend's gate (core/backends.py): the breaker, the slots and the stall deadline."""

from __future__ import annotations

import threading
import time

import pytest

from vmimage.core.backends import Backend
from vmimage.core.errors import BackendUnavailable, NotFound


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage(backend: Backend, key: str | None = None) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as failed:
        with backend.call(key) as call:
            call.failed()
            raise BackendUnavailable("no answer")
    return failed.value


def test_outages_in_a_row_open_the_breaker_then_one_probe_closes_it():
    clock = Clock()
    backend = Backend("S3 store 'obj'", trip_after=3, retry_seconds=30, clock=clock)
    recovered = []
    backend.on_recovery(lambda: recovered.append(clock.now))
    assert "retry_after" not in outage(backend).fields
    assert "retry_after" not in outage(backend).fields
    assert outage(backend).fields["retry_after"] == 30        # the third one opens it: when to come back
    with pytest.raises(BackendUnavailable) as refused:          # refused at once, nothing called
        with backend.call():
            pytest.fail("an open breaker let a call through")
    assert refused.value.fields["retry_after"] == 30 and "S3 store 'obj'" in refused.value.message
    clock.now += 20
    with pytest.raises(BackendUnavailable) as refused:
        backend.check()
    assert refused.value.fields["retry_after"] == 10
    clock.now += 10                                             # half-open: one probe goes through
    backend.check()
    probe = backend.call()
    probe.__enter__()
    with pytest.raises(BackendUnavailable):                     # not two
        with backend.call():
            pass
    probe.__exit__(None, None, None)                            # it answered
    assert recovered == [clock.now]
    with backend.call():
        pass
    assert recovered == [clock.now]                             # told once


def test_a_failed_probe_opens_the_breaker_again():
    clock = Clock()
    backend = Backend("web server", trip_after=1, retry_seconds=5, clock=clock)
    outage(backend)
    clock.now += 5
    assert outage(backend).fields["retry_after"] == 5
    with pytest.raises(BackendUnavailable):
        backend.check()


def test_answers_that_refuse_the_caller_are_no_outage():
    backend = Backend("S3 store 'obj'", trip_after=2)
    outage(backend)
    for _ in range(3):
        with pytest.raises(NotFound):
            with backend.call():
                raise NotFound("no such object")         # S3 answered: it works
        outage(backend)                                   # so the outages are not in a row
    backend.check()


def test_a_caller_that_gives_up_does_not_settle_the_probe():
    clock = Clock()
    backend = Backend("S3 store 'obj'", trip_after=1, retry_seconds=5, clock=clock)
    outage(backend)
    clock.now += 5
    with pytest.raises(KeyboardInterrupt):
        with backend.call():
            raise KeyboardInterrupt
    with backend.call():          # the next call is the probe
        pass
    backend.check()


def test_each_key_has_its_own_breaker():
    backend = Backend("web server", trip_after=1)
    outage(backend, "http://slow.example:80")
    with pytest.raises(BackendUnavailable) as refused:
        backend.check("http://slow.example:80")
    assert "http://slow.example:80" in refused.value.message
    backend.check("http://fine.example:80")
    backend.check()


def test_a_caller_waits_for_a_slot_and_is_refused_if_the_breaker_opened_meanwhile():
    backend = Backend("S3 store 'obj'", slots=1, trip_after=1, retry_seconds=30)
    held = threading.Event()
    release = threading.Event()

    def stalled() -> None:
        with pytest.raises(BackendUnavailable):
            with backend.call() as call:
                held.set()
                release.wait(10)
                call.failed(stalled=True)
                raise BackendUnavailable("no answer")

    worker = threading.Thread(target=stalled)
    worker.start()
    held.wait()
    outcome = []

    def waiting() -> None:
        try:
            with backend.call():
                outcome.append("called")
        except BackendUnavailable as exc:
            outcome.append(exc.fields.get("retry_after"))

    waiter = threading.Thread(target=waiting)
    waiter.start()
    time.sleep(0.2)
    assert outcome == [] and backend.busy == 1      # waiting its turn
    release.set()                                   # the slot comes free, with an outage
    worker.join()
    waiter.join()
    assert outcome == [30]                          # refused then, not let through to stall
    assert backend.busy == 0


def test_slots_bound_the_calls_at_once():
    backend = Backend("S3 store 'obj'", slots=3)
    most, lock = [0], threading.Lock()
    inside = [0]

    def one() -> None:
        with backend.call():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    workers = [threading.Thread(target=one) for _ in range(12)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert most[0] == 3 and backend.busy == 0


def test_without_a_stall_deadline_a_caller_waits_its_turn():
    backend = Backend("qemu-img", slots=1, stall_seconds=None)
    order = []
    held = threading.Event()

    def long_job() -> None:
        with backend.call():
            held.set()
            time.sleep(0.3)
            order.append("long")

    worker = threading.Thread(target=long_job)
    worker.start()
    held.wait()
    with backend.call():
        order.append("next")
    worker.join()
    assert order == ["long", "next"]




@pytest.mark.parametrize("trip_after, opens", [(5, True), (6, False)])
def test_a_stall_counts_the_calls_waiting_as_long_on_the_same_server(trip_after, opens):
    clock = Clock()
    backend = Backend("S3 store 'obj'", slots=8, stall_seconds=10, trip_after=trip_after, clock=clock)
    open_calls = [backend.call() for _ in range(4)]     # sent at once to a server that went silent
    open_calls.append(backend.call("http://other:80"))  # another breaker's: not counted
    for call in open_calls:
        call.__enter__()
    clock.now += 7
    open_calls.append(backend.call())   # sent 3 s ago: not presumed stalled yet
    open_calls[-1].__enter__()
    clock.now += 3
    with pytest.raises(BackendUnavailable):
        with backend.call() as call:    # one times out: it and the four count, 5 outages
            call.failed(stalled=True)
            raise BackendUnavailable("no answer within 10 s")
    if opens:
        with pytest.raises(BackendUnavailable):
            backend.check()
    else:
        backend.check()
    backend.check("http://other:80")

def test_one_stall_alone_does_not_open_the_breaker():
    backend = Backend("S3 store 'obj'", stall_seconds=10, trip_after=5)
    with pytest.raises(BackendUnavailable) as failed:
        with backend.call() as call:
            call.failed(stalled=True)
            raise BackendUnavailable("no answer within 10 s")
    assert "retry_after" not in failed.value.fields
    backend.check()
