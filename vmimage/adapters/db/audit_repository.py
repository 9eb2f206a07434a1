"""SqlAuditRepository: the audit trail's events."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, String, delete, insert, or_, select, text

from vmimage.adapters.db.tables import audit_events
from vmimage.core.audit import AuditEvent

_PRUNE_LOCK = 0x61756470    # "audp": one PostgreSQL process prunes at a time

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
        # Every serving process prunes now and then; on PostgreSQL one that finds another
        # pruning leaves it to it rather than queueing behind its row locks.
        if self.conn.dialect.name == "postgresql" and \
                not self.conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PRUNE_LOCK}).scalar():
            return 0
        return self.conn.execute(delete(audit_events).where(audit_events.c.at < before)).rowcount
