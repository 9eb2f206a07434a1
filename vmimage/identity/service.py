"""Identity use cases: administration, authentication, token validation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from anyio.to_thread import run_sync

from vmimage.core import audit
from vmimage.core.errors import Duplicate, Forbidden, Invalid, LoginFailed, NotFound, TooManyRequests, Unauthenticated
from vmimage.core.policy import Caller, expand_roles
from vmimage.core.identity import (DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ROLES, AccessKey, AccessKeyGrant,
                                   Project, Token, User)
from vmimage.identity.limiter import (Failures, address_subject, after_failure, blocked_from, retry_after, taken_back,
                                      user_subject)
from vmimage.identity.model import TokenRecord
from vmimage.identity.passwords import PasswordChecks, hash_password, verify_password
from vmimage.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory, RevocationFeed
from vmimage.identity.secret_box import SecretBox

_CACHE_SECONDS = 30.0
# Checked when the user does not exist, so that costs what a wrong password costs.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(24))


@dataclass(frozen=True)
class _Remembered:
    """A validated token, trusted until `until` (monotonic) while the revocation epoch stays."""
    until: float
    epoch: int
    token: Token


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


def _refuse_if_any_blocked(found: dict[str, Failures], subjects: list[str], now: datetime | None = None) -> None:
    now = now or _now()
    waits = [w for w in (retry_after(found.get(s), now) for s in subjects) if w is not None]
    if waits:
        raise TooManyRequests("Too many failed logins; try again later", retry_after=max(waits))


def _braked(ref: str, domain: str | None, origin: audit.Origin) -> audit.AuditEvent:
    """A login refused by the brake, its password unchecked."""
    return audit.event(audit.LOGIN, ref, outcome=audit.BRAKED, user_name=ref, detail=domain, origin=origin)


def _key_event(kind: str, key: AccessKey) -> audit.AuditEvent:
    """An access key's event: its id (public, unlike its secret), its user and project."""
    return audit.event(kind, key.access_key, target_project_id=key.project_id, detail=f"user {key.user_id}")


def may_inspect_tokens_of_others(token: Token) -> bool:
    """Admins and services (the `service` role, as Keystone's policy names it)."""
    return bool({"admin", "service"} & token.roles)


