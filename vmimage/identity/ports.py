"""What the built-in identity service needs from the database: a transaction over the identity
records (projects, users, roles, tokens, access keys, login failures). The core never sees them."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from vmimage.core.audit import AuditRepository
from vmimage.core.identity import AccessKey, Project, User
from vmimage.identity.limiter import Failures
from vmimage.identity.model import TokenRecord


class IdentityRepository(Protocol):
    def add_project(self, project: Project) -> None: ...
    def find_project(self, ref: str, domain_id: str | None = None) -> Project | None:
        """By id, or by name within a domain (any domain when None)."""
    def list_projects(self) -> list[Project]: ...
    def set_quota(self, project_id: str, resource: str, limit: int) -> None: ...

    def add_user(self, user: User) -> None: ...
    def find_user(self, ref: str, domain_id: str | None = None) -> User | None:
        """By id, or by name within a domain (any domain when None)."""
    def set_password(self, user_id: str, password_hash: str) -> None: ...
    def set_user_enabled(self, user_id: str, enabled: bool) -> None: ...
    def delete_user(self, user_id: str) -> None:
        """The user and their role assignments."""
    def list_users(self) -> list[User]:
        """Every user, by name."""
    def assign_role(self, user_id: str, project_id: str, role: str) -> None: ...
    def roles_on(self, user_id: str, project_id: str) -> set[str]: ...
    def remove_role(self, user_id: str, project_id: str, role: str) -> bool:
        """False when the user did not hold it."""
    def role_assignments(self, user_id: str | None = None,
                         project_id: str | None = None) -> list[tuple[str, str, str]]:
        """(user id, project id, role) of every assignment (of one user and/or project)."""

    def add_token(self, token: TokenRecord) -> None: ...
    def get_token(self, id_hash: str) -> TokenRecord | None: ...
    def revoke_token(self, id_hash: str) -> None: ...
    def revoke_tokens_of(self, user_id: str) -> int:
        """Revoke every live token of the user; how many."""
    def delete_tokens_of(self, user_id: str) -> int: ...
    def purge_tokens(self, before: datetime) -> None:
        """Forget tokens that expired before then."""

    def add_access_key(self, key: AccessKey) -> None: ...
    def get_access_key(self, access_key: str) -> AccessKey | None: ...
    def list_access_keys(self, user_id: str | None = None) -> list[AccessKey]:
        """Every key (of one user), oldest first."""
    def set_access_key_secret(self, access_key: str, secret: str) -> None: ...
    def set_access_key_enabled(self, access_key: str, enabled: bool) -> None: ...
    def delete_access_key(self, access_key: str) -> None: ...
    def delete_access_keys_of(self, user_id: str) -> int: ...

    def note_revocation(self) -> None:
        """Something was revoked: every process's RevocationFeed moves on once this commits."""

    def failures(self, subjects: list[str], for_update: bool = False) -> dict[str, Failures]:
        """The failure records of these subjects that exist, by subject."""
    def save_failures(self, record: Failures, new: bool) -> None: ...
    def clear_failures(self, subject: str) -> None: ...


class RevocationFeed(Protocol):
    """Tells this process that a user, an access key or a token was revoked through any
    process (a server process, the admin command), so that what it remembers of validated
    tokens is dropped at once."""

    def epoch(self) -> int | None:
        """A number that changes with every revocation committed anywhere (compare for
        equality only); None when it cannot be known now, and then nothing remembered may be
        trusted. Never waits: safe on the event loop."""
    def close(self) -> None: ...


class IdentityUnitOfWork(Protocol):
    """Rolled back unless committed, like the core's UnitOfWork (one adapter serves both)."""
    identity: IdentityRepository
    audit: AuditRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def commit(self) -> None: ...


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self, write: bool = False) -> IdentityUnitOfWork: ...
