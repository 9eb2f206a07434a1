"""Asynchronous jobs: persisted, claimed by one worker, never left RUNNING forever."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vmimage.core.errors import InvalidTransition
from vmimage.core.paging import PageRequest


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


@dataclass
class JobQuery:
    """Which jobs a list shows, newest first (or oldest), and which page of them."""
    project_id: str | None = None            # None: every project's (the use case sets it)
    kinds: tuple[str, ...] | None = None
    ids: list[str] | None = None
    statuses: list[JobStatus] | None = None
    oldest_first: bool = False
    page: PageRequest = field(default_factory=PageRequest)   # a marker is a job id


def new_job_id() -> str:
    return uuid.uuid4().hex


# A part of a job: one image of a job that makes several, with a status of its own. Parts
# are real job rows (their ids resolve like any job's) that the queue never hands out: the
# parent's worker moves them as it goes, and the parent's end ends the parts left open.
PART_KIND = "part"


def new_part(parent: Job, image_id: str) -> Job:
    return Job(new_job_id(), PART_KIND, parent.project_id, payload={"parent": parent.id},
               entities={"image_ids": [image_id]}, created_at=parent.created_at, image_id=image_id)


def end_part(part: Job, parent: Job) -> None:
    """A part still open when its parent ends ends the same way."""
    if part.status in (JobStatus.SUCCESS, JobStatus.FAIL):
        return
    if part.status == JobStatus.INIT:
        part.move_to(JobStatus.RUNNING)
        part.begin_time = parent.begin_time
    part.move_to(parent.status)
    part.progress = 100 if parent.status == JobStatus.SUCCESS else part.progress
    part.error_code, part.fail_reason, part.end_time = parent.error_code, parent.fail_reason, parent.end_time
