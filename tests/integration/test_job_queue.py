"""The job queue on a real database (SQLite; PostgreSQL with VMIMAGE_TEST_DB=postgres), run by
real job engines: projects served in turn, the running limit held over several engines sharing
the database, the waiting limit held under concurrent submits, parts inside their parent's
slot, and the slots of a dead process's jobs given back."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from datetime import datetime, timedelta

import pytest

from vmimage.bootstrap import build
from vmimage.core.errors import TooManyRequests
from vmimage.core.jobs import Job, JobLimits, JobStatus, new_job_id, new_part
from vmimage.core.liveness import new_worker_id
from vmimage.core.services.job_engine import EngineSettings, JobEngine
from vmimage.core.services.jobs import advance_part, queue_jobs
from vmimage.settings import Settings

KIND = "probe"
_submitted = itertools.count()


@pytest.fixture
def make_container(tmp_path, database_factory):
    """Containers on one database, as separate processes would have them (their own engine,
    pool and, for SQLite, their own in-process write lock)."""
    url = database_factory()
    made = []

    def make(**limits):
        c = build(Settings(data_dir=tmp_path / "data", database_url=url))
        c.deps.job_limits = JobLimits(**limits)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def submit(deps, project: str, *, parts: int = 0) -> Job:
    """A probe job (and its parts), created a second after the one before."""
    job = Job(new_job_id(), KIND, project, created_at=datetime(2026, 1, 1) + timedelta(seconds=next(_submitted)))
    extra = [new_part(job, f"image-{i}") for i in range(parts)]
    job.entities["parts"] = [p.id for p in extra]
    with deps.uow(write=True) as uow:
        queue_jobs(deps, uow, job, *extra)
        uow.commit()
    return job


def status_of(deps, job_id: str) -> Job:
    with deps.uow() as uow:
        job = uow.jobs.get(job_id)
    assert job is not None
    return job


def wait_until(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.02)


class Probe:
    """A job handler recording the order jobs start in; with `gated`, each job runs until the
    test lets one go (gate.release()), and the jobs running at once are counted per project."""

    def __init__(self, gated: bool = False) -> None:
        self.gated = gated
        self.started: list[tuple[str, str]] = []
        self.running: dict[str, int] = {}
        self.most_running: dict[str, int] = {}
        self.gate = threading.Semaphore(0)
        self.cleaned: list[str] = []
        self._lock = threading.Lock()

    def run(self, deps, job, progress) -> dict:
        with self._lock:
            self.started.append((job.project_id, job.id))
            self.running[job.project_id] = self.running.get(job.project_id, 0) + 1
            self.most_running[job.project_id] = max(self.most_running.get(job.project_id, 0),
                                                    self.running[job.project_id])
        try:
            if self.gated:
                assert self.gate.acquire(timeout=60)
            return {}
        finally:
            with self._lock:
                self.running[job.project_id] -= 1

    def cleanup(self, deps, job) -> None:
        with self._lock:
            self.cleaned.append(job.id)


def engine(container, handler, workers: int, **settings) -> JobEngine:
    e = JobEngine(container.deps, {KIND: handler}, EngineSettings(workers=workers, poll_seconds=0.05, **settings))
    container.jobs = e    # closed with the container
    return e


def test_one_worker_serves_the_projects_in_turn(make_container):
    """Project a's six jobs came first, then b's three, then c's two: one worker runs
    a b c a b c a b a a a, not a's whole backlog first."""
    c = make_container(running_per_project=4, waiting_per_project=100)
    ticks = itertools.count()
    c.deps.clock = lambda: datetime(2026, 2, 1) + timedelta(seconds=next(ticks))   # starts a second apart
    jobs = [submit(c.deps, p) for p in "aaaaaabbbcc"]
    probe = Probe()
    engine(c, probe, workers=1).start()
    wait_until(lambda: len(probe.started) == len(jobs), what="every job to start")
    assert "".join(p for p, _ in probe.started) == "abcabcabaaa"
    wait_until(lambda: all(status_of(c.deps, j.id).status == JobStatus.SUCCESS for j in jobs))
    by_project = {p: [j for q, j in probe.started if q == p] for p in "abc"}
    assert by_project == {p: [j.id for j in jobs if j.project_id == p] for p in "abc"}   # each in its own order


