"""SqlAuditRepository: the audit trail's events."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, String, delete, insert, or_, select

from vmimage.adapters.db.tables import audit_events
from vmimage.core.audit import AuditEvent

# Columns are bounded; an over-long name (a login attempt's) is cut rather than refused.
_LIMITS = {c.name: c.type.length for c in audit_events.columns if isinstance(c.type, String) and c.type.length}


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, event: AuditEvent) -> None:
        values = {k: (v[:_LIMITS[k]] if isinstance(v, str) and k in _LIMITS else v)
                  for k, v in asdict(event).items() if k != "id"}
        self.conn.execute(insert(audit_events).values(**values))

    def recent(self, since: datetime | None = None, project_id: str | None = None, kind: str | None = None,
             limit: int = 100) -> list[AuditEvent]:
        stmt = select(audit_events).order_by(audit_events.c.at.desc(), audit_events.c.id.desc()).limit(limit)
        if since is not None:
            stmt = stmt.where(audit_events.c.at >= since)
        if project_id is not None:
            stmt = stmt.where(or_(audit_events.c.project_id == project_id,
                                  audit_events.c.target_project_id == project_id))
        if kind is not None:
            stmt = stmt.where(audit_events.c.kind == kind)
        return [AuditEvent(**r._mapping) for r in self.conn.execute(stmt)]

    def prune(self, before: datetime) -> int:
        return self.conn.execute(delete(audit_events).where(audit_events.c.at < before)).rowcount
