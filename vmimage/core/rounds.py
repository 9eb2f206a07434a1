"""A thread of a serving process that works in rounds (the reaper, the S3 upload janitor)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("vmimage")


class RoundsThread:
    """Runs `next_round()` on a thread of its own until stopped; it returns how long to wait
    before the next round, which wake() starts at once. A round that fails is logged and the
    next one comes after `after_failure` seconds: the thread keeps going."""

    def __init__(self, name: str, after_failure: float) -> None:
        self.name, self.after_failure = name, after_failure
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_round(self) -> float:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()            # a wake-up during the round makes another one at once
            try:
                wait = self.next_round()
            except Exception:  # noqa: BLE001 - the thread must keep going (a database or store hiccup)
                log.exception("%s: the round failed", self.name)
                wait = self.after_failure
            if wait > 0:
                self._wake.wait(wait)
