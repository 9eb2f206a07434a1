"""Identity use cases: administration, authentication, token validation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from vmimage.core.errors import Duplicate, Invalid, NotFound, Unauthenticated
from vmimage.core.policy import Caller, expand_roles
from vmimage.core.identity import (DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ROLES, AccessKey, AccessKeyGrant,
                                   Project, Token, User)
from vmimage.identity.model import TokenRecord
from vmimage.identity.passwords import hash_password, verify_password

_CACHE_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _hash_token(token_id: str) -> str:
    return hashlib.sha256(token_id.encode()).hexdigest()


def _resolve_domain(domain: dict | None) -> str | None:
    if not domain:
        return None
    if domain.get("id"):
        return domain["id"]
    if domain.get("name") in (DEFAULT_DOMAIN_NAME, DEFAULT_DOMAIN_ID):
        return DEFAULT_DOMAIN_ID
    raise Unauthenticated("Unknown domain")


class IdentityService:
    """Keystone-compatible identity held in vmimage's own database (the core's Identity port)."""

    def __init__(self, uow, token_ttl: timedelta = timedelta(hours=1)) -> None:
        self._uow = uow
        self.token_ttl = token_ttl
        self._cache: dict[str, tuple[float, Token]] = {}
        self._lock = threading.Lock()

    # --- administration -----------------------------------------------------------------

    def create_project(self, name: str) -> Project:
        with self._uow(write=True) as uow:
            if uow.identity.find_project(name, DEFAULT_DOMAIN_ID):
                raise Duplicate(f"Project '{name}' exists")
            project = Project(uuid.uuid4().hex, name, created_at=_now())
            uow.identity.add_project(project)
            uow.commit()
        return project

    def ensure_project(self, name: str) -> Project:
        with self._uow() as uow:
            found = uow.identity.find_project(name, DEFAULT_DOMAIN_ID)
        return found or self.create_project(name)

    def create_user(self, name: str, password: str, project: str, role: str) -> User:
        if role not in ROLES:
            raise Invalid(f"Role must be one of {', '.join(ROLES)}")
        with self._uow(write=True) as uow:
            proj = uow.identity.find_project(project, DEFAULT_DOMAIN_ID)
            if proj is None:
                raise NotFound(f"Project '{project}' not found")
            user = uow.identity.find_user(name, DEFAULT_DOMAIN_ID)
            if user is None:
                user = User(uuid.uuid4().hex, name, hash_password(password), default_project_id=proj.id,
                            created_at=_now())
                uow.identity.add_user(user)
            else:
                uow.identity.set_password(user.id, hash_password(password))
            uow.identity.assign_role(user.id, proj.id, role)
            uow.commit()
        return user

    def create_access_key(self, user_name: str) -> AccessKey:
        with self._uow(write=True) as uow:
            user = uow.identity.find_user(user_name, DEFAULT_DOMAIN_ID)
            if user is None:
                raise NotFound(f"User '{user_name}' not found")
            key = AccessKey(
                access_key=base64.b32encode(secrets.token_bytes(15)).decode(),
                secret=secrets.token_urlsafe(30), user_id=user.id,
                project_id=user.default_project_id, created_at=_now())
            uow.identity.add_access_key(key)
            uow.commit()
        return key

    def list_projects(self) -> list[Project]:
        with self._uow() as uow:
            return uow.identity.list_projects()

    def set_quota(self, project: str, resource: str, limit: int) -> None:
        with self._uow(write=True) as uow:
            proj = uow.identity.find_project(project, DEFAULT_DOMAIN_ID)
            if proj is None:
                raise NotFound(f"Project '{project}' not found")
            uow.identity.set_quota(proj.id, resource, limit)
            uow.commit()

    # --- authentication -----------------------------------------------------------------

    def authenticate(self, auth: dict) -> Token:
        """Issue a token for a Keystone v3 `auth` body (password or token method)."""
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if "password" in methods:
            user_spec = (identity.get("password") or {}).get("user") or {}
            user = self._check_password(user_spec)
            method_list = ["password"]
        elif "token" in methods:
            previous = self.validate((identity.get("token") or {}).get("id", ""))
            user, method_list = previous.user, ["token"]
        else:
            raise Unauthenticated("Unsupported authentication method")
        project = self._scope_project(auth.get("scope"), user)
        return self._issue(user, project, method_list)

    def _check_password(self, spec: dict) -> User:
        ref = spec.get("id") or spec.get("name")
        if not ref or not isinstance(spec.get("password"), str):
            raise Unauthenticated("The request you have made requires authentication.")
        with self._uow() as uow:
            domain = None if spec.get("id") else _resolve_domain(spec.get("domain") or {"id": DEFAULT_DOMAIN_ID})
            user = uow.identity.find_user(ref, domain)
        if user is None or not user.enabled or not verify_password(spec["password"], user.password_hash):
            raise Unauthenticated("The request you have made requires authentication.")
        return user

    def _scope_project(self, scope: dict | None, user: User) -> Project | None:
        if not scope or "project" not in scope:
            return None  # unscoped (domain scope is treated as unscoped: no image roles)
        spec = scope["project"]
        with self._uow() as uow:
            ref = spec.get("id") or spec.get("name")
            domain = None if spec.get("id") else _resolve_domain(spec.get("domain") or {"id": DEFAULT_DOMAIN_ID})
            project = uow.identity.find_project(ref, domain) if ref else None
            if project is None or not uow.identity.roles_on(user.id, project.id):
                raise Unauthenticated("User has no access to the project")
        return project

    def _issue(self, user: User, project: Project | None, methods: list[str]) -> Token:
        token_id = secrets.token_urlsafe(32)
        now = _now()
        record = TokenRecord(_hash_token(token_id), user.id, project.id if project else None, methods,
                             base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22],
                             now, now + self.token_ttl)
        with self._uow(write=True) as uow:
            uow.identity.add_token(record)
            if secrets.randbelow(100) == 0:
                uow.identity.purge_tokens(now - timedelta(days=1))
            roles = uow.identity.roles_on(user.id, project.id) if project else set()
            uow.commit()
        return Token(token_id, user, project, expand_roles(roles), methods, record.audit_id,
                     record.issued_at, record.expires_at)

    def validate(self, token_id: str) -> Token:
        if not token_id:
            raise Unauthenticated("No token")
        with self._lock:
            hit = self._cache.get(token_id)
        if hit and hit[0] > time.monotonic() and hit[1].expires_at > _now():
            return hit[1]
        with self._uow() as uow:
            rec = uow.identity.get_token(_hash_token(token_id))
            if rec is None or rec.revoked or rec.expires_at <= _now():
                raise Unauthenticated("The token is unknown or has expired")
            user = uow.identity.find_user(rec.user_id)
            project = uow.identity.find_project(rec.project_id) if rec.project_id else None
            roles = uow.identity.roles_on(rec.user_id, rec.project_id) if project else set()
        if user is None or not user.enabled:
            raise Unauthenticated("The token's user is gone")
        token = Token(token_id, user, project, expand_roles(roles), rec.methods, rec.audit_id,
                      rec.issued_at, rec.expires_at)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[token_id] = (time.monotonic() + _CACHE_SECONDS, token)
        return token

    def revoke(self, token_id: str) -> None:
        self.validate(token_id)
        with self._uow(write=True) as uow:
            uow.identity.revoke_token(_hash_token(token_id))
            uow.commit()
        with self._lock:
            self._cache.pop(token_id, None)

    def caller(self, token_id: str) -> Caller:
        token = self.validate(token_id)
        if token.project is None:
            raise Unauthenticated("The image API needs a project-scoped token")
        return Caller(token.user.id, token.project.id, token.roles)

    def caller_for_password(self, user_name: str, password: str) -> Caller:
        """A caller from a user name and password (HTTP Basic), in the user's default project."""
        user = self._check_password({"name": user_name, "password": password})
        with self._uow() as uow:
            project = uow.identity.find_project(user.default_project_id) if user.default_project_id else None
            roles = uow.identity.roles_on(user.id, project.id) if project else set()
        if project is None or not roles:
            raise Unauthenticated("The user has no role on its default project")
        return Caller(user.id, project.id, expand_roles(roles))

    def access_key(self, access_key: str) -> AccessKeyGrant:
        with self._uow() as uow:
            key = uow.identity.get_access_key(access_key) if access_key else None
            user = uow.identity.find_user(key.user_id) if key else None
            project = uow.identity.find_project(key.project_id) if key and key.project_id else None
            roles = uow.identity.roles_on(user.id, project.id) if user and project else set()
        if key is None or user is None or not user.enabled:
            raise Unauthenticated("The access key is unknown")
        if project is None or not roles:
            raise Unauthenticated("The access key's user has no role on its project")
        return AccessKeyGrant(key.secret, Caller(user.id, project.id, expand_roles(roles)))

    def bootstrap_admin(self, password: str) -> bool:
        """Create the admin project and user once; returns True when it did."""
        with self._uow() as uow:
            if uow.identity.find_user("admin", DEFAULT_DOMAIN_ID):
                return False
        self.ensure_project("admin")
        self.create_user("admin", password, "admin", "admin")
        return True
