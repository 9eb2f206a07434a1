"""Asynchronous jobs: persisted, claimed by one worker, never left RUNNING forever."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vmimage.core.errors import InvalidTransition


class JobStatus(enum.StrEnum):
    INIT = "INIT"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.INIT: frozenset({JobStatus.RUNNING, JobStatus.FAIL}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCESS, JobStatus.FAIL}),
    JobStatus.SUCCESS: frozenset(),
    JobStatus.FAIL: frozenset(),
}


@dataclass
class Job:
    id: str
    kind: str
    project_id: str
    payload: dict[str, Any] = field(default_factory=dict)     # what the handler needs
    status: JobStatus = JobStatus.INIT
    progress: int = 0
    attempts: int = 0            # how many times a worker claimed it (1 when all went well)
    entities: dict[str, Any] = field(default_factory=dict)    # what it produced (image ids, ...)
    error_code: str | None = None
    fail_reason: str | None = None
    worker: str | None = None
    heartbeat_at: datetime | None = None
    created_at: datetime | None = None
    begin_time: datetime | None = None
    end_time: datetime | None = None
    image_id: str | None = None    # the image the job works on, if any

    def move_to(self, target: JobStatus) -> None:
        if target not in JOB_TRANSITIONS[self.status]:
            raise InvalidTransition("job", self.status.value, target.value)
        self.status = target


def new_job_id() -> str:
    return uuid.uuid4().hex
