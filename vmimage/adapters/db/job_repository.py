"""SqlJobRepository: the persisted job queue. Claims lock rows so no job runs twice."""

from __future__ import annotations

import builtins
import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, tuple_, update

from vmimage.adapters.db.listing import fetch_page
from vmimage.adapters.db.tables import jobs
from vmimage.core.jobs import PART_KIND, Job, JobQuery, JobStatus
from vmimage.core.paging import Page


def _job(row) -> Job:
    m = dict(row._mapping)
    m["status"] = JobStatus(m["status"])
    m["payload"], m["entities"] = json.loads(m["payload"]), json.loads(m["entities"])
    return Job(**m)


def _values(job: Job) -> dict:
    return {"id": job.id, "kind": job.kind, "project_id": job.project_id, "status": job.status.value,
            "progress": job.progress, "attempts": job.attempts, "payload": json.dumps(job.payload), "entities": json.dumps(job.entities),
            "error_code": job.error_code, "fail_reason": job.fail_reason, "worker": job.worker,
            "heartbeat_at": job.heartbeat_at, "created_at": job.created_at, "begin_time": job.begin_time,
            "end_time": job.end_time, "image_id": job.image_id}


class SqlJobRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, job: Job) -> None:
        self.conn.execute(insert(jobs).values(**_values(job)))

    def save(self, job: Job) -> None:
        values = _values(job)
        del values["id"]
        self.conn.execute(update(jobs).where(jobs.c.id == job.id).values(**values))

    def get(self, job_id: str, for_update: bool = False) -> Job | None:
        stmt = select(jobs).where(jobs.c.id == job_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return _job(row) if row else None

    def page(self, query: JobQuery) -> Page[Job]:
        conds = []
        if query.project_id is not None:
            conds.append(jobs.c.project_id == query.project_id)
        if query.kinds is not None:
            conds.append(jobs.c.kind.in_(query.kinds))
        if query.ids is not None:
            conds.append(jobs.c.id.in_(query.ids))
        if query.statuses is not None:
            conds.append(jobs.c.status.in_([s.value for s in query.statuses]))
        keys = (jobs.c.created_at, jobs.c.id)
        after = None
        if query.page.marker is not None:
            marker = self.conn.execute(select(*keys).where(jobs.c.id == query.page.marker)).first()
            if marker is not None:
                after = tuple_(*keys) > tuple_(*marker) if query.oldest_first else tuple_(*keys) < tuple_(*marker)
        order = [k.asc() for k in keys] if query.oldest_first else [k.desc() for k in keys]
        page = fetch_page(self.conn, select(jobs).where(*conds), order, query.page, after)
        return Page([_job(r) for r in page.items], page.more, page.total)

    def for_image(self, image_id: str) -> builtins.list[Job]:
        stmt = select(jobs).where(jobs.c.image_id == image_id).order_by(jobs.c.created_at, jobs.c.id)
        return [_job(r) for r in self.conn.execute(stmt)]

    def next_waiting(self) -> Job | None:
        """The oldest INIT job, locked; with PostgreSQL other workers skip it (SKIP LOCKED).
        Parts of jobs are never handed out (their parent's worker moves them)."""
        stmt = (select(jobs).where(jobs.c.status == JobStatus.INIT.value, jobs.c.kind != PART_KIND)
                .order_by(jobs.c.created_at).limit(1))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = self.conn.execute(stmt).first()
        return _job(row) if row else None

    def running(self) -> builtins.list[Job]:
        return [_job(r) for r in self.conn.execute(select(jobs).where(jobs.c.status == JobStatus.RUNNING.value))]

    def heartbeat(self, worker: str, now: datetime) -> None:
        self.conn.execute(update(jobs).where(jobs.c.worker == worker, jobs.c.status == JobStatus.RUNNING.value)
                          .values(heartbeat_at=now))
