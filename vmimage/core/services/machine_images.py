"""Whole-machine images as one thing: the system-disk image (the machine) and the images
of its data disks (parent_id = the machine's id). Each disk is an image of its own, seen
through Glance too; these use cases act on the machine and all its disks at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmimage.core.errors import NotFound
from vmimage.core.images import Image, ImageStatus, Visibility, combined_status
from vmimage.core.inventory import device_order
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.paging import Page, PageRequest
from vmimage.core.policy import Caller
from vmimage.core.ports import UnitOfWork
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


def _disks(uow: UnitOfWork, caller: Caller, image: Image) -> list[Image]:
    return _disks_of(uow, caller, [image])[image.id]


def _disks_of(uow: UnitOfWork, caller: Caller, machines: list[Image]) -> dict[str, list[Image]]:
    """The live data-disk images of each machine image, by device."""
    found: dict[str, list[Image]] = {m.id: [] for m in machines}
    if not machines:
        return found
    query = ImageQuery(caller.project_id, is_admin=True, scope=ListScope.ALL, any_of={"parent_id": list(found)},
                       page=PageRequest.everything(), sort=[("created_at", "asc")])
    for disk in uow.images.list(query):
        if disk.parent_id is not None:
            found[disk.parent_id].append(disk)
    return {machine_id: sorted(disks, key=lambda i: device_order(i.device or ""))
            for machine_id, disks in found.items()}


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


def list_machine_images(deps: Deps, caller: Caller, query: ImageQuery) -> Page[MachineImage]:
    """The page of machine images (no disk images) the query asks for, newest first unless it
    says otherwise; shares count whether or not the member accepted them (machine images are
    shared without asking)."""
    query.equals["parent_id"] = None
    query.member_status = "all"
    page = image_svc.list_images(deps, caller, query)
    with deps.uow() as uow:
        disks = _disks_of(uow, caller, page.items)
    return Page([MachineImage(i, disks[i.id]) for i in page.items], page.more, page.total)


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
    otherwise the least advanced (core/images.py STATUS_RANK; listings filter on the same)."""
    return combined_status(i.status for i in machine.all)


def machine_progress(machine: MachineImage) -> int:
    done = sum(1 for i in machine.all if i.status == ImageStatus.ACTIVE)
    return int(done * 100 / len(machine.all))
