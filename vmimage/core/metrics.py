"""What the service counts for its operators (GET /metrics), as a port.

The core, the shared face helpers and the adapters tell `meter()` what happened; the adapter
installed at start (adapters/metrics) turns it into Prometheus metrics. Until one is
installed (the CLI's local commands, unit tests) nothing is counted. The meter is process-wide
on purpose: metrics belong to the serving process, whichever container or face saw the event.

Labels never carry a project, user or image id, nor a raw path: `route` is the route's
template, `face` the face's name, `store` the store's configured name.
"""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def request(self, face: str, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered by a face (route: its template, or UNMATCHED)."""
    def uploaded(self, face: str, size: int) -> None:
        """Image data received in a request body."""
    def downloaded(self, face: str, size: int) -> None:
        """Image data sent in a response body."""
    def job_finished(self, kind: str, status: str, seconds: float) -> None:
        """A job ended (status: its final status), having run this long."""
    def store_error(self, store: str, operation: str) -> None:
        """A call to a store failed on the store's side (an outage, not a missing object)."""
    def login_failure(self, face: str) -> None: ...
    def signature_failure(self, face: str) -> None: ...


UNMATCHED = "unmatched"     # the route label of a request no route of its face matched


class _Nothing:
    def request(self, face: str, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def uploaded(self, face: str, size: int) -> None:
        pass

    def downloaded(self, face: str, size: int) -> None:
        pass

    def job_finished(self, kind: str, status: str, seconds: float) -> None:
        pass

    def store_error(self, store: str, operation: str) -> None:
        pass

    def login_failure(self, face: str) -> None:
        pass

    def signature_failure(self, face: str) -> None:
        pass


_installed: Meter = _Nothing()


def meter() -> Meter:
    return _installed


def install(new: Meter) -> None:
    global _installed
    _installed = new
