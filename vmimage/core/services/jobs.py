"""Reading jobs: every face's job or task view comes from here."""

from __future__ import annotations

from vmimage.core.jobs import Job
from vmimage.core.policy import Caller, require_owned
from vmimage.core.services.deps import Deps


def get_job(deps: Deps, caller: Caller, job_id: str) -> Job:
    with deps.uow() as uow:
        job = uow.jobs.get(job_id)
    return require_owned(caller, job, "Job", job_id)


def list_jobs(deps: Deps, caller: Caller, limit: int = 100) -> list[Job]:
    with deps.uow() as uow:
        return uow.jobs.list(None if caller.is_admin else caller.project_id, limit)
