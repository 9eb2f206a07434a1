"""How many uploads and stages one project may run at once (in this process).

An upload holds a connection and a thread for as long as its client sends; a project that
opens many and stalls them must not take the service from everyone else. The excess is
refused at once with TooManyRequests (retry_after seconds), before any data is read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from vmimage.core.errors import TooManyRequests

RETRY_AFTER_SECONDS = 5


class UploadSlots:
    """At most `per_project` concurrent uploads per project; a negative limit: no limit."""

    def __init__(self, per_project: int = 8) -> None:
        self.per_project = per_project
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, project_id: str) -> Iterator[None]:
        with self._lock:
            held = self._held.get(project_id, 0)
            if 0 <= self.per_project <= held:
                raise TooManyRequests(f"Project has {held} uploads in progress, the most allowed at once; "
                                f"retry later", retry_after=RETRY_AFTER_SECONDS, limit=self.per_project)
            self._held[project_id] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held[project_id] - 1
                if left:
                    self._held[project_id] = left
                else:
                    del self._held[project_id]

    def held(self, project_id: str) -> int:
        with self._lock:
            return self._held.get(project_id, 0)
