"""Whole-machine images as one thing: the system-disk image (the machine) and the images
of its data disks (parent_id = the machine's id). Each disk is an image of its own, seen
through Glance too; these use cases act on the machine and all its disks at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmimage.core.errors import NotFound
from vmimage.core.images import Image, ImageStatus, Visibility
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.policy import Caller
from vmimage.core.services import images as image_svc
from vmimage.core.services import members as member_svc
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import Change, find_visible


@dataclass
class MachineImage:
    image: Image                                        # the system disk; the machine's identity
    disks: list[Image] = field(default_factory=list)    # data disks, by device

    @property
    def all(self) -> list[Image]:
        return [self.image, *self.disks]


def _disks(uow, caller: Caller, image: Image) -> list[Image]:
    query = ImageQuery(caller.project_id, is_admin=True, scope=ListScope.ALL, equals={"parent_id": image.id},
                       limit=None, sort=[("created_at", "asc")])
    return sorted(uow.images.list(query), key=lambda i: i.device or "")


def find_machine_image(deps: Deps, caller: Caller, ref: Any) -> MachineImage:
    """By ref only (the caller-facing id); another disk's ref or an invisible image is NotFound."""
    with deps.uow() as uow:
        image = uow.images.get_by_ref(ref) if isinstance(ref, str) else None
        if image is None or image.parent_id is not None:
            raise NotFound(f"Image {ref} not found", image_id=ref)
        try:
            image = find_visible(uow, caller, image.id)
        except NotFound:
            raise NotFound(f"Image {ref} not found", image_id=ref) from None
        return MachineImage(image, _disks(uow, caller, image))


def list_machine_images(deps: Deps, caller: Caller, scope: ListScope, owned: bool | None = None,
                        refs: list[str] | None = None, name_contains: str | None = None,
                        statuses: list[str] | None = None) -> list[MachineImage]:
    """Every match, newest first (the caller pages). owned: only the caller's project's
    images (True) or only other projects' (False)."""
    query = ImageQuery(caller.project_id, scope=scope, member_status="all", equals={"parent_id": None}, limit=None)
    if owned:
        query.equals["owner"] = caller.project_id
    if refs is not None:
        query.any_of["ref"] = refs
    if name_contains:
        query.contains["name"] = name_contains
    if statuses is not None:
        query.any_of["status"] = statuses
    found = image_svc.list_images(deps, caller, query).items
    if owned is False:
        found = [i for i in found if i.owner != caller.project_id]
    with deps.uow() as uow:
        return [MachineImage(i, _disks(uow, caller, i)) for i in found]


def update_machine_image(deps: Deps, caller: Caller, ref: Any, name: str | None, description: str | None) -> None:
    machine = find_machine_image(deps, caller, ref)
    changes = []
    if name is not None:
        changes.append(Change("replace", "name", name))
    if description is not None:
        changes.append(Change("replace", "description", description, property=False))
    if changes:
        image_svc.update_image(deps, caller, machine.image.id, changes)


def delete_machine_image(deps: Deps, caller: Caller, ref: Any) -> None:
    """The disks first, the machine last: a failure midway leaves a machine to delete again."""
    machine = find_machine_image(deps, caller, ref)
    for image in [*machine.disks, machine.image]:
        image_svc.delete_image(deps, caller, image.id)


def share_machine_image(deps: Deps, caller: Caller, ref: Any, project_ids: list[str]) -> None:
    """Shares the machine and its disks with these projects (members need not accept)."""
    machine = find_machine_image(deps, caller, ref)
    for image in machine.all:
        if image.visibility != Visibility.SHARED:
            image_svc.update_image(deps, caller, image.id, [Change("replace", "visibility", "shared")])
        present = {m.member_id for m in member_svc.list_members(deps, caller, image.id)}
        for project_id in project_ids:
            if project_id not in present:
                member_svc.add_member(deps, caller, image.id, project_id)


def unshare_machine_image(deps: Deps, caller: Caller, ref: Any, project_ids: list[str]) -> None:
    machine = find_machine_image(deps, caller, ref)
    for image in machine.all:
        if image.visibility != Visibility.SHARED:
            continue
        present = {m.member_id for m in member_svc.list_members(deps, caller, image.id)}
        for project_id in project_ids:
            if project_id in present:
                member_svc.remove_member(deps, caller, image.id, project_id)


def machine_members(deps: Deps, caller: Caller, ref: Any) -> list[str]:
    machine = find_machine_image(deps, caller, ref)
    if machine.image.visibility != Visibility.SHARED:
        return []
    return [m.member_id for m in member_svc.list_members(deps, caller, machine.image.id)]


def machine_share_quota(deps: Deps, caller: Caller, ref: Any) -> tuple[int, int]:
    """(limit, used) of the projects the machine may be shared with; -1 is unlimited."""
    used = len(machine_members(deps, caller, ref))
    with deps.uow() as uow:
        return deps.limits_for(uow, caller.project_id).members_per_image, used


def release_machine_image(deps: Deps, caller: Caller, ref: Any) -> None:
    """Publish the machine (and its disks) to every project, as a community image; the
    projects it was shared with lose nothing they need, so their memberships go."""
    machine = find_machine_image(deps, caller, ref)
    for image in machine.all:
        if image.visibility == Visibility.COMMUNITY:
            continue
        if image.visibility == Visibility.SHARED:
            for member in member_svc.list_members(deps, caller, image.id):
                member_svc.remove_member(deps, caller, image.id, member.member_id)
        image_svc.update_image(deps, caller, image.id, [Change("replace", "visibility", "community")])


def unrelease_machine_image(deps: Deps, caller: Caller, ref: Any) -> None:
    """Back from the community to the owner only."""
    machine = find_machine_image(deps, caller, ref)
    for image in machine.all:
        if image.visibility == Visibility.COMMUNITY:
            image_svc.update_image(deps, caller, image.id, [Change("replace", "visibility", "private")])


def machine_status(machine: MachineImage) -> ImageStatus:
    """The machine's status from its disks': active when all are, killed when one is,
    otherwise the least advanced."""
    statuses = [i.status for i in machine.all]
    if all(s == ImageStatus.ACTIVE for s in statuses):
        return ImageStatus.ACTIVE
    if ImageStatus.KILLED in statuses:
        return ImageStatus.KILLED
    return next(s for s in statuses if s != ImageStatus.ACTIVE)


def machine_progress(machine: MachineImage) -> int:
    done = sum(1 for i in machine.all if i.status == ImageStatus.ACTIVE)
    return int(done * 100 / len(machine.all))
