"""Reading jobs: every face's job or task view comes from here."""

from __future__ import annotations

from vmimage.core.jobs import Job, JobQuery, JobStatus
from vmimage.core.paging import Page, PageRequest
from vmimage.core.policy import Caller, require_owned
from vmimage.core.services.deps import Deps


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
