"""SqlJobRepository: the persisted job queue. Claims lock rows so no job runs twice.

SQLite serialises every write transaction (BEGIN IMMEDIATE), which makes counting and adding
one step, and one claim at a time, without more. PostgreSQL takes transaction-scoped advisory
locks of two keys (a key space apart from the one-key locks of image quotas and start-up).
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text, tuple_, update

from vmimage.adapters.db.listing import fetch_page
from vmimage.adapters.db.tables import jobs
from vmimage.core.jobs import PART_KIND, SIDE_LANE_KINDS, Job, JobQuery, JobStatus, ProjectTurn
from vmimage.core.paging import Page


_QUEUE_LOCK = 0x6A6F6271    # "jobq", with the project's hash: one project's line of waiting jobs
_CLAIM_LOCK = 0x6A6F6263    # "jobc": claiming a job, whatever its project

_COUNTS: dict[str, str] = {}     # the counts query's SQL, by dialect
# The main queue's waiting jobs: neither parts nor the side lane's.
_waiting = (jobs.c.status == JobStatus.INIT.value, jobs.c.kind.not_in((PART_KIND, *SIDE_LANE_KINDS)))


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

    def lock_queue(self, project_id: str) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(:p))"),
                              {"k": _QUEUE_LOCK, "p": project_id})

    def waiting_count(self, project_id: str) -> int:
        return self.conn.execute(select(func.count()).select_from(jobs)
                                 .where(jobs.c.project_id == project_id, *_waiting)).scalar_one()

    def lock_claims(self) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:k, 0)"), {"k": _CLAIM_LOCK})

    def turns(self) -> builtins.list[ProjectTurn]:
        waiting = (select(jobs.c.project_id, func.min(jobs.c.created_at).label("oldest_waiting"))
                   .where(*_waiting).group_by(jobs.c.project_id).subquery("waiting"))
        held, past = jobs.alias("held"), jobs.alias("past")
        running = (select(func.count()).select_from(held)
                   .where(held.c.project_id == waiting.c.project_id, held.c.status == JobStatus.RUNNING.value,
                          held.c.kind.not_in((PART_KIND, *SIDE_LANE_KINDS))).scalar_subquery())
        # The newest start, walking the (project_id, begin_time) index backwards.
        last_started = (select(past.c.begin_time)
                        .where(past.c.project_id == waiting.c.project_id, past.c.begin_time.is_not(None),
                               past.c.kind.not_in((PART_KIND, *SIDE_LANE_KINDS)))
                        .order_by(past.c.begin_time.desc()).limit(1).scalar_subquery())
        rows = self.conn.execute(select(waiting.c.project_id, running.label("running"),
                                        last_started.label("last_started"), waiting.c.oldest_waiting))
        return [ProjectTurn(r.project_id, r.running, r.last_started, r.oldest_waiting) for r in rows]

    def oldest_waiting(self, project_id: str) -> Job | None:
        stmt = (select(jobs).where(jobs.c.project_id == project_id, *_waiting)
                .order_by(jobs.c.created_at, jobs.c.id).limit(1))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = self.conn.execute(stmt).first()
        return _job(row) if row else None

    def oldest_in_side_lane(self) -> Job | None:
        stmt = (select(jobs).where(jobs.c.status == JobStatus.INIT.value, jobs.c.kind.in_(SIDE_LANE_KINDS))
                .order_by(jobs.c.created_at, jobs.c.id).limit(1))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = self.conn.execute(stmt).first()
        return _job(row) if row else None

    def running(self) -> builtins.list[Job]:
        return [_job(r) for r in self.conn.execute(select(jobs).where(jobs.c.status == JobStatus.RUNNING.value))]

    def counts(self) -> dict[tuple[str, str], int]:
        # Asked on every metrics scrape: the statement's SQL is rendered once per dialect and
        # run as driver SQL (the statement machinery cost more than the query).
        sql = _COUNTS.get(self.conn.dialect.name)
        if sql is None:     # its one parameter is a constant, written into the SQL
            sql = _COUNTS[self.conn.dialect.name] = str(
                select(jobs.c.kind, jobs.c.status, func.count()).where(jobs.c.kind != PART_KIND)
                .group_by(jobs.c.kind, jobs.c.status)
                .compile(dialect=self.conn.dialect, compile_kwargs={"literal_binds": True}))
        return {(kind, status): count for kind, status, count in self.conn.exec_driver_sql(sql)}

    def heartbeat(self, worker: str, now: datetime) -> None:
        self.conn.execute(update(jobs).where(jobs.c.worker == worker, jobs.c.status == JobStatus.RUNNING.value)
                          .values(heartbeat_at=now))
