"""Identity records only the identity adapter sees; the entities faces see are in core/identity.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vmimage.core.identity import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ROLES, AccessKey, Project, Token, User

__all__ = ["DEFAULT_DOMAIN_ID", "DEFAULT_DOMAIN_NAME", "ROLES", "AccessKey", "Project", "Token", "TokenRecord", "User"]


@dataclass
class TokenRecord:
    id_hash: str
    user_id: str
    project_id: str | None
    methods: list[str]
    audit_id: str
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False
