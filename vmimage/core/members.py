"""Image members: projects an image is shared with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vmimage.core.images import MemberStatus


@dataclass
class Member:
    image_id: str
    member_id: str
    status: MemberStatus = MemberStatus.PENDING
    created_at: datetime | None = None
    updated_at: datetime | None = None
