"""Glance's Tasks API: imports seen as tasks, and the legacy 'import' task that creates an
image and fills it from a URL (a web-download import underneath)."""

from __future__ import annotations

from typing import Any

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.jobs import Job, JobStatus
from vmimage.core.policy import Caller, require_admin
from vmimage.core.services import images as image_service
from vmimage.core.services.deps import Deps
from vmimage.core.services import location_import
from vmimage.core.services.imports import KIND, WEB_DOWNLOAD, ImportRequest, start_import

TASK_TYPES = ("import",)
TASK_KINDS = (KIND, location_import.KIND)     # the jobs Glance shows as tasks
_STATUS = {"pending": JobStatus.INIT, "processing": JobStatus.RUNNING, "success": JobStatus.SUCCESS,
           "failure": JobStatus.FAIL}


def require_task_admin(caller: Caller, what: str) -> None:
    require_admin(caller, what)


def create_task(deps: Deps, caller: Caller, task_type: Any, task_input: dict[str, Any],
                attributes: dict[str, Any], properties: dict[str, Any], request_id: str | None) -> Job:
    require_admin(caller, "create tasks")
    if task_type not in TASK_TYPES:
        raise Invalid(f"Task type must be one of {', '.join(TASK_TYPES)}")
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
            request_id=request_id, task_type="import", task_input=task_input))
    except BaseException:
        image_service.delete_image(deps, caller, image.id)
        raise


def get_task(deps: Deps, caller: Caller, task_id: str) -> Job:
    require_admin(caller, "see tasks")
    with deps.uow() as uow:
        job = uow.jobs.get(task_id)
    if job is None or job.kind not in TASK_KINDS:
        raise NotFound(f"Task {task_id} not found", task_id=task_id)
    return job


def list_tasks(deps: Deps, caller: Caller, status: str | None = None, task_type: str | None = None,
               limit: int = 25, marker: str | None = None, sort_dir: str = "desc") -> list[Job]:
    require_admin(caller, "list tasks")
    if status is not None and status not in _STATUS:
        raise Invalid(f"Invalid task status '{status}'")
    if sort_dir not in ("asc", "desc"):
        raise Invalid("sort_dir must be asc or desc")
    with deps.uow() as uow:
        after = uow.jobs.get(marker) if marker is not None else None
        if marker is not None and (after is None or after.kind not in TASK_KINDS):
            raise Invalid(f"Unknown marker '{marker}'")
        found = uow.jobs.page(TASK_KINDS, _STATUS[status] if status else None, limit, after, sort_dir == "asc")
    if task_type is not None:   # few tasks are legacy ones; filtering the page is enough here
        found = [j for j in found if j.payload.get("task_type", "api_image_import") == task_type]
    return found
