"""The job engine: a pool of worker threads that claim persisted jobs one at a time.

Claiming happens in a write transaction, one claim at a time across every process sharing
the database (SQLite serialises writers; PostgreSQL takes an advisory lock and locks the row
with SKIP LOCKED), so no job runs twice and each claim sees the ones before it. A free worker
serves projects in turn (core/jobs.py turn_order): only those with fewer than their limit of
jobs running, the one whose last job started longest ago first, its oldest waiting job.
Workers heartbeat their RUNNING jobs; at start, and then every stale_after, a job whose worker
is gone (same host, dead pid) or silent for too long is cleaned up by its handler and failed,
never left RUNNING (nor holding its project's running slot).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from vmimage.core.errors import VmImageError
from vmimage.core.jobs import Job, JobStatus, end_part, turn_order
from vmimage.core.log_context import enter_request, leave_request
from vmimage.core.liveness import abandoned, new_worker_id
from vmimage.core.metrics import meter
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps

log = logging.getLogger("vmimage.jobs")
Progress = Callable[[int], None]
REPORT_WAIT_SECONDS = 1.0    # after the grace, how long a job at a progress report has to stop itself
MAX_REST_SECONDS = 2.0      # the longest rest of a side-lane worker between two jobs


class StopRequested(Exception):
    """Raised into a running job at its next progress report once a clean stop's grace is over."""

    def __init__(self, at: int) -> None:
        super().__init__(f"stop requested at {at}%")
        self.at = at


class JobHandler(Protocol):
    def run(self, deps: Deps, job: Job, progress: Progress) -> dict:
        """Do the work; return the job's entities. Raise a core error to fail it."""
    def cleanup(self, deps: Deps, job: Job) -> None:
        """Undo what a failed or interrupted run left behind."""
    # Optional: `resumable_at(job, pct) -> bool`: whether a run stopped at this progress
    # report may be handed back to the queue as it is and run again from its start (pct 0:
    # stopped in its first step, before any report).


@dataclass
class EngineSettings:
    workers: int = 2
    side_lane_workers: int = 1      # workers of the side lane's jobs (inspections) alone
    # The share of its time a side-lane worker spends running jobs: after a job of d seconds
    # it rests d * (1 / duty - 1) (at most MAX_REST_SECONDS) before the next, so a burst of inspections takes at most
    # this share of a core (and of the database's commits) from the service's own requests.
    side_lane_duty: float = 0.25
    poll_seconds: float = 0.5
    heartbeat_seconds: float = 2.0
    stale_after: timedelta = timedelta(seconds=30)


