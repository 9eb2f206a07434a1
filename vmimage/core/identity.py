"""Identity entities (Keystone v3 shaped): what the identity port hands to faces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vmimage.core.policy import Caller

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
ROLES = ("admin", "member", "reader", "service")   # service: other services (validate tokens)


@dataclass
class Project:
    id: str
    name: str
    domain_id: str = DEFAULT_DOMAIN_ID
    enabled: bool = True
    created_at: datetime | None = None
    region: str | None = None     # the region the project acts in (IMS); None: the default


@dataclass
class User:
    id: str
    name: str
    password_hash: str
    domain_id: str = DEFAULT_DOMAIN_ID
    enabled: bool = True
    default_project_id: str | None = None
    created_at: datetime | None = None


@dataclass
class AccessKey:
    access_key: str
    secret: str
    user_id: str
    project_id: str | None
    created_at: datetime | None = None
    enabled: bool = True


@dataclass(frozen=True)
class AccessKeyGrant:
    """What an access key stands for: the secret a request signature is checked with, and the
    caller the request acts as once the signature holds."""
    secret: str
    caller: Caller


@dataclass
class Token:
    """A validated token with everything a Keystone token body shows."""
    id: str
    user: User
    project: Project | None
    roles: frozenset[str]
    methods: list[str]
    audit_id: str
    issued_at: datetime
    expires_at: datetime
    extra: dict = field(default_factory=dict)

    def as_caller(self) -> Caller:
        """The token's holder as a core caller (project "" when the token is unscoped)."""
        return Caller(self.user.id, self.project.id if self.project else "", self.roles)
