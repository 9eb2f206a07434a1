"""Sharing an image with other projects."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from vmimage.core import audit
from vmimage.core.errors import Duplicate, Forbidden, Invalid, NotFound
from vmimage.core.images import MemberStatus, Visibility
from vmimage.core.jobs import Job, new_job_id
from vmimage.core.log_context import current_request_id
from vmimage.core.members import Member
from vmimage.core.policy import Caller, owns, require_owner, require_writer
from vmimage.core.quotas import check_members
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.services.jobs import queue_jobs


def _require_shared(image) -> None:
    if image.visibility != Visibility.SHARED:
        raise Forbidden("Only images with visibility 'shared' have members", image_id=image.id)


def add_member(deps: Deps, caller: Caller, image_id: str, member_id: str) -> Member:
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        _require_shared(image)
        if uow.images.get_member(image_id, member_id) is not None:
            raise Duplicate("The project is already a member", member_id=member_id)
        check_members(deps.limits, len(uow.images.list_members(image_id)) + 1)
        now = deps.clock()
        member = Member(image_id, member_id, MemberStatus.PENDING, now, now)
        uow.images.save_member(member)
        _noted(uow, caller, audit.MEMBER_ADD, image, member_id)
        uow.commit()
    return member


def _noted(uow, caller: Caller, kind: str, image, member_id: str, status: str | None = None) -> None:
    """A sharing change in the audit trail (in the change's transaction)."""
    uow.audit.add(audit.event(kind, image.id, target_project_id=image.owner,
                              detail=f"member {member_id}" + (f" {status}" if status else ""),
                              user_id=caller.user_id, project_id=caller.project_id))


def list_members(deps: Deps, caller: Caller, image_id: str) -> list[Member]:
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
        _require_shared(image)
        members = uow.images.list_members(image_id)
    if owns(caller, image.owner):
        return members
    return [m for m in members if m.member_id == caller.project_id]


def get_member(deps: Deps, caller: Caller, image_id: str, member_id: str) -> Member:
    with deps.uow() as uow:
        image = find_visible(uow, caller, image_id)
        _require_shared(image)
        member = uow.images.get_member(image_id, member_id)
    if member is None or not (owns(caller, image.owner) or member_id == caller.project_id):
        raise NotFound("Member not found", member_id=member_id)
    return member


def update_member(deps: Deps, caller: Caller, image_id: str, member_id: str, status: str) -> Member:
    require_writer(caller)
    try:
        new_status = MemberStatus(status)
    except ValueError:
        raise Invalid(f"Invalid member status '{status}'") from None
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        _require_shared(image)
        member = uow.images.get_member(image_id, member_id)
        if member is None:
            raise NotFound("Member not found", member_id=member_id)
        if member_id != caller.project_id:
            raise Forbidden("Only the member project may accept or reject an image")
        member.status, member.updated_at = new_status, deps.clock()
        uow.images.save_member(member)
        _noted(uow, caller, audit.MEMBER_STATUS, image, member_id, new_status.value)
        uow.commit()
    return member


def remove_member(deps: Deps, caller: Caller, image_id: str, member_id: str) -> None:
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        require_owner(caller, image)
        _require_shared(image)
        if uow.images.get_member(image_id, member_id) is None:
            raise NotFound("Member not found", member_id=member_id)
        uow.images.delete_member(image_id, member_id)
        _noted(uow, caller, audit.MEMBER_REMOVE, image, member_id)
        uow.commit()


# --- several images and projects at once, as a job ---------------------------------------------

BATCH_KIND = "image_members"
BATCH_ACTIONS = ("add", "remove", "answer")


def _ids(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"'{field}' must be a non-empty list of ids", field=field)
    return list(dict.fromkeys(value))


def submit_member_batch(deps: Deps, caller: Caller, action: str, image_ids: Any, project_ids: Any = None,
                        status: str | None = None) -> Job:
    """add / remove: share each image with each project, or stop; answer: the caller's project
    accepts or rejects each image (status). Checked up front, carried out by a job."""
    require_writer(caller)
    if action not in BATCH_ACTIONS:
        raise Invalid(f"Unknown action '{action}'")
    images = _ids(image_ids, "images")
    if action == "answer":
        projects = [caller.project_id]
        if status not in tuple(MemberStatus):
            raise Invalid(f"Invalid member status '{status}'", field="status")
    else:
        projects = _ids(project_ids, "projects")
    with deps.uow(write=True) as uow:
        for image_id in images:
            image = find_visible(uow, caller, image_id)
            if action != "answer":
                require_owner(caller, image)
            _require_shared(image)
        job = Job(new_job_id(), BATCH_KIND, caller.project_id, created_at=deps.clock(),
                  payload={"request_id": current_request_id(), "action": action, "images": images, "projects": projects, "status": status,
                           "caller": {"user_id": caller.user_id, "project_id": caller.project_id,
                                      "roles": sorted(caller.roles)},
                           # the changes' audit events name the request that asked for them
                           "origin": asdict(audit.current_origin())},
                  entities={"image_ids": images})
        queue_jobs(deps, uow, job)
        uow.commit()
    deps.submit_job()
    return job


class MemberBatch:
    """The job handler: each (image, project) in turn, as the caller who asked."""

    def run(self, deps: Deps, job: Job, progress) -> dict:
        p = job.payload
        who = Caller(p["caller"]["user_id"], p["caller"]["project_id"], frozenset(p["caller"]["roles"]))
        results: list[dict] = []
        with audit.origin_of(audit.Origin(**p.get("origin") or {})):
            for image_id in p["images"]:
                for project_id in p["projects"]:
                    if p["action"] == "add":
                        try:
                            add_member(deps, who, image_id, project_id)
                        except Duplicate:
                            pass
                    elif p["action"] == "remove":
                        try:
                            remove_member(deps, who, image_id, project_id)
                        except NotFound:
                            pass
                    else:
                        update_member(deps, who, image_id, project_id, p["status"])
                    results.append({"image_id": image_id, "project_id": project_id,
                                    "status": "success"})
        return {"results": results}

    def cleanup(self, deps: Deps, job: Job) -> None:
        """Each change stands on its own: nothing to undo."""
