"""Dependencies that can stall — an S3 server, web servers, qemu-img — each within bounds of its own.

A Backend is one such dependency as the service sees it. Its adapter makes every call to it
inside `backend.call()`, which gives the call:

- a slot: at most `slots` calls run at once; the others wait their turn. So a stalled backend
  holds at most `slots` threads in calls, whoever calls.
- a deadline: `stall_seconds` is the time the adapter allows one step of a call (a connect,
  the next bytes of an answer) before failing it; None for a backend without one (qemu-img
  runs under limits of its own). So a slot held by a silent server comes free within it, and
  a wait for a slot ends within it too: with the breaker open, or with a slot.
- a breaker (one for the backend, or one per `key`: a web origin): after `trip_after` outages
  in a row it opens, and every call is refused at once with BackendUnavailable and
  retry_after (the faces' Retry-After) for `retry_seconds`; then one call goes through as a
  probe: an answer closes the breaker (so does any answer), an outage opens it again. The
  breaker is asked before a call waits for a slot and again once it has one. Only
  outages count — calls the adapter marks with `call.failed()`: timeouts, refused
  connections, server errors — never a caller's mistake such as a missing object. A call
  that hit the stall deadline also counts every other call of its breaker then waiting for
  more than half that deadline: they wait on the same silent server, and counting them only
  when they fail in turn would let new calls in, to stall one deadline more.
Listeners added with on_recovery() hear when a breaker closes again (work left undone while
the backend was out can be done now); they run on the caller's thread and must not block.

The face that streams a backend's data waits for a slot of the backend without a thread
(faces/limits.py), with check() and `slots`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vmimage.core.errors import BackendUnavailable, VmImageError

_MAX_BREAKERS = 1024        # keyed breakers kept (web origins); the closed ones go first


@dataclass(frozen=True)
class BackendLimits:
    """The bounds every backend of the service gets (VMIMAGE_BACKEND_* settings)."""
    slots: int = 16                  # calls to one backend at once
    stall_seconds: float = 15.0      # a connect or a read that waits longer fails
    trip_after: int = 5              # outages in a row that open a breaker
    retry_seconds: float = 30.0      # how long an open breaker refuses calls before a probe

    def backend(self, name: str) -> "Backend":
        return Backend(name, self.slots, self.stall_seconds, self.trip_after, self.retry_seconds)


class Call:
    """One call through a backend's gate; the adapter marks an outage with failed()."""

    __slots__ = ("outage", "stalled", "breaker", "started")

    def __init__(self, breaker: "Breaker", started: float) -> None:
        self.outage = self.stalled = False
        self.breaker, self.started = breaker, started

    def failed(self, stalled: bool = False) -> None:
        """An outage; stalled: the backend said nothing until the stall deadline."""
        self.outage, self.stalled = True, stalled


class Breaker:
    """Closed, open (refusing until a time), or half-open (one probe in flight)."""

    def __init__(self, name: str, trip_after: int, retry_seconds: float, clock: Callable[[], float]) -> None:
        self.name, self.trip_after, self.retry_seconds, self.clock = name, max(1, trip_after), retry_seconds, clock
        self._lock = threading.Lock()
        self._outages = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def is_closed(self) -> bool:
        return self._open_until is None

    def _refusal(self) -> BackendUnavailable | None:
        if self._open_until is None:
            return None
        left = self._open_until - self.clock()
        if left <= 0 and not self._probing:
            return None
        wait = max(1, math.ceil(left))
        return BackendUnavailable(f"{self.name} is not answering; calls to it stop for a while; retry in "
                                  f"{wait} s", backend=self.name, retry_after=wait)

    def refusal(self) -> BackendUnavailable | None:
        """What a call gets now: None when it may go through."""
        with self._lock:
            return self._refusal()

    def admit(self) -> bool:
        """Let a call through (True when it is the probe of a half-open breaker), or refuse it."""
        with self._lock:
            refusal = self._refusal()
            if refusal is not None:
                raise refusal
            if self._open_until is None:
                return False
            self._probing = True
            return True

    def record(self, probe: bool, outage: bool | None, presumed: int = 0) -> bool:
        """The end of a call: an outage, an answer, or neither (None: the caller gave up or
        failed on its own); presumed: outages of other calls counted with this one. Whether
        the breaker closed again just now."""
        with self._lock:
            if probe:
                self._probing = False
            if outage is None:
                return False
            if outage:
                self._outages += 1 + presumed
                if probe or self._outages >= self.trip_after:
                    self._open_until = self.clock() + self.retry_seconds
                return False
            self._outages = 0
            reopened, self._open_until = self._open_until is not None, None
            return reopened

    def retry_after(self) -> int | None:
        """Seconds until an open breaker lets a probe through (None when closed)."""
        with self._lock:
            if self._open_until is None:
                return None
            return max(1, math.ceil(self._open_until - self.clock()))


