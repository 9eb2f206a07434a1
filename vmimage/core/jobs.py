"""Asynchronous jobs: persisted, claimed by one worker, never left RUNNING forever."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vmimage.core.errors import InvalidTransition, TooManyRequests
from vmimage.core.paging import PageRequest


class JobStatus(enum.StrEnum):
    INIT = "INIT"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.INIT: frozenset({JobStatus.RUNNING, JobStatus.FAIL}),
    # RUNNING -> INIT: handed back to the queue by a clean stop (job_engine.py).
    JobStatus.RUNNING: frozenset({JobStatus.SUCCESS, JobStatus.FAIL, JobStatus.INIT}),
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


# Jobs of a lane of their own: claimed by workers of their own, oldest first, and left out of
# the main queue's counts and turns, so a burst of them (every new image is inspected) never
# holds up creates, imports or downloads, nor takes a project's running slots or queue places.
INSPECT_KIND = "image_inspect"
SIDE_LANE_KINDS: tuple[str, ...] = (INSPECT_KIND,)


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


# --- fairness across projects ------------------------------------------------------------------
#
# One project's backlog must not hold up another's jobs. Each project may have a few jobs
# running at once (counted over every process sharing the database) and a bounded line of
# waiting ones; a free worker serves the project whose turn came least recently. Parts are
# left out of both counts: they run inside their parent's slot (its worker moves them), so a
# parent can never wait for a slot one of its parts would need.

QUEUE_FULL_RETRY_SECONDS = 30     # a slot frees when a job ends: tens of seconds, typically


@dataclass(frozen=True)
class JobLimits:
    """Per project: jobs running at once and jobs waiting; -1: no limit."""
    running_per_project: int = 4
    waiting_per_project: int = 100

    def __post_init__(self) -> None:
        for name in ("running_per_project", "waiting_per_project"):
            value = getattr(self, name)
            if value == 0 or value < -1:
                raise ValueError(f"{name} must be at least 1, or -1 for no limit (not {value})")


def check_queue_room(limits: JobLimits, project_id: str, waiting: int, adding: int) -> None:
    """Refuse jobs that would take the project's line of waiting jobs past its limit."""
    cap = limits.waiting_per_project
    if 0 <= cap < waiting + adding:
        raise TooManyRequests(f"Project {project_id} has {waiting} jobs waiting to run, and at most {cap} may "
                              f"wait; retry when some have started", retry_after=QUEUE_FULL_RETRY_SECONDS,
                              limit=cap)


@dataclass(frozen=True)
class ProjectTurn:
    """A project with jobs waiting, as the queue sees it when a worker is free."""
    project_id: str
    running: int                      # its jobs running now, in every process (parts not counted)
    last_started: datetime | None     # when one of its jobs last started (None: never)
    oldest_waiting: datetime          # when its oldest waiting job was submitted


def turn_order(turns: list[ProjectTurn], limits: JobLimits) -> list[str]:
    """The projects a free worker serves, in order: only those below their running limit; the
    one whose last job started longest ago (or never) first, then the one with fewer running,
    then the one waiting longest (start times have a resolution of a second)."""
    cap = limits.running_per_project
    open_turns = [t for t in turns if cap < 0 or t.running < cap]
    open_turns.sort(key=lambda t: (t.last_started is not None, t.last_started or datetime.min, t.running,
                                   t.oldest_waiting, t.project_id))
    return [t.project_id for t in open_turns]
