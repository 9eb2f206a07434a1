"""Reading jobs: every face's job or task view comes from here."""

from __future__ import annotations

from vmimage.core.errors import NotFound
from vmimage.core.jobs import Job
from vmimage.core.policy import Caller
from vmimage.core.services.deps import Deps


def get_job(deps: Deps, caller: Caller, job_id: str) -> Job:
    with deps.uow() as uow:
        job = uow.jobs.get(job_id)
    if job is None or not (caller.is_admin or job.project_id == caller.project_id):
        raise NotFound(f"Job {job_id} not found", job_id=job_id)
    return job


def list_jobs(deps: Deps, caller: Caller, limit: int = 100) -> list[Job]:
    with deps.uow() as uow:
        return uow.jobs.list(None if caller.is_admin else caller.project_id, limit)
