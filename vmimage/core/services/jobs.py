"""Reading jobs: every face's job or task view comes from here."""

from __future__ import annotations

from vmimage.core.jobs import Job, JobStatus
from vmimage.core.policy import Caller, require_owned
from vmimage.core.services.deps import Deps


def get_job(deps: Deps, caller: Caller, job_id: str) -> Job:
    with deps.uow() as uow:
        job = uow.jobs.get(job_id)
    return require_owned(caller, job, "Job", job_id)


def list_jobs(deps: Deps, caller: Caller, limit: int = 100, kinds: tuple[str, ...] | None = None) -> list[Job]:
    """Newest first; kinds: only jobs of these kinds (among the newest `limit`)."""
    with deps.uow() as uow:
        found = uow.jobs.list(None if caller.is_admin else caller.project_id, limit)
    return found if kinds is None else [j for j in found if j.kind in kinds]


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
