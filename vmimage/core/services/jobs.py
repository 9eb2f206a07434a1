"""Reading jobs: every face's job or task view comes from here."""

from __future__ import annotations

from vmimage.core.jobs import Job
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
