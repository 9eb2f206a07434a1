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


def test_a_caller_waits_for_a_slot_while_the_backend_makes_progress():
    backend = Backend("S3 store 'obj'", slots=1, stall_seconds=0.5)
    held = threading.Event()
    release = threading.Event()

    def busy(seconds: float) -> None:
        with backend.call():
            held.set()
            release.wait(seconds)

    worker = threading.Thread(target=busy, args=(0.3,))
    worker.start()
    held.wait()
    started = time.monotonic()
    with backend.call():                 # the slot comes free within the deadline
        assert backend.busy == 1
    assert time.monotonic() - started < 0.5
    worker.join()


def test_a_wait_for_a_slot_ends_when_every_call_has_stalled():
    backend = Backend("S3 store 'obj'", slots=2, stall_seconds=0.4)
    release = threading.Event()
    held = threading.Barrier(3)

    def stalled() -> None:
        with backend.call():
            held.wait()
            release.wait(10)

    workers = [threading.Thread(target=stalled) for _ in range(2)]
    for w in workers:
        w.start()
    held.wait()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as refused:
        with backend.call():
            pass
    waited = time.monotonic() - started
    assert 0.3 < waited < 2, waited
    assert refused.value.fields["retry_after"] >= 1 and "all 2" in refused.value.message
    release.set()
    for w in workers:
        w.join()
    with backend.call():                 # free again
        pass


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
