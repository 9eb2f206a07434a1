"""SqlBucketGrantRepository: which project may use which bucket."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from vmimage.adapters.db.tables import bucket_grants
from vmimage.core.buckets import BucketGrant


class SqlBucketGrantRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, grant: BucketGrant) -> None:
        self.conn.execute(insert(bucket_grants).values(bucket=grant.bucket, project_id=grant.project_id,
                                                       created_at=grant.created_at))

    def remove(self, bucket: str, project_id: str) -> bool:
        gone = self.conn.execute(delete(bucket_grants).where(bucket_grants.c.bucket == bucket,
                                                             bucket_grants.c.project_id == project_id))
        return gone.rowcount > 0

    def list(self, project_id: str | None = None, bucket: str | None = None) -> list[BucketGrant]:
        stmt = select(bucket_grants).order_by(bucket_grants.c.bucket, bucket_grants.c.project_id)
        if project_id is not None:
            stmt = stmt.where(bucket_grants.c.project_id == project_id)
        if bucket is not None:
            stmt = stmt.where(bucket_grants.c.bucket == bucket)
        return [BucketGrant(**row._mapping) for row in self.conn.execute(stmt)]

    def is_granted(self, bucket: str, project_id: str) -> bool:
        return self.conn.execute(select(bucket_grants.c.bucket).where(
            bucket_grants.c.bucket == bucket, bucket_grants.c.project_id == project_id)).first() is not None
