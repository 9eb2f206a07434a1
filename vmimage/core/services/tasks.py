"""Glance's Tasks API: imports seen as tasks, and the legacy 'import' task that creates an
image and fills it from a URL (a web-download import underneath)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.jobs import Job, JobQuery, JobStatus
from vmimage.core.paging import Page, PageRequest, page_size
from vmimage.core.policy import Caller, require_admin
from vmimage.core.services import images as image_service
from vmimage.core.services.deps import Deps
from vmimage.core.services import location_import
from vmimage.core.services.imports import KIND, WEB_DOWNLOAD, ImportRequest, start_import

LEGACY_IMPORT_KIND = "task_import"     # POST /v2/tasks {"type": "import"}: run by the import handler
# Glance's task types and the jobs behind them.
TASK_KINDS = {"api_image_import": KIND, "import": LEGACY_IMPORT_KIND, "location_import": location_import.KIND}
CREATABLE = ("import",)
TASK_TTL = timedelta(hours=48)          # how long a finished task is said to be kept


def task_type(job: Job) -> str:
    return next(t for t, kind in TASK_KINDS.items() if kind == job.kind)


def expires_at(job: Job) -> datetime | None:
    if job.status not in (JobStatus.SUCCESS, JobStatus.FAIL):
        return None
    ended = job.end_time or job.created_at
    return ended + TASK_TTL if ended is not None else None
_STATUS = {"pending": JobStatus.INIT, "processing": JobStatus.RUNNING, "success": JobStatus.SUCCESS,
           "failure": JobStatus.FAIL}


def create_task(deps: Deps, caller: Caller, task_type: Any, task_input: dict[str, Any],
                attributes: dict[str, Any], properties: dict[str, Any], request_id: str | None) -> Job:
    require_admin(caller, "create tasks")
    if task_type not in CREATABLE:
        raise Invalid(f"Task type must be one of {', '.join(CREATABLE)}")
    source, source_format = task_input.get("import_from"), task_input.get("import_from_format")
    if not isinstance(source, str) or not source:
        raise Invalid("'input.import_from' must be a URL")
    if not isinstance(source_format, str) or not source_format:
        raise Invalid("'input.import_from_format' must be a disk format")
    deps.fetcher.check(source)    # refused now, not as a failed task later
    image = image_service.create_image(deps, caller, attributes, properties)
    try:
        return start_import(deps, caller, image.id, ImportRequest(
            method=WEB_DOWNLOAD, uri=source, body={"method": {"name": WEB_DOWNLOAD, "uri": source}},
            request_id=request_id, kind=LEGACY_IMPORT_KIND, task_input=task_input))
    except BaseException:
        image_service.delete_image(deps, caller, image.id)
        raise


def get_task(deps: Deps, caller: Caller, task_id: str) -> Job:
    require_admin(caller, "see tasks")
    with deps.uow() as uow:
        job = uow.jobs.get(task_id)
    if job is None or job.kind not in TASK_KINDS.values():
        raise NotFound(f"Task {task_id} not found", task_id=task_id)
    return job


def list_tasks(deps: Deps, caller: Caller, status: str | None = None, task_type: str | None = None,
               limit: int | None = None, marker: str | None = None, sort_dir: str = "desc") -> Page[Job]:
    require_admin(caller, "list tasks")
    if status is not None and status not in _STATUS:
        raise Invalid(f"Invalid task status '{status}'")
    if task_type is not None and task_type not in TASK_KINDS:
        raise Invalid(f"Invalid task type '{task_type}'")
    if sort_dir not in ("asc", "desc"):
        raise Invalid("sort_dir must be asc or desc")
    page = PageRequest(limit=page_size(limit), marker=marker)
    with deps.uow() as uow:
        after = uow.jobs.get(marker) if marker is not None else None
        if marker is not None and (after is None or after.kind not in TASK_KINDS.values()):
            raise Invalid(f"Unknown marker '{marker}'")
        kinds = tuple(TASK_KINDS.values()) if task_type is None else (TASK_KINDS[task_type],)
        return uow.jobs.page(JobQuery(kinds=kinds, statuses=[_STATUS[status]] if status else None,
                                      oldest_first=sort_dir == "asc", page=page))
