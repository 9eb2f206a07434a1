"""The job queue's rules: whose turn a free worker serves, and how long a project's line may be."""

from __future__ import annotations

import ast
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import vmimage
from vmimage.core.errors import TooManyRequests
from vmimage.core.jobs import JobLimits, ProjectTurn, check_queue_room, turn_order

T0 = datetime(2026, 1, 1)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_project_whose_last_job_started_longest_ago_goes_first():
    turns = [ProjectTurn("a", 1, at(30), at(0)), ProjectTurn("b", 1, at(10), at(5)), ProjectTurn("c", 0, at(20), at(1))]
    assert turn_order(turns, JobLimits()) == ["b", "c", "a"]


def test_a_project_that_never_ran_goes_before_every_other():
    turns = [ProjectTurn("a", 0, at(1), at(0)), ProjectTurn("new", 0, None, at(50))]
    assert turn_order(turns, JobLimits()) == ["new", "a"]


def test_ties_go_to_fewer_running_then_to_the_longest_waiting():
    turns = [ProjectTurn("a", 2, at(9), at(0)), ProjectTurn("b", 1, at(9), at(3)), ProjectTurn("c", 1, at(9), at(2)),
             ProjectTurn("d", 0, None, at(7)), ProjectTurn("e", 0, None, at(6))]
    assert turn_order(turns, JobLimits()) == ["e", "d", "c", "b", "a"]


def test_a_project_at_its_running_limit_is_not_served():
    turns = [ProjectTurn("busy", 4, at(0), at(0)), ProjectTurn("b", 3, at(5), at(9))]
    assert turn_order(turns, JobLimits(running_per_project=4)) == ["b"]
    assert turn_order(turns, JobLimits(running_per_project=3)) == []
    assert turn_order(turns, JobLimits(running_per_project=-1)) == ["busy", "b"]


def test_the_line_of_waiting_jobs_is_bounded():
    limits = JobLimits(waiting_per_project=100)
    check_queue_room(limits, "p", 99, 1)
    with pytest.raises(TooManyRequests) as refused:
        check_queue_room(limits, "p", 100, 1)
    assert refused.value.fields["retry_after"] > 0 and refused.value.fields["limit"] == 100
    with pytest.raises(TooManyRequests):
        check_queue_room(limits, "p", 98, 3)       # a set of jobs goes in whole, or not at all
    check_queue_room(JobLimits(waiting_per_project=-1), "p", 10**6, 5)


@pytest.mark.parametrize("bad", [{"running_per_project": 0}, {"waiting_per_project": 0},
                                 {"running_per_project": -2}])
def test_limits_are_positive_or_minus_one(bad):
    with pytest.raises(ValueError):
        JobLimits(**bad)


def test_every_job_enters_the_queue_through_queue_jobs():
    """uow.jobs.add is called in one place only (core/services/jobs.py queue_jobs), so the
    waiting limit cannot be bypassed by a new kind of job."""
    root = Path(vmimage.__file__).parent
    callers = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "jobs"):
                callers.append(str(path.relative_to(root)))
    assert callers == ["core/services/jobs.py"]
