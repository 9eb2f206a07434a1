"""SqlIdentityRepository: projects, users, role assignments, tokens and access keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, update

from vmimage.adapters.db.revocations import notify_revocation
from vmimage.adapters.db.tables import (access_keys, auth_failures, project_quotas, projects, revocation_epoch,
                                        role_assignments, tokens, users)
from vmimage.core.identity import AccessKey, Project, User
from vmimage.identity.limiter import Failures
from vmimage.identity.model import TokenRecord


class SqlIdentityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_project(self, project: Project) -> None:
        self.conn.execute(insert(projects).values(
            id=project.id, name=project.name, domain_id=project.domain_id, enabled=project.enabled,
            created_at=project.created_at, region=project.region))

    def find_project(self, ref: str, domain_id: str | None = None) -> Project | None:
        """By id, or by name within a domain."""
        stmt = select(projects).where(or_(projects.c.id == ref, projects.c.name == ref))
        if domain_id:
            stmt = stmt.where(projects.c.domain_id == domain_id)
        rows = list(self.conn.execute(stmt.order_by((projects.c.id == ref).desc())))
        return Project(**rows[0]._mapping) if rows else None

    def list_projects(self) -> list[Project]:
        return [Project(**r._mapping) for r in self.conn.execute(select(projects).order_by(projects.c.name))]

    def add_user(self, user: User) -> None:
        self.conn.execute(insert(users).values(
            id=user.id, name=user.name, domain_id=user.domain_id, password_hash=user.password_hash,
            enabled=user.enabled, default_project_id=user.default_project_id, created_at=user.created_at))

    def find_user(self, ref: str, domain_id: str | None = None) -> User | None:
        stmt = select(users).where(or_(users.c.id == ref, users.c.name == ref))
        if domain_id:
            stmt = stmt.where(users.c.domain_id == domain_id)
        rows = list(self.conn.execute(stmt.order_by((users.c.id == ref).desc())))
        return User(**rows[0]._mapping) if rows else None

    def set_password(self, user_id: str, password_hash: str) -> None:
        self.conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    def set_user_enabled(self, user_id: str, enabled: bool) -> None:
        self.conn.execute(update(users).where(users.c.id == user_id).values(enabled=enabled))

    def delete_user(self, user_id: str) -> None:
        self.conn.execute(delete(role_assignments).where(role_assignments.c.user_id == user_id))
        self.conn.execute(delete(users).where(users.c.id == user_id))

    def list_users(self) -> list[User]:
        return [User(**r._mapping) for r in self.conn.execute(select(users).order_by(users.c.name))]

    def assign_role(self, user_id: str, project_id: str, role: str) -> None:
        exists = self.conn.execute(select(role_assignments).where(
            role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id,
            role_assignments.c.role == role)).first()
        if not exists:
            self.conn.execute(insert(role_assignments).values(user_id=user_id, project_id=project_id, role=role))

    def remove_role(self, user_id: str, project_id: str, role: str) -> bool:
        done = self.conn.execute(delete(role_assignments).where(
            role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id,
            role_assignments.c.role == role))
        return bool(done.rowcount)

    def role_assignments(self, user_id: str | None = None,
                         project_id: str | None = None) -> list[tuple[str, str, str]]:
        stmt = select(role_assignments.c.user_id, role_assignments.c.project_id, role_assignments.c.role)
        if user_id is not None:
            stmt = stmt.where(role_assignments.c.user_id == user_id)
        if project_id is not None:
            stmt = stmt.where(role_assignments.c.project_id == project_id)
        rows = self.conn.execute(stmt.order_by(role_assignments.c.user_id, role_assignments.c.project_id,
                                               role_assignments.c.role))
        return [(u, p, r) for u, p, r in rows]

    def roles_on(self, user_id: str, project_id: str) -> set[str]:
        rows = self.conn.execute(select(role_assignments.c.role).where(
            role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id))
        return {r for (r,) in rows}

    def add_token(self, token: TokenRecord) -> None:
        self.conn.execute(insert(tokens).values(
            id_hash=token.id_hash, user_id=token.user_id, project_id=token.project_id,
            methods=",".join(token.methods), audit_id=token.audit_id, issued_at=token.issued_at,
            expires_at=token.expires_at, revoked=False))

    def get_token(self, id_hash: str) -> TokenRecord | None:
        row = self.conn.execute(select(tokens).where(tokens.c.id_hash == id_hash)).first()
        if row is None:
            return None
        m = row._mapping
        return TokenRecord(m["id_hash"], m["user_id"], m["project_id"], m["methods"].split(","),
                           m["audit_id"], m["issued_at"], m["expires_at"], m["revoked"])

    def revoke_token(self, id_hash: str) -> None:
        self.conn.execute(update(tokens).where(tokens.c.id_hash == id_hash).values(revoked=True))

    def revoke_tokens_of(self, user_id: str) -> int:
        return self.conn.execute(update(tokens).where(tokens.c.user_id == user_id, tokens.c.revoked == False)  # noqa: E712
                                 .values(revoked=True)).rowcount

    def delete_tokens_of(self, user_id: str) -> int:
        return self.conn.execute(delete(tokens).where(tokens.c.user_id == user_id)).rowcount

    def purge_tokens(self, before: datetime) -> None:
        self.conn.execute(delete(tokens).where(tokens.c.expires_at < before))

    def add_access_key(self, key: AccessKey) -> None:
        self.conn.execute(insert(access_keys).values(
            access_key=key.access_key, secret=key.secret, user_id=key.user_id,
            project_id=key.project_id, created_at=key.created_at))

    def get_access_key(self, access_key: str) -> AccessKey | None:
        row = self.conn.execute(select(access_keys).where(access_keys.c.access_key == access_key)).first()
        return AccessKey(**row._mapping) if row else None

    def list_access_keys(self, user_id: str | None = None) -> list[AccessKey]:
        stmt = select(access_keys).order_by(access_keys.c.created_at, access_keys.c.access_key)
        if user_id is not None:
            stmt = stmt.where(access_keys.c.user_id == user_id)
        return [AccessKey(**r._mapping) for r in self.conn.execute(stmt)]

    def set_access_key_secret(self, access_key: str, secret: str) -> None:
        self.conn.execute(update(access_keys).where(access_keys.c.access_key == access_key).values(secret=secret))

    def set_access_key_enabled(self, access_key: str, enabled: bool) -> None:
        self.conn.execute(update(access_keys).where(access_keys.c.access_key == access_key).values(enabled=enabled))

    def delete_access_key(self, access_key: str) -> None:
        self.conn.execute(delete(access_keys).where(access_keys.c.access_key == access_key))

    def delete_access_keys_of(self, user_id: str) -> int:
        return self.conn.execute(delete(access_keys).where(access_keys.c.user_id == user_id)).rowcount

    def note_revocation(self) -> None:
        self.conn.execute(update(revocation_epoch).where(revocation_epoch.c.id == 1)
                          .values(epoch=revocation_epoch.c.epoch + 1))
        notify_revocation(self.conn)

    def failures(self, subjects: list[str], for_update: bool = False) -> dict[str, Failures]:
        stmt = select(auth_failures).where(auth_failures.c.subject.in_(subjects)).order_by(auth_failures.c.subject)
        if for_update:     # in one order, so two logins never lock each other's rows crosswise
            stmt = stmt.with_for_update()
        return {r.subject: Failures(**r._mapping) for r in self.conn.execute(stmt)}

    def save_failures(self, record: Failures, new: bool) -> None:
        values = {"failures": record.failures, "window_start": record.window_start,
                  "blocked_until": record.blocked_until}
        if new:
            self.conn.execute(insert(auth_failures).values(subject=record.subject, **values))
        else:
            self.conn.execute(update(auth_failures).where(auth_failures.c.subject == record.subject).values(**values))

    def clear_failures(self, subject: str) -> None:
        self.conn.execute(delete(auth_failures).where(auth_failures.c.subject == subject))

    def set_quota(self, project_id: str, resource: str, limit: int) -> None:
        self.conn.execute(delete(project_quotas).where(project_quotas.c.project_id == project_id,
                                                       project_quotas.c.resource == resource))
        self.conn.execute(insert(project_quotas).values(project_id=project_id, resource=resource, limit=limit))
