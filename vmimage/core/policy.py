"""Who may do what: Glance's secure-RBAC defaults (admin ⊃ member ⊃ reader)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from vmimage.core.errors import Forbidden, NotFound
from vmimage.core.images import Image, Visibility

ROLE_IMPLIES = {
    "admin": ("admin", "member", "reader"),
    "member": ("member", "reader"),
    "reader": ("reader",),
}


def expand_roles(roles: set[str] | frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for role in roles:
        out.update(ROLE_IMPLIES.get(role, (role,)))
    return frozenset(out)


@dataclass(frozen=True)
class Caller:
    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # The region the caller acts in (each face sets it its own way); None: the default region.
    region: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        return "member" in self.roles or self.is_admin

    @property
    def is_service(self) -> bool:
        return "service" in self.roles or self.is_admin


def require_writer(caller: Caller) -> None:
    if not caller.can_write:
        raise Forbidden("The reader role may not change anything")


def require_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Forbidden(f"Only an administrator may {what}")


def owns(caller: Caller, owner: str | None) -> bool:
    """The one ownership rule: what a project owns is its own (and every admin's)."""
    return caller.is_admin or (owner is not None and owner == caller.project_id)


class _Owned(Protocol):
    @property
    def project_id(self) -> str: ...


OwnedT = TypeVar("OwnedT", bound=_Owned)


def require_owned(caller: Caller, entity: OwnedT | None, what: str, ident: str) -> OwnedT:
    """The entity (anything with a project_id) if it exists and is the caller's own;
    NotFound otherwise, so that another project's entity does not show it exists."""
    if entity is None or not owns(caller, entity.project_id):
        raise NotFound(f"{what} {ident} not found", id=ident, **{f"{what.lower()}_id": ident})
    return entity


def in_region(caller: Caller, image: Image) -> bool:
    """An image is seen, and acted on, in its own region only (None: the default region, which
    images made before regions carry too)."""
    return caller.region is None or not image.region or image.region == caller.region


def can_see(caller: Caller, image: Image, member_status: str | None) -> bool:
    """member_status is the caller's membership status on the image, if any."""
    if not in_region(caller, image):
        return False
    if owns(caller, image.owner):
        return True
    if image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    return image.visibility == Visibility.SHARED and member_status is not None


def check_visible(caller: Caller, image: Image | None, member_status: str | None) -> Image:
    if image is None or not can_see(caller, image, member_status):
        raise NotFound("Image not found", image_id=image.id if image is not None else None)
    return image


def is_owner(caller: Caller, image: Image) -> bool:
    """The image's project, or an admin: who may see where an image came from."""
    return owns(caller, image.owner)


def can_see_locations(caller: Caller, image: Image) -> bool:
    """Store URLs tell where data sits: the owning project, services and admins only."""
    return caller.is_service or image.owner == caller.project_id


def require_owner(caller: Caller, image: Image) -> None:
    """Writes to an image belong to its project (or an admin)."""
    require_writer(caller)
    if not owns(caller, image.owner):
        raise Forbidden("Only the image's project may change it", image_id=image.id)
