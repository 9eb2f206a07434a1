"""SqlUploadRepository: which process owns each upload in flight, and its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from vmimage.adapters.db.tables import uploads
from vmimage.core.ports import Upload


class SqlUploadRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def begin(self, upload: Upload) -> None:
        self.conn.execute(delete(uploads).where(uploads.c.image_id == upload.image_id))
        self.conn.execute(insert(uploads).values(**vars(upload)))

    def end(self, image_id: str, worker: str) -> None:
        self.conn.execute(delete(uploads).where(uploads.c.image_id == image_id, uploads.c.worker == worker))

    def list(self) -> list[Upload]:
        return [Upload(**r._mapping) for r in self.conn.execute(select(uploads).order_by(uploads.c.started_at))]

    def get(self, image_id: str) -> Upload | None:
        row = self.conn.execute(select(uploads).where(uploads.c.image_id == image_id)).first()
        return Upload(**row._mapping) if row else None

    def heartbeat(self, worker: str, now: datetime) -> None:
        self.conn.execute(update(uploads).where(uploads.c.worker == worker).values(heartbeat_at=now))

    def take_over(self, upload: Upload, worker: str, now: datetime) -> bool:
        done = self.conn.execute(update(uploads).where(
            uploads.c.image_id == upload.image_id, uploads.c.worker == upload.worker,
            uploads.c.heartbeat_at == upload.heartbeat_at).values(worker=worker, heartbeat_at=now))
        return done.rowcount == 1