def test_the_running_limit_holds_across_engines_sharing_the_database(make_container):
    """Two engines of four workers each (two processes' worth): project a never has more
    than 3 jobs running, and b's jobs start while a's backlog waits. The jobs are let go one
    at a time, so that the idle workers of both engines race for every slot that frees."""
    first, second = make_container(running_per_project=3), make_container(running_per_project=3)
    probe = Probe(gated=True)
    # Both engines live in this one process: each would take the other's jobs for those of
    # an earlier incarnation of the process, at start and every stale_after. Started before
    # any job exists, and with no recovery due while the test runs, neither does.
    for c in (first, second):
        engine(c, probe, workers=4, stale_after=timedelta(hours=1)).start()
    a_jobs = [submit(first.deps, "a") for _ in range(12)]
    wait_until(lambda: probe.running.get("a") == 3, what="a's three slots")
    b_jobs = [submit(second.deps, "b") for _ in range(2)]
    wait_until(lambda: probe.running.get("b") == 2, what="b's jobs to start")
    time.sleep(0.5)       # idle workers keep polling: still nothing more for a
    assert probe.running == {"a": 3, "b": 2}
    assert sum(status_of(first.deps, j.id).status == JobStatus.INIT for j in a_jobs) == 9
    for _ in a_jobs + b_jobs:
        probe.gate.release()
        time.sleep(0.1)
    wait_until(lambda: all(status_of(first.deps, j.id).status == JobStatus.SUCCESS for j in a_jobs + b_jobs),
               what="every job to end")
    assert probe.most_running == {"a": 3, "b": 2}
    assert all(status_of(first.deps, j.id).attempts == 1 for j in a_jobs + b_jobs)


