"""SqlNonceRepository: nonces of signed requests, shared by every process on the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from vmimage.adapters.db.tables import request_nonces


class SqlNonceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def seen(self, nonce: str) -> bool:
        return self.conn.execute(select(request_nonces.c.nonce)
                                 .where(request_nonces.c.nonce == nonce)).first() is not None

    def add(self, nonce: str, at: datetime) -> None:
        self.conn.execute(insert(request_nonces).values(nonce=nonce, seen_at=at))

    def forget_before(self, cutoff: datetime) -> None:
        self.conn.execute(delete(request_nonces).where(request_nonces.c.seen_at < cutoff))