class JobEngine:
    def __init__(self, deps: Deps, handlers: dict[str, JobHandler], settings: EngineSettings | None = None) -> None:
        self.deps, self.handlers = deps, handlers
        self.settings = settings or EngineSettings()
        self.worker_id = new_worker_id()
        self._stop = threading.Event()        # no more claims
        self._interrupt = threading.Event()   # running jobs stop at their next progress report
        self._stopped = threading.Event()     # heartbeats end
        self._wake = threading.Event()
        self._wake_side = threading.Event()     # the side lane's own, so neither lane eats the other's wake-up
        self._threads: list[threading.Thread] = []
        # The jobs our workers run, with their last progress report; those a clean stop took
        # over from a worker stuck in a long step (the worker leaves them alone from then on).
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Job, int | None]] = {}
        self._taken_over: set[str] = set()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        for i in range(self.settings.side_lane_workers):
            t = threading.Thread(target=self._work, args=(self._claim_side_lane, self._wake_side,
                                                          self.settings.side_lane_duty),
                                 name=f"job-worker-side-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        for target, name in ((self._heartbeat, "job-heartbeat"), (self._recover_now_and_then, "job-recovery")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, grace_seconds: float = 0) -> None:
        """No more claims; running jobs may finish within the grace (still heartbeated), then
        each stops at its next progress report: handed back to the queue when its handler says
        it may run again from its start, else cleaned up by its handler and failed as
        `interrupted`. A job whose worker is in a long step without reports (a slow download, a
        conversion) is not waited for: a second later the stop takes it over and does the same
        (handed back only when still in its first step), so every job is dealt with before the
        process ends, none left RUNNING for the next start to find."""
        self._stop.set()
        self._wake.set()
        self._wake_side.set()
        workers = [t for t in self._threads if t.name.startswith("job-worker-")]
        deadline = time.monotonic() + grace_seconds
        for t in workers:      # the heartbeat runs until they are done
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._interrupt.set()
        deadline = time.monotonic() + REPORT_WAIT_SECONDS
        for t in workers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._take_over_running()
        self._stopped.set()
        for t in self._threads:
            t.join(timeout=0 if t in workers else 10)   # a worker still in its step dies with the process

    def _take_over_running(self) -> None:
        with self._lock:
            stuck = list(self._running.values())
            self._taken_over.update(job.id for job, _ in stuck)
            self._running.clear()
        for job, reported in stuck:
            handler = self.handlers.get(job.kind)
            resumable = getattr(handler, "resumable_at", None)
            try:
                if reported is None and resumable is not None and resumable(job, 0):
                    self._hand_back(job)
                else:
                    self._finish(job, None, "interrupted", "The service stopped before the job finished")
            except Exception:  # noqa: BLE001 - the others still get their turn; recovery takes this one
                log.exception("job %s: could not be handed back at the stop", job.id)

    def running(self) -> bool:
        """Started, not stopped, and every worker thread alive."""
        return bool(self._threads) and not self._stop.is_set() and all(t.is_alive() for t in self._threads)

    def wake(self) -> None:
        """A job was submitted: do not wait for the next poll."""
        self._wake.set()
        self._wake_side.set()

    # --- recovery -------------------------------------------------------------------------

    def _abandoned(self, job: Job) -> bool:
        return abandoned(job.worker, self.worker_id, job.heartbeat_at or job.begin_time, self.deps.clock(),
                         self.settings.stale_after)

    def recover(self) -> list[str]:
        with self.deps.uow() as uow:
            running = uow.jobs.running()
        failed = []
        for job in running:
            if self._abandoned(job) and self._adopt(job):
                self._finish(job, None, "interrupted",
                             "The process running this job stopped before it finished")
                failed.append(job.id)
        return failed

    def _adopt(self, job: Job) -> bool:
        """Make an abandoned job ours before cleaning up after it, so that of several
        processes recovering at once only one cleans up (and ours heartbeats it meanwhile)."""
        with self.deps.uow(write=True) as uow:
            current = uow.jobs.get(job.id, for_update=True)
            if current is None or current.status != JobStatus.RUNNING or current.worker != job.worker:
                return False
            current.worker, current.heartbeat_at = self.worker_id, self.deps.clock()
            uow.jobs.save(current)
            uow.commit()
        return True

    # --- work -----------------------------------------------------------------------------

    def _claim(self) -> Job | None:
        with self.deps.uow(write=True) as uow:
            uow.jobs.lock_claims()
            job = None
            for project_id in turn_order(uow.jobs.turns(), self.deps.job_limits):
                job = uow.jobs.oldest_waiting(project_id)
                if job is not None:
                    break
            return self._take(uow, job)

    def _claim_side_lane(self) -> Job | None:
        """The side lane's oldest waiting job (inspections): no turns, no project slots."""
        with self.deps.uow(write=True) as uow:
            uow.jobs.lock_claims()
            return self._take(uow, uow.jobs.oldest_in_side_lane())

    def _take(self, uow: UnitOfWork, job: Job | None) -> Job | None:
        """The claimed job becomes this worker's (in the claim's transaction)."""
        if job is None:
            return None
        now = self.deps.clock()
        job.move_to(JobStatus.RUNNING)
        job.worker, job.begin_time, job.heartbeat_at = self.worker_id, now, now
        job.attempts += 1
        uow.jobs.save(job)
        uow.commit()
        return job

    def _work(self, claim: Callable[[], Job | None] | None = None, wake: threading.Event | None = None,
              duty: float = 1.0) -> None:
        claim, wake = claim or self._claim, wake or self._wake
        while not self._stop.is_set():
            try:
                job = claim()
            except Exception:  # noqa: BLE001 - the database may be briefly unavailable
                log.exception("claiming a job failed")
                job = None
            if job is None:
                wake.wait(self.settings.poll_seconds)
                wake.clear()
                continue
            started = time.monotonic()
            self.run(job)
            if duty < 1.0:      # at most MAX_REST_SECONDS: one slow job must not stall the lane
                self._stop.wait(min(MAX_REST_SECONDS, (time.monotonic() - started) * (1.0 / duty - 1.0)))

    def run(self, job: Job) -> None:
        # The job's log lines (and its stores') name the request that submitted it.
        _context, token = enter_request(job.payload.get("request_id"))
        try:
            log.info("job %s (%s) started", job.id, job.kind, extra={"job_id": job.id, "kind": job.kind})
            self._run(job)
        finally:
            leave_request(token)

    def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            self._finish(job, None, "unknown_job", f"No handler for job kind '{job.kind}'")
            return
        with self._lock:
            self._running[job.id] = (job, None)
        try:
            entities = handler.run(self.deps, job, lambda pct: self._progress(job, pct))
        except StopRequested as stop:
            if self._ours_to_end(job):
                resumable = getattr(handler, "resumable_at", None)
                if resumable is not None and resumable(job, stop.at):
                    self._hand_back(job)
                else:
                    self._finish(job, None, "interrupted", "The service stopped before the job finished")
        except VmImageError as exc:
            if self._ours_to_end(job):
                self._finish(job, None, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a job must end, whatever happened
            if self._ours_to_end(job):
                log.exception("job %s failed", job.id)
                self._finish(job, None, "internal_error", f"{type(exc).__name__}: {exc}")
        else:
            if self._ours_to_end(job):
                self._finish(job, entities, None, None)

    def _ours_to_end(self, job: Job) -> bool:
        """The worker's run is over: it ends the job unless the stop took it over meanwhile."""
        with self._lock:
            self._running.pop(job.id, None)
            return job.id not in self._taken_over

    def _progress(self, job: Job, pct: int) -> None:
        job_id = job.id
        if self._interrupt.is_set():
            raise StopRequested(pct)
        with self._lock:
            if job_id in self._running:
                self._running[job_id] = (job, pct)
        with self.deps.uow(write=True) as uow:
            current = uow.jobs.get(job_id)
            if current is not None and current.status == JobStatus.RUNNING:
                current.progress = max(0, min(99, pct))
                current.heartbeat_at = self.deps.clock()
                uow.jobs.save(current)
                uow.commit()

    def _hand_back(self, job: Job) -> None:
        """Back to the queue, as it is, for the next start or another process to run from
        its start. Its heartbeat is now: an import lock it holds stays live for as long as a
        running job's would."""
        with self.deps.uow(write=True) as uow:
            current = uow.jobs.get(job.id, for_update=True)
            if current is None or current.status != JobStatus.RUNNING or current.worker != self.worker_id:
                return
            current.move_to(JobStatus.INIT)
            current.worker, current.begin_time, current.progress = None, None, 0
            current.heartbeat_at = self.deps.clock()
            uow.jobs.save(current)
            uow.commit()
        log.info("job %s (%s) handed back to the queue", job.id, job.kind,
                 extra={"job_id": job.id, "kind": job.kind, "outcome": "handed back"})

    def _finish(self, job: Job, entities: dict | None, error_code: str | None, reason: str | None) -> None:
        if error_code is not None:
            handler = self.handlers.get(job.kind)
            if handler is not None:
                try:
                    handler.cleanup(self.deps, job)
                except Exception:  # noqa: BLE001
                    log.exception("cleanup of job %s failed", job.id)
        with self.deps.uow(write=True) as uow:
            current = uow.jobs.get(job.id, for_update=True)
            if current is None or current.status != JobStatus.RUNNING:
                return    # ended by someone else meanwhile (an import lock taken over)
            current.move_to(JobStatus.FAIL if error_code else JobStatus.SUCCESS)
            if entities is not None:
                current.entities = {**current.entities, **entities}
            current.progress = 100 if error_code is None else current.progress
            current.error_code, current.fail_reason = error_code, reason
            current.end_time = ended = self.deps.clock()
            uow.jobs.save(current)
            for part_id in current.entities.get("parts", []):
                part = uow.jobs.get(part_id, for_update=True)
                if part is not None:
                    end_part(part, current)
                    uow.jobs.save(part)
            uow.commit()
        log.info("job %s (%s) ended: %s", job.id, job.kind, error_code or "success",
                 extra={"job_id": job.id, "kind": job.kind, "outcome": error_code or "success"})
        meter().job_finished(current.kind, current.status.value, (ended - (current.begin_time or ended)).total_seconds())

    def _heartbeat(self) -> None:
        while not self._stopped.wait(self.settings.heartbeat_seconds):
            try:
                with self.deps.uow(write=True) as uow:
                    uow.jobs.heartbeat(self.worker_id, self.deps.clock())
                    uow.commit()
            except Exception:  # noqa: BLE001
                log.exception("job heartbeat failed")

    def _recover_now_and_then(self) -> None:
        """Another process that died leaves its jobs RUNNING, holding their projects' running
        slots: the survivors take them over too, not only a restart. (A thread apart from the
        heartbeat, whose beats a slow cleanup must not delay.)"""
        while not self._stop.wait(self.settings.stale_after.total_seconds()):
            try:
                if self.recover():
                    self.wake()
            except Exception:  # noqa: BLE001
                log.exception("recovering abandoned jobs failed")