class Backend:
    """One dependency that can stall: its slots, its stall deadline and its breakers (above)."""

    def __init__(self, name: str, slots: int = 16, stall_seconds: float | None = 15.0, trip_after: int = 5,
                 retry_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.slots = max(1, slots)
        self.stall_seconds = stall_seconds
        self.trip_after, self.retry_seconds, self.clock = trip_after, retry_seconds, clock
        self._cond = threading.Condition()
        self._busy = 0
        self._in_flight: set[Call] = set()
        self._breakers: OrderedDict[str | None, Breaker] = OrderedDict()
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    # --- the breakers ---------------------------------------------------------------------

    def breaker(self, key: str | None = None) -> Breaker:
        with self._cond:
            found = self._breakers.get(key)
            if found is None:
                found = Breaker(self.name if key is None else f"{self.name} ({key})", self.trip_after,
                                self.retry_seconds, self.clock)
                self._breakers[key] = found
                if len(self._breakers) > _MAX_BREAKERS:
                    closed = next((k for k, b in self._breakers.items() if b.is_closed and k != key), None)
                    self._breakers.pop(closed if closed is not None else next(iter(self._breakers)))
            else:
                self._breakers.move_to_end(key)
            return found

    def check(self, key: str | None = None) -> None:
        """Refuse at once (BackendUnavailable, retry_after) while the breaker refuses calls;
        for a caller about to queue for a slot. It takes no probe."""
        refusal = self.breaker(key).refusal()
        if refusal is not None:
            raise refusal

    def on_recovery(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # --- the slots ------------------------------------------------------------------------

    def _take_slot(self, call: Call) -> None:
        with self._cond:
            while self._busy >= self.slots:
                self._cond.wait()
            self._busy += 1
            call.started = self.clock()
            self._in_flight.add(call)

    def _give_slot(self, call: Call) -> int:
        """Frees the call's slot; for a stalled call, how many others of its breaker are
        presumed stalled too."""
        with self._cond:
            self._busy -= 1
            self._in_flight.discard(call)
            now = self.clock()
            self._cond.notify()
            if not call.stalled or self.stall_seconds is None:
                return 0
            return sum(1 for other in self._in_flight
                       if other.breaker is call.breaker and now - other.started > self.stall_seconds / 2)

    @property
    def busy(self) -> int:
        return self._busy

    # --- a call ---------------------------------------------------------------------------

    @contextmanager
    def call(self, key: str | None = None) -> Iterator[Call]:
        """One call to the backend (key: whose breaker, None for the backend's own)."""
        breaker = self.breaker(key)
        refusal = breaker.refusal()
        if refusal is not None:
            raise refusal
        call = Call(breaker, self.clock())
        self._take_slot(call)
        try:
            probe = breaker.admit()      # again: it may have opened while the call waited
        except BaseException:
            self._give_slot(call)
            raise
        outcome: bool | None = None
        failure: VmImageError | None = None
        try:
            yield call
            outcome = call.outage
        except VmImageError as exc:
            outcome, failure = call.outage, exc    # the backend answered (a missing object...) unless marked
            raise
        except BaseException:
            outcome = True if call.outage else None
            raise
        finally:
            presumed = self._give_slot(call)
            if breaker.record(probe, outcome, presumed):
                for listener in list(self._listeners):
                    listener()
            if outcome and isinstance(failure, BackendUnavailable):
                wait = breaker.retry_after()      # the outage opened the breaker (or it was open)
                if wait is not None:
                    failure.fields.setdefault("retry_after", wait)