class IdentityService:
    """Keystone-compatible identity held in vmimage's own database (the core's Identity port)."""

    def __init__(self, uow: IdentityUnitOfWorkFactory, token_ttl: timedelta = timedelta(hours=1),
                 secrets_box: SecretBox | None = None, password_checks: PasswordChecks | None = None,
                 revocations: RevocationFeed | None = None) -> None:
        self._uow = uow
        self.token_ttl = token_ttl
        self._box = secrets_box     # seals access-key secrets at rest
        self._password_checks = password_checks or PasswordChecks()
        # Validated tokens are remembered for _CACHE_SECONDS, and only while no revocation
        # was committed anywhere since (the feed's epoch); without a feed, never.
        self._revocations = revocations
        self._cache: dict[str, _Remembered] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._password_checks.close()
        if self._revocations is not None:
            self._revocations.close()

    # --- administration -----------------------------------------------------------------

    def create_project(self, name: str, region: str | None = None) -> Project:
        """region: where the project acts in the dialects whose projects are regional (IMS)."""
        with self._uow(write=True) as uow:
            if uow.identity.find_project(name, DEFAULT_DOMAIN_ID):
                raise Duplicate(f"Project '{name}' exists")
            project = Project(uuid.uuid4().hex, name, created_at=_now(), region=region)
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
            if role not in uow.identity.roles_on(user.id, proj.id):
                uow.identity.assign_role(user.id, proj.id, role)
                uow.audit.add(audit.event(audit.ROLE_GRANT, user.id, target_project_id=proj.id, detail=role))
            uow.commit()
        return user

    def list_users(self) -> list[tuple[User, list[tuple[str, str]]]]:
        """Every user with their (project id, role) grants."""
        with self._uow() as uow:
            found = uow.identity.list_users()
            grants: dict[str, list[tuple[str, str]]] = {}
            for user_id, project_id, role in uow.identity.role_assignments():
                grants.setdefault(user_id, []).append((project_id, role))
        return [(user, grants.get(user.id, [])) for user in found]

    def grant_role(self, user_name: str, project: str, role: str) -> tuple[User, Project]:
        """The user holds the role on the project: its tokens may be scoped to it, its access
        keys may act in it (a request naming the project)."""
        if role not in ROLES:
            raise Invalid(f"Role must be one of {', '.join(ROLES)}")
        with self._uow(write=True) as uow:
            user = self._user(uow, user_name)
            proj = self._project(uow, project)
            if role not in uow.identity.roles_on(user.id, proj.id):
                uow.identity.assign_role(user.id, proj.id, role)
                uow.audit.add(audit.event(audit.ROLE_GRANT, user.id, target_project_id=proj.id, detail=role))
            uow.commit()
        return user, proj

    def revoke_role(self, user_name: str, project: str, role: str) -> tuple[User, Project]:
        """Effective at once in every process (cached tokens are dropped); NotFound when the
        user does not hold it."""
        with self._uow(write=True) as uow:
            user = self._user(uow, user_name)
            proj = self._project(uow, project)
            if not uow.identity.remove_role(user.id, proj.id, role):
                raise NotFound(f"User '{user.name}' holds no role '{role}' on project '{proj.name}'")
            uow.identity.note_revocation()
            uow.audit.add(audit.event(audit.ROLE_REVOKE, user.id, target_project_id=proj.id, detail=role))
            uow.commit()
        return user, proj

    def list_roles(self, user_name: str | None = None, project: str | None = None) -> list[tuple[User, Project, str]]:
        with self._uow() as uow:
            user = self._user(uow, user_name) if user_name is not None else None
            proj = self._project(uow, project) if project is not None else None
            found = uow.identity.role_assignments(user.id if user else None, proj.id if proj else None)
            users = {u: uow.identity.find_user(u) for u in {u for u, _, _ in found}}
            projects = {p: uow.identity.find_project(p) for p in {p for _, p, _ in found}}
        return [(u, p, role) for user_id, project_id, role in found
                if (u := users[user_id]) is not None and (p := projects[project_id]) is not None]

    @staticmethod
    def _project(uow: IdentityUnitOfWork, ref: str) -> Project:
        found = uow.identity.find_project(ref, DEFAULT_DOMAIN_ID)
        if found is None:
            raise NotFound(f"Project '{ref}' not found")
        return found

    def create_access_key(self, user_name: str) -> AccessKey:
        with self._uow(write=True) as uow:
            user = uow.identity.find_user(user_name, DEFAULT_DOMAIN_ID)
            if user is None:
                raise NotFound(f"User '{user_name}' not found")
            key = AccessKey(
                access_key=base64.b32encode(secrets.token_bytes(15)).decode(),
                secret=secrets.token_urlsafe(30), user_id=user.id,
                project_id=user.default_project_id, created_at=_now())
            uow.identity.add_access_key(replace(key, secret=self._seal(key)))
            uow.audit.add(_key_event(audit.ACCESS_KEY_CREATE, key))
            uow.commit()
        return key      # the only time the secret is shown

    def list_access_keys(self, user_name: str | None = None) -> list[tuple[AccessKey, User]]:
        """Every access key (of one user) with its user; the secrets stay sealed."""
        with self._uow() as uow:
            only = self._user(uow, user_name) if user_name is not None else None
            keys = uow.identity.list_access_keys(only.id if only else None)
            users = {u: uow.identity.find_user(u) for u in {k.user_id for k in keys}}
        return [(key, user) for key in keys if (user := users[key.user_id]) is not None]

    def set_access_key_enabled(self, access_key: str, enabled: bool) -> AccessKey:
        """A disabled key is refused from its next request on, in every process."""
        with self._uow(write=True) as uow:
            key = self._key(uow, access_key)
            uow.identity.set_access_key_enabled(access_key, enabled)
            if not enabled:
                uow.identity.note_revocation()
            uow.audit.add(_key_event(audit.ACCESS_KEY_ENABLE if enabled else audit.ACCESS_KEY_DISABLE, key))
            uow.commit()
        return replace(key, secret="", enabled=enabled)

    def delete_access_key(self, access_key: str) -> AccessKey:
        with self._uow(write=True) as uow:
            key = self._key(uow, access_key)
            uow.identity.delete_access_key(access_key)
            uow.identity.note_revocation()
            uow.audit.add(_key_event(audit.ACCESS_KEY_DELETE, key))
            uow.commit()
        return replace(key, secret="")

    def set_user_enabled(self, user_name: str, enabled: bool) -> tuple[User, int]:
        """Disabling a user revokes their tokens (they stay dead once the user is enabled
        again, as Keystone's) and stops their logins and access keys, in every process at once;
        the user and how many tokens were revoked."""
        with self._uow(write=True) as uow:
            user = self._user(uow, user_name)
            uow.identity.set_user_enabled(user.id, enabled)
            revoked = 0
            if not enabled:
                revoked = uow.identity.revoke_tokens_of(user.id)
                uow.identity.note_revocation()
            uow.audit.add(audit.event(audit.USER_ENABLE if enabled else audit.USER_DISABLE, user.id,
                                      target_project_id=user.default_project_id,
                                      detail=None if enabled else f"{revoked} tokens revoked"))
            uow.commit()
        return replace(user, enabled=enabled), revoked

    def delete_user(self, user_name: str) -> tuple[User, int, int]:
        """The user goes with their role assignments, access keys and tokens; the user, how
        many keys and how many tokens."""
        with self._uow(write=True) as uow:
            user = self._user(uow, user_name)
            keys = uow.identity.delete_access_keys_of(user.id)
            tokens = uow.identity.delete_tokens_of(user.id)
            uow.identity.delete_user(user.id)
            uow.identity.note_revocation()
            uow.audit.add(audit.event(audit.USER_DELETE, user.id, target_project_id=user.default_project_id,
                                      detail=f"{keys} access keys, {tokens} tokens deleted"))
            uow.commit()
        return user, keys, tokens

    @staticmethod
    def _user(uow: IdentityUnitOfWork, ref: str) -> User:
        """A user of the default domain by name, else any user by id."""
        user = uow.identity.find_user(ref, DEFAULT_DOMAIN_ID) or uow.identity.find_user(ref)
        if user is None or (user.id != ref and user.domain_id != DEFAULT_DOMAIN_ID):
            raise NotFound(f"User '{ref}' not found")
        return user

    @staticmethod
    def _key(uow: IdentityUnitOfWork, access_key: str) -> AccessKey:
        key = uow.identity.get_access_key(access_key)
        if key is None:
            raise NotFound(f"Access key '{access_key}' not found")
        return key

    def _seal(self, key: AccessKey) -> str:
        if self._box is None:
            raise Invalid("No secret key to keep access-key secrets with")
        return self._box.seal(key.secret, key.access_key)

    def _open(self, key: AccessKey) -> str:
        if self._box is None:
            raise Invalid("No secret key to open access-key secrets with")
        return self._box.open(key.secret, key.access_key)

    def seal_plaintext_secrets(self) -> int:
        """Encrypt access-key secrets an earlier version stored in plaintext; how many."""
        with self._uow(write=True) as uow:
            plain = [k for k in uow.identity.list_access_keys() if not SecretBox.is_sealed(k.secret)]
            for key in plain:
                uow.identity.set_access_key_secret(key.access_key, self._seal(key))
            uow.commit()
        return len(plain)

    def list_projects(self) -> list[Project]:
        with self._uow() as uow:
            return uow.identity.list_projects()

    def find_project(self, ref: str) -> Project | None:
        """The project of that id, else of that name (in any domain)."""
        with self._uow() as uow:
            return uow.identity.find_project(ref)

    def set_quota(self, project: str, resource: str, limit: int) -> None:
        with self._uow(write=True) as uow:
            proj = uow.identity.find_project(project, DEFAULT_DOMAIN_ID)
            if proj is None:
                raise NotFound(f"Project '{project}' not found")
            uow.identity.set_quota(proj.id, resource, limit)
            uow.commit()

    # --- authentication -----------------------------------------------------------------

    async def authenticate(self, auth: dict, client: str | None = None) -> Token:
        """Issue a token for a Keystone v3 `auth` body (password or token method).

        client: the caller's address, for the failed-login brake."""
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if "password" in methods:
            user_spec = (identity.get("password") or {}).get("user") or {}
            user = await self._check_password(user_spec, client)
            method_list = ["password"]
        elif "token" in methods:
            previous = await run_sync(self.validate, (identity.get("token") or {}).get("id", ""))
            user, method_list = previous.user, ["token"]
        else:
            raise Unauthenticated("Unsupported authentication method")
        return await run_sync(self._scoped_token, auth.get("scope"), user, method_list)

    def _scoped_token(self, scope: dict | None, user: User, methods: list[str]) -> Token:
        return self._issue(user, self._scope_project(scope, user), methods)

    async def _check_password(self, spec: dict, client: str | None) -> User:
        ref = spec.get("id") or spec.get("name")
        if not ref or not isinstance(ref, str) or not isinstance(spec.get("password"), str):
            raise Unauthenticated("The request you have made requires authentication.")
        domain = None if spec.get("id") else _resolve_domain(spec.get("domain") or {"id": DEFAULT_DOMAIN_ID})
        subjects = [user_subject(domain, ref)] + ([address_subject(client)] if client else [])
        origin = audit.current_origin()
        # A braked subject is refused at once, without waiting in line for a check.
        await run_sync(self._refuse_if_blocked, subjects, ref, domain, origin)
        return await self._password_checks.run(self._check_password_in_turn, ref, domain, spec["password"],
                                               subjects, origin)

    def _check_password_in_turn(self, ref: str, domain: str | None, password: str, subjects: list[str],
                                origin: audit.Origin) -> User:
        """On a password-check thread: the attempt is counted, then the password hashed."""
        user, braking = self._count_attempt(subjects, ref, domain, origin)
        # An unknown user costs the same scrypt as a wrong password: timing tells nothing.
        stored = user.password_hash if user is not None else _DUMMY_HASH
        if not verify_password(password, stored) or user is None or not user.enabled:
            failed = audit.event(audit.LOGIN, ref, outcome=audit.FAILURE, user_name=ref,
                                 user_id=user.id if user else None, origin=origin,
                                 detail="brake engaged" if braking else domain)
            if braking:
                self._brake_from_now(subjects[0], failed)
            else:
                audit.record(self._uow, failed)
            raise LoginFailed("The request you have made requires authentication.")
        self._take_back_attempt(subjects)
        return user

    # --- failed-login brake (identity/limiter.py) ----------------------------------------

    def _refuse_if_blocked(self, subjects: list[str], ref: str, domain: str | None, origin: audit.Origin) -> None:
        try:
            with self._uow() as uow:
                _refuse_if_any_blocked(uow.identity.failures(subjects), subjects)
        except TooManyRequests:
            audit.record(self._uow, _braked(ref, domain, origin))
            raise

    def _count_attempt(self, subjects: list[str], ref: str, domain: str | None,
                       origin: audit.Origin) -> tuple[User | None, bool]:
        """Count the attempt as a failure before its password is checked (a success takes it
        back), refused if a subject is braked by now. The user it names, if any, and whether
        the count blocks the user from now on."""
        # Each retry follows another process creating one of these counters (PostgreSQL).
        for attempt in range(4):
            try:
                with self._uow(write=True) as uow:
                    found = uow.identity.failures(subjects, for_update=True)
                    now = _now()
                    _refuse_if_any_blocked(found, subjects, now)
                    counted = [after_failure(found.get(subject), subject, now) for subject in subjects]
                    for record in counted:
                        uow.identity.save_failures(record, new=record.subject not in found)
                    user = uow.identity.find_user(ref, domain)
                    uow.commit()
                return user, counted[0].blocked_until is not None
            except Duplicate:
                if attempt == 3:
                    raise
            except TooManyRequests:     # braked by now (another attempt's failure)
                audit.record(self._uow, _braked(ref, domain, origin))
                raise
        raise AssertionError("unreachable")

    def _brake_from_now(self, user_subject: str, failed: audit.AuditEvent) -> None:
        """A failure that blocks its user: the block runs from now, the failure known, rather
        than from the count before the hash; the failure's audit event in the same write."""
        with self._uow(write=True) as uow:
            found = uow.identity.failures([user_subject], for_update=True)
            if user_subject in found:
                uow.identity.save_failures(blocked_from(found[user_subject], _now()), new=False)
            uow.audit.add(failed)
            uow.commit()

    def _take_back_attempt(self, subjects: list[str]) -> None:
        """A success: the user's count starts over, the address's loses this attempt."""
        with self._uow(write=True) as uow:
            found = uow.identity.failures(subjects, for_update=True)
            uow.identity.clear_failures(subjects[0])
            for subject in subjects[1:]:
                if subject in found:
                    uow.identity.save_failures(taken_back(found[subject]), new=False)
            uow.commit()

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

    def _epoch(self) -> int | None:
        return self._revocations.epoch() if self._revocations is not None else None

    def _remembered(self, token_id: str) -> Token | None:
        """The token validated recently, if no revocation happened anywhere since."""
        with self._lock:
            hit = self._cache.get(token_id)
        if hit is None or hit.until <= time.monotonic() or hit.token.expires_at <= _now():
            return None
        epoch = self._epoch()
        return hit.token if epoch is not None and hit.epoch == epoch else None

    def validate(self, token_id: str) -> Token:
        if not token_id:
            raise Unauthenticated("No token")
        known = self._remembered(token_id)
        if known is not None:
            return known
        epoch = self._epoch()       # before reading: a revocation from now on makes this stale
        with self._uow() as uow:
            rec = uow.identity.get_token(_hash_token(token_id))
            if rec is None or rec.revoked or rec.expires_at <= _now():
                raise Unauthenticated("The token is unknown or has expired")
            user = uow.identity.find_user(rec.user_id)
            project = uow.identity.find_project(rec.project_id) if rec.project_id else None
            roles = uow.identity.roles_on(rec.user_id, project.id) if project else set()
        if user is None or not user.enabled:
            raise Unauthenticated("The token's user is gone")
        if project is not None and not roles:     # as Keystone: a revoked role ends the project's tokens
            raise Unauthenticated("The token's user holds no role on its project any more")
        token = Token(token_id, user, project, expand_roles(roles), rec.methods, rec.audit_id,
                      rec.issued_at, rec.expires_at)
        if epoch is not None:
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[token_id] = _Remembered(time.monotonic() + _CACHE_SECONDS, epoch, token)
        return token

    def subject_token(self, auth_token_id: str, subject_token_id: str) -> Token:
        """The token a caller asks about (GET/HEAD/DELETE /v3/auth/tokens), if it may.

        Keystone's rule: the token's own user, an admin or a service; anyone else is
        Forbidden and learns nothing about the token (which stays valid)."""
        me = self.validate(auth_token_id)
        try:
            subject = self.validate(subject_token_id)
        except Unauthenticated:
            subject = None
        if not may_inspect_tokens_of_others(me) and (subject is None or subject.user.id != me.user.id):
            raise Forbidden("You are not authorized to inspect or revoke another user's token")
        if subject is None:
            raise NotFound("Could not find token")
        return subject

    def revoke(self, token_id: str, by: Token | None = None) -> None:
        """by: the token of whoever revokes it (the token's own user when not given)."""
        token = self.validate(token_id)
        who = by or token
        with self._uow(write=True) as uow:
            uow.identity.revoke_token(_hash_token(token_id))
            uow.identity.note_revocation()
            # The token's audit id names it; the token itself never goes into the trail.
            uow.audit.add(audit.event(audit.TOKEN_REVOKE, token.audit_id,
                                      target_project_id=token.project.id if token.project else None,
                                      detail=f"user {token.user.id}", user_id=who.user.id, user_name=who.user.name,
                                      project_id=who.project.id if who.project else None))
            uow.commit()
        with self._lock:
            self._cache.pop(token_id, None)

    def caller(self, token_id: str) -> Caller:
        token = self.validate(token_id)
        if token.project is None:
            raise Unauthenticated("The image API needs a project-scoped token")
        return Caller(token.user.id, token.project.id, token.roles)

    def cached_caller(self, token_id: str) -> Caller | None:
        token = self._remembered(token_id)
        if token is None or token.project is None:
            return None
        return Caller(token.user.id, token.project.id, token.roles)

    async def caller_for_password(self, user_name: str, password: str, client: str | None = None) -> Caller:
        """A caller from a user name and password (HTTP Basic), in the user's default project."""
        user = await self._check_password({"name": user_name, "password": password}, client)
        return await run_sync(self._default_project_caller, user)

    def _default_project_caller(self, user: User) -> Caller:
        with self._uow() as uow:
            project = uow.identity.find_project(user.default_project_id) if user.default_project_id else None
            roles = uow.identity.roles_on(user.id, project.id) if project else set()
        if project is None or not roles:
            raise Unauthenticated("The user has no role on its default project")
        return Caller(user.id, project.id, expand_roles(roles), region=project.region)

    def access_key(self, access_key: str) -> AccessKeyGrant:
        with self._uow() as uow:
            key = uow.identity.get_access_key(access_key) if access_key else None
            user = uow.identity.find_user(key.user_id) if key else None
            project = uow.identity.find_project(key.project_id) if key and key.project_id else None
            roles = uow.identity.roles_on(user.id, project.id) if user and project else set()
        if key is None or not key.enabled or user is None or not user.enabled:
            raise Unauthenticated("The access key is unknown or disabled")
        if project is None or not roles:
            raise Unauthenticated("The access key's user has no role on its project")
        return AccessKeyGrant(self._open(key), Caller(user.id, project.id, expand_roles(roles), region=project.region))

    def caller_in_project(self, caller: Caller, project: str) -> Caller:
        with self._uow() as uow:
            found = uow.identity.find_project(project)
            roles = uow.identity.roles_on(caller.user_id, found.id) if found is not None else set()
        if found is None or not found.enabled or not roles:
            raise Forbidden(f"The user holds no role on project '{project}'", field="project_id")
        return Caller(caller.user_id, found.id, expand_roles(roles), region=found.region)

    def bootstrap_admin(self, password: str) -> bool:
        """Create the admin project and user once; returns True when it did."""
        with self._uow() as uow:
            if uow.identity.find_user("admin", DEFAULT_DOMAIN_ID):
                return False
        self.ensure_project("admin")
        self.create_user("admin", password, "admin", "admin")
        return True
