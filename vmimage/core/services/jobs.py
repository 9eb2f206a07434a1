"""Jobs: the one door new jobs enter the queue by, and reading them (every face's job or
task view comes from here)."""

from __future__ import annotations

from vmimage.core.jobs import PART_KIND, SIDE_LANE_KINDS, Job, JobQuery, JobStatus, check_queue_room
from vmimage.core.paging import Page, PageRequest
from vmimage.core.policy import Caller, require_owned
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps


def queue_jobs(deps: Deps, uow: UnitOfWork, *jobs: Job) -> None:
    """New jobs (with their parts) into the queue, in the caller's write transaction; refused
    with TooManyRequests, all of them, when a project's line of waiting jobs would pass its
    limit. The line stays locked until the transaction ends, so two submits cannot both take
    its last place. Every job is created through here."""
    adding: dict[str, int] = {}
    for job in jobs:
        # Parts run in their parent's turn; the side lane's jobs (inspections) in no project's line.
        if job.kind != PART_KIND and job.kind not in SIDE_LANE_KINDS:
            adding[job.project_id] = adding.get(job.project_id, 0) + 1
    for project_id in sorted(adding):      # one order for every submit: no two wait on each other
        uow.jobs.lock_queue(project_id)
        check_queue_room(deps.job_limits, project_id, uow.jobs.waiting_count(project_id), adding[project_id])
    for job in jobs:
        uow.jobs.add(job)


def require_queue_room(deps: Deps, project_id: str, adding: int = 1) -> None:
    """The same refusal ahead of work done outside the submit's transaction (images made
    first); only queue_jobs decides for good."""
    with deps.uow() as uow:
        check_queue_room(deps.job_limits, project_id, uow.jobs.waiting_count(project_id), adding)


def get_job(deps: Deps, caller: Caller, job_id: str) -> Job:
    with deps.uow() as uow:
        job = uow.jobs.get(job_id)
    return require_owned(caller, job, "Job", job_id)


def list_jobs(deps: Deps, caller: Caller, query: JobQuery | None = None) -> Page[Job]:
    """The project's jobs (every project's for an admin) the query asks for; without one,
    the newest 100."""
    query = query if query is not None else JobQuery(page=PageRequest(limit=100))
    query.project_id = None if caller.is_admin else caller.project_id
    query.page.validate()
    with deps.uow() as uow:
        return uow.jobs.page(query)


def advance_part(deps: Deps, parent: Job, part_id: str, status: JobStatus) -> None:
    """The parent's worker moves one of its parts (RUNNING when its image starts, SUCCESS when done)."""
    with deps.uow(write=True) as uow:
        part = uow.jobs.get(part_id, for_update=True)
        if part is None or part.status == status or part.status in (JobStatus.SUCCESS, JobStatus.FAIL):
            return
        now = deps.clock()
        if part.status == JobStatus.INIT:
            part.move_to(JobStatus.RUNNING)
            part.begin_time, part.worker, part.heartbeat_at = now, parent.worker, now
        if status == JobStatus.SUCCESS:
            part.move_to(JobStatus.SUCCESS)
            part.progress, part.end_time = 100, now
        uow.jobs.save(part)
        uow.commit()
