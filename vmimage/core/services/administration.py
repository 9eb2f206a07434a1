"""Administration through the API (admins only): projects and their quotas, users and their
role grants, access keys (the secret given once, at creation), and bucket grants. The same
operations as `vmimage admin`, for any client (the console's Administration page is one)."""

from __future__ import annotations

from dataclasses import dataclass

from vmimage.core.buckets import BucketGrant
from vmimage.core.errors import Invalid, NotFound
from vmimage.core.identity import AccessKey, Project, User
from vmimage.core.policy import Caller, require_admin
from vmimage.core.ports import IdentityAdmin
from vmimage.core.quotas import Limits
from vmimage.core.services import buckets as bsvc
from vmimage.core.services.deps import Deps

# quota name on the wire -> Limits field and the identity's resource name
QUOTAS = {"images": "image_count", "bytes": "image_bytes"}


@dataclass(frozen=True)
class ProjectView:
    project: Project
    limits: Limits


def _identity(deps: Deps) -> IdentityAdmin:
    if deps.identity_admin is None:
        raise NotFound("This deployment offers no identity administration")
    return deps.identity_admin


def list_projects(deps: Deps, caller: Caller) -> list[ProjectView]:
    require_admin(caller, "list projects")
    found = _identity(deps).list_projects()
    with deps.uow() as uow:
        return [ProjectView(p, deps.limits_for(uow, p.id)) for p in found]


def create_project(deps: Deps, caller: Caller, name: str, region: str | None = None) -> Project:
    """region: where the project acts in the dialects whose projects are regional (IMS)."""
    require_admin(caller, "create projects")
    if region is not None:
        deps.require_region(region)
    return _identity(deps).create_project(name, region)


def set_quotas(deps: Deps, caller: Caller, project: str, limits: dict[str, int]) -> ProjectView:
    """limits: {"images": N, "bytes": B}, -1 unlimited; every value is checked before any is set."""
    require_admin(caller, "set quotas")
    identity = _identity(deps)
    found = identity.find_project(project)
    if found is None:
        raise NotFound(f"Project '{project}' not found")
    for name, value in limits.items():
        if name not in QUOTAS:
            raise Invalid(f"Unknown quota '{name}' (known: {', '.join(QUOTAS)})", field=name)
        if value < -1:
            raise Invalid(f"Quota '{name}' must be -1 (unlimited) or more", field=name)
    for name, value in limits.items():
        identity.set_quota(found.id, QUOTAS[name], value)
    with deps.uow() as uow:
        return ProjectView(found, deps.limits_for(uow, found.id))


def list_users(deps: Deps, caller: Caller) -> list[tuple[User, list[tuple[str, str]]]]:
    require_admin(caller, "list users")
    return _identity(deps).list_users()


def create_user(deps: Deps, caller: Caller, name: str, password: str, project: str, role: str) -> User:
    require_admin(caller, "create users")
    if not password:
        raise Invalid("A password is required", field="password")
    return _identity(deps).create_user(name, password, project, role)


def grant_role(deps: Deps, caller: Caller, user: str, project: str, role: str) -> None:
    require_admin(caller, "grant roles")
    _identity(deps).grant_role(user, project, role)


def revoke_role(deps: Deps, caller: Caller, user: str, project: str, role: str) -> None:
    """Effective at once: the user's tokens on the project end with its last role there."""
    require_admin(caller, "revoke roles")
    _identity(deps).revoke_role(user, project, role)


def set_user_enabled(deps: Deps, caller: Caller, user: str, enabled: bool) -> User:
    require_admin(caller, "enable or disable users")
    return _identity(deps).set_user_enabled(user, enabled)[0]


def delete_user(deps: Deps, caller: Caller, user: str) -> None:
    require_admin(caller, "delete users")
    _identity(deps).delete_user(user)


def create_access_key(deps: Deps, caller: Caller, user: str) -> AccessKey:
    require_admin(caller, "create access keys")
    return _identity(deps).create_access_key(user)


def list_access_keys(deps: Deps, caller: Caller, user: str | None = None) -> list[tuple[AccessKey, User]]:
    require_admin(caller, "list access keys")
    return _identity(deps).list_access_keys(user)


def set_access_key_enabled(deps: Deps, caller: Caller, access_key: str, enabled: bool) -> AccessKey:
    require_admin(caller, "enable or disable access keys")
    return _identity(deps).set_access_key_enabled(access_key, enabled)


def delete_access_key(deps: Deps, caller: Caller, access_key: str) -> None:
    require_admin(caller, "delete access keys")
    _identity(deps).delete_access_key(access_key)


def _project_id(deps: Deps, project: str) -> str:
    found = _identity(deps).find_project(project)
    if found is None:
        raise NotFound(f"Project '{project}' not found")
    return found.id


def list_bucket_grants(deps: Deps, caller: Caller) -> list[BucketGrant]:
    require_admin(caller, "list bucket grants")
    return bsvc.list_bucket_grants(deps)


def grant_bucket(deps: Deps, caller: Caller, bucket: str, project: str) -> BucketGrant:
    require_admin(caller, "grant buckets")
    return bsvc.grant_bucket(deps, bucket, _project_id(deps, project))


def revoke_bucket(deps: Deps, caller: Caller, bucket: str, project: str) -> None:
    require_admin(caller, "revoke buckets")
    bsvc.revoke_bucket(deps, bucket, _project_id(deps, project))
