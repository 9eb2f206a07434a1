"""qemu-img as a backend of its own (imaging/qemu_img.py): bounded processes at once, and a
breaker for when it cannot be started at all (not for images it refuses)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from vmimage.core.backends import Backend
from vmimage.core.errors import BackendUnavailable
from vmimage.imaging import qemu_img


def test_at_most_its_slots_run_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu_img, "BACKEND", Backend("qemu-img", slots=2, stall_seconds=None))
    running, most, lock = [0], [0], threading.Lock()

    def fake_run(cmd, **_options):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(qemu_img.subprocess, "run", fake_run)
    workers = [threading.Thread(target=qemu_img.create, args=(tmp_path / f"d{i}.qcow2", 1 << 20)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert most[0] == 2


def test_a_qemu_img_that_cannot_start_is_short_circuited(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu_img, "BACKEND", Backend("qemu-img", slots=2, stall_seconds=None, trip_after=2,
                                                     retry_seconds=30))
    started = []

    def no_such_program(cmd, **_options):
        started.append(cmd)
        raise FileNotFoundError(2, "No such file or directory", "prlimit")

    monkeypatch.setattr(qemu_img.subprocess, "run", no_such_program)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            qemu_img.create(tmp_path / "d.qcow2", 1 << 20)
    with pytest.raises(BackendUnavailable) as refused:
        qemu_img.create(tmp_path / "d.qcow2", 1 << 20)
    assert len(started) == 2 and refused.value.fields["retry_after"] == 30


def test_images_qemu_img_refuses_do_not_count(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu_img, "BACKEND", Backend("qemu-img", slots=2, stall_seconds=None, trip_after=1))
    monkeypatch.setattr(qemu_img.subprocess, "run",
                        lambda cmd, **_o: subprocess.CompletedProcess(cmd, 1, "", "Could not open"))
    for _ in range(3):
        with pytest.raises(BackendUnavailable) as failed:
            qemu_img.create(tmp_path / "d.qcow2", 1 << 20)
        assert "Could not open" in failed.value.message
