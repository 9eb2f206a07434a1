"""Sharing an image with other projects."""

from __future__ import annotations

from vmimage.core.errors import Duplicate, Forbidden, Invalid, NotFound
from vmimage.core.images import MemberStatus, Visibility
from vmimage.core.members import Member
from vmimage.core.policy import Caller, owns, require_owner, require_writer
from vmimage.core.quotas import check_members
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible


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
        uow.commit()
    return member


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
        uow.commit()