def test_concurrent_submits_cannot_pass_the_waiting_limit_together(make_container):
    """Seven waiting, a limit of ten, twelve submits at once (from two containers): three
    get in, nine are refused, and ten wait."""
    first, second = make_container(waiting_per_project=10), make_container(waiting_per_project=10)
    for _ in range(7):
        submit(first.deps, "a")
    start = threading.Barrier(12)
    outcomes: list[str] = []

    def one(deps):
        start.wait()
        try:
            submit(deps, "a")
            outcomes.append("in")
        except TooManyRequests as exc:
            assert exc.fields["retry_after"] > 0
            outcomes.append("refused")
    threads = [threading.Thread(target=one, args=((first, second)[i % 2].deps,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["in"] * 3 + ["refused"] * 9
    with first.deps.uow() as uow:
        assert uow.jobs.waiting_count("a") == 10
    submit(first.deps, "b")          # another project's line is its own


def test_a_set_of_jobs_goes_in_whole_or_not_at_all(make_container):
    c = make_container(waiting_per_project=3)
    submit(c.deps, "a")
    jobs = [Job(new_job_id(), KIND, "a", created_at=datetime(2026, 1, 1)) for _ in range(3)]
    with pytest.raises(TooManyRequests), c.deps.uow(write=True) as uow:
        queue_jobs(c.deps, uow, *jobs)
        uow.commit()
    with c.deps.uow() as uow:
        assert uow.jobs.waiting_count("a") == 1
        assert all(uow.jobs.get(j.id) is None for j in jobs)


class WithParts:
    """Like the server-image handler: the parent's worker moves each part through its states."""

    def __init__(self) -> None:
        self.seen_running: list[int] = []

    def run(self, deps, job, progress) -> dict:
        for part_id in job.entities["parts"]:
            advance_part(deps, job, part_id, JobStatus.RUNNING)
        with deps.uow() as uow:
            self.seen_running.append(sum(uow.jobs.get(p).status == JobStatus.RUNNING for p in job.entities["parts"]))
        for part_id in job.entities["parts"]:
            advance_part(deps, job, part_id, JobStatus.SUCCESS)
        return {}

    def cleanup(self, deps, job) -> None:
        pass


def test_parts_run_in_their_parents_slot_and_take_no_place_in_the_line(make_container):
    """One job running and two waiting per project at most: a parent with four parts is
    accepted and runs them all at once in its one slot, and the next job follows it (no
    part waits for a slot its parent holds; the queue never hands a part out)."""
    c = make_container(running_per_project=1, waiting_per_project=2)
    parent, follower = submit(c.deps, "a", parts=4), submit(c.deps, "a", parts=3)
    handler = WithParts()
    e = JobEngine(c.deps, {KIND: handler}, EngineSettings(workers=3, poll_seconds=0.05))
    c.jobs = e
    e.start()
    jobs = [parent, follower]
    wait_until(lambda: all(status_of(c.deps, j.id).status != JobStatus.INIT for j in jobs)
               and all(status_of(c.deps, j.id).status != JobStatus.RUNNING for j in jobs), what="both jobs to end")
    assert [status_of(c.deps, j.id).status for j in jobs] == [JobStatus.SUCCESS] * 2
    parts = [status_of(c.deps, p) for j in jobs for p in j.entities["parts"]]
    assert [p.status for p in parts] == [JobStatus.SUCCESS] * 7
    assert [p.attempts for p in parts] == [0] * 7        # moved by their parent's worker, never claimed
    assert handler.seen_running == [4, 3]


def dead_worker() -> str:
    """The id a process of this host had that is gone now."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{new_worker_id().split(':')[0]}:{proc.pid}:deadbeef"


def test_a_dead_processes_jobs_give_their_slots_back_without_a_restart(make_container):
    """Another process sharing the queue dies holding project a's two slots, after this
    engine started: this engine fails those jobs (interrupted) and runs a's next one,
    without a restart of its own."""
    c = make_container(running_per_project=2)
    probe = Probe()
    engine(c, probe, workers=2, stale_after=timedelta(seconds=1)).start()
    gone, now = dead_worker(), c.deps.clock()
    held = [Job(new_job_id(), KIND, "a", status=JobStatus.RUNNING, attempts=1, worker=gone, created_at=now,
                begin_time=now, heartbeat_at=now) for _ in range(2)]
    with c.deps.uow(write=True) as uow:
        for job in held:
            uow.jobs.add(job)
        uow.commit()
    waiting = submit(c.deps, "a")
    time.sleep(0.3)
    assert status_of(c.deps, waiting.id).status == JobStatus.INIT     # no slot free yet
    wait_until(lambda: status_of(c.deps, waiting.id).status == JobStatus.SUCCESS, timeout=20,
               what="a's waiting job to run once the dead process's slots are free")
    wait_until(lambda: all(status_of(c.deps, j.id).status == JobStatus.FAIL for j in held), timeout=10,
               what="both of the dead process's jobs to end")
    assert {status_of(c.deps, j.id).error_code for j in held} == {"interrupted"}
    assert [p for p, _ in probe.started] == ["a"]


def test_of_two_processes_recovering_at_once_one_cleans_up(make_container):
    first, second = make_container(), make_container()
    probe = Probe()
    engines = [engine(first, probe, workers=1), engine(second, probe, workers=1)]
    gone, now = dead_worker(), first.deps.clock()
    job = Job(new_job_id(), KIND, "a", status=JobStatus.RUNNING, attempts=1, worker=gone, created_at=now,
              begin_time=now, heartbeat_at=now)
    with first.deps.uow(write=True) as uow:
        uow.jobs.add(job)
        uow.commit()
    together = threading.Barrier(2)
    recovered: list[list[str]] = []

    def recover(e):
        together.wait()
        recovered.append(e.recover())
    threads = [threading.Thread(target=recover, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(recovered) == [[], [job.id]] and probe.cleaned == [job.id]
    ended = status_of(first.deps, job.id)
    assert ended.status == JobStatus.FAIL and ended.error_code == "interrupted"
    assert ended.worker in (e.worker_id for e in engines)


class Steps(Probe):
    """A job of ten steps of 0.1 s, reporting its progress after each; resumable (handed back
    by a clean stop) when `resumable`."""

    def __init__(self, resumable: bool) -> None:
        super().__init__()
        self.resumable = resumable
        self.finished: list[str] = []

    def run(self, deps, job, progress) -> dict:
        self.started.append((job.project_id, job.id))
        for step in range(10):
            time.sleep(0.1)
            progress(10 * (step + 1))
        self.finished.append(job.id)
        return {}

    def resumable_at(self, job, pct: int) -> bool:
        return self.resumable


@pytest.mark.parametrize("resumable", [False, True])
def test_a_clean_stop_lets_jobs_finish_within_the_grace_then_interrupts_or_hands_back(make_container, resumable):
    c = make_container()
    steps = Steps(resumable)
    e = engine(c, steps, workers=2)
    e.start()
    quick, slow = submit(c.deps, "a"), submit(c.deps, "b")
    wait_until(lambda: len(steps.started) == 2, what="both jobs to start")
    # A job takes a second: a 0.3 s grace ends in the middle of both.
    e.stop(grace_seconds=0.3)
    assert steps.finished == [] and e.running() is False
    for job in (quick, slow):
        ended = status_of(c.deps, job.id)
        if resumable:
            assert (ended.status, ended.worker, ended.progress) == (JobStatus.INIT, None, 0)
        else:
            assert (ended.status, ended.error_code) == (JobStatus.FAIL, "interrupted")
    assert sorted(steps.cleaned) == ([] if resumable else sorted([quick.id, slow.id]))
    if resumable:     # another process (or the next start) runs them from their start
        again = engine(make_container(), steps, workers=2)
        again.start()
        wait_until(lambda: all(status_of(c.deps, j.id).status == JobStatus.SUCCESS for j in (quick, slow)),
                   what="the handed back jobs to run")
        assert sorted(steps.finished) == sorted([quick.id, slow.id])


def test_a_clean_stop_within_the_grace_lets_a_job_finish(make_container):
    c = make_container()
    steps = Steps(resumable=False)
    e = engine(c, steps, workers=1)
    e.start()
    job = submit(c.deps, "a")
    wait_until(lambda: steps.started, what="the job to start")
    e.stop(grace_seconds=10)
    assert steps.finished == [job.id] and status_of(c.deps, job.id).status == JobStatus.SUCCESS


def test_a_clean_stop_with_nothing_running_does_not_wait_out_the_grace(make_container):
    """The grace is for jobs: an engine with none running stops at once (its heartbeat and
    recovery threads are not waited for as if they were jobs)."""
    c = make_container()
    e = engine(c, Steps(resumable=False), workers=2)
    e.start()
    started = time.monotonic()
    e.stop(grace_seconds=30)
    assert time.monotonic() - started < 5 and e.running() is False


class LongStep(Probe):
    """A job in a long step without progress reports (a stalled download, a conversion) until
    the test lets it go; with `reported`, after a first report at 10 %. Resumable from its
    start (before any report) only."""

    def __init__(self, reported: bool) -> None:
        super().__init__()
        self.reported = reported
        self.let_go = threading.Event()
        self.returned: list[str] = []

    def run(self, deps, job, progress) -> dict:
        self.started.append((job.project_id, job.id))
        if self.reported:
            progress(10)
        assert self.let_go.wait(60)
        self.returned.append(job.id)
        return {}

    def resumable_at(self, job, pct: int) -> bool:
        return pct == 0


@pytest.mark.parametrize("reported", [False, True])
def test_a_clean_stop_takes_over_a_job_in_a_long_step_within_the_grace(make_container, reported):
    """Not waited for until its next report: a second after the grace the stop hands it back
    (still in its first step) or cleans it up and fails it; the worker, once its step ends,
    leaves it alone."""
    c = make_container()
    long_step = LongStep(reported)
    e = engine(c, long_step, workers=1)
    e.start()
    job = submit(c.deps, "a")
    wait_until(lambda: status_of(c.deps, job.id).progress == (10 if reported else 0) and long_step.started,
               what="the job to be in its long step")
    started = time.monotonic()
    e.stop(grace_seconds=0.5)
    assert time.monotonic() - started < 3
    ended = status_of(c.deps, job.id)
    if reported:
        assert (ended.status, ended.error_code) == (JobStatus.FAIL, "interrupted")
        assert long_step.cleaned == [job.id]
    else:
        assert (ended.status, ended.worker, ended.progress) == (JobStatus.INIT, None, 0)
        assert long_step.cleaned == []
    long_step.let_go.set()             # the step ends: the worker's run is over, the job not its own now
    wait_until(lambda: long_step.returned, what="the step to end")
    time.sleep(0.3)
    after = status_of(c.deps, job.id)
    assert (after.status, after.error_code) == (ended.status, ended.error_code)
    assert long_step.cleaned == ([job.id] if reported else [])
