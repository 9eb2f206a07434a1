"""QemuHypervisor against real QEMU (TCG, no guest OS): lifecycle, live backup, re-attach.

The test process makes itself a child subreaper while these tests run, so the daemonized
QEMUs become its children when they detach and get reaped instead of lingering as zombies.
Every QEMU started here is SIGKILLed in teardown if a test left it behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from vmimage.adapters.hypervisor import QemuHypervisor
from vmimage.adapters.hypervisor.procs import is_qemu_for, read_pid
from vmimage.adapters.hypervisor.qmp import QMPClient, QMPError
from vmimage.core.errors import BackendUnavailable, Conflict, Invalid

MISSING = [b for b in ("qemu-system-x86_64", "qemu-img", "qemu-io") if shutil.which(b) is None]
if MISSING:
    print(f"skipping QEMU integration tests: {', '.join(MISSING)} not installed")
    pytest.skip(f"{', '.join(MISSING)} not installed", allow_module_level=True)

MiB = 1 << 20
DISK = 64 * MiB
PR_SET_CHILD_SUBREAPER = 36
# (offset, length) of random data in the base image; sector 0 stays zero so SeaBIOS boots nothing.
RANDOM_AT = [(1 * MiB, 64 * 1024), (5 * MiB + 123, 4000), (33 * MiB, 256 * 1024), (DISK - 4096, 4096)]
OVERLAY_WRITE = (2 * MiB, 128 * 1024, 0x5A)   # written into the overlay itself


def _qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def _raw_bytes(path: Path, scratch: Path, *extra: str) -> bytes:
    out = scratch / f"{path.name}.{uuid.uuid4().hex[:6]}.raw"
    _qemu_img("convert", *extra, "-O", "raw", str(path), str(out))
    data = out.read_bytes()
    out.unlink()
    return data


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    _reap_qemu_zombies()


def _reap_qemu_zombies() -> None:
    """-daemonize forks twice; the middle process exits at once and ends up ours to reap."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" and int(fields[1]) == os.getpid() and "qemu-system" in stat.read_text():
                os.waitpid(int(stat.parent.name), os.WNOHANG)
        except (OSError, IndexError, ValueError, ChildProcessError):
            pass


@pytest.fixture(scope="module")
def images():
    """base.qcow2 with random data at known offsets, and the raw bytes an overlay on it should show."""
    work = Path(tempfile.mkdtemp(prefix="vmi-img-"))
    try:
        expected = bytearray(DISK)
        for offset, length in RANDOM_AT:
            expected[offset:offset + length] = os.urandom(length)
        offset, length, byte = OVERLAY_WRITE
        raw = work / "base.raw"
        raw.write_bytes(expected)
        _qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "base.qcow2"))
        raw.unlink()
        expected[offset:offset + length] = bytes([byte]) * length
        yield work, bytes(expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Env:
    def __init__(self, root: Path, base: Path) -> None:
        self.root, self.base = root, base
        self.run_dir = root / "run"
        self.hv = QemuHypervisor(self.run_dir, qmp_timeout=5.0)
        self.pids: list[int] = []

    def overlay(self, name: str) -> Path:
        path = self.root / name
        _qemu_img("create", "-q", "-f", "qcow2", "-b", str(self.base), "-F", "qcow2", str(path))
        offset, length, byte = OVERLAY_WRITE
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {byte} {offset} {length}", str(path)],
                       check=True, capture_output=True)
        return path

    def empty(self, name: str) -> Path:
        path = self.root / name
        _qemu_img("create", "-q", "-f", "qcow2", str(path), str(DISK))
        return path

    def start(self, server_id: str, disks: list[tuple[str, str]], memory_mb: int = 64) -> int:
        self.hv.start(server_id, disks, memory_mb)
        pid = read_pid(self.run_dir / f"{server_id}.pid")
        assert pid is not None
        self.pids.append(pid)
        return pid

    def cleanup(self) -> None:
        for pid_file in self.run_dir.glob("*.pid"):
            pid = read_pid(pid_file)
            if pid is not None and pid not in self.pids:
                self.pids.append(pid)
        for pid in self.pids:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"qemu-system" in argv and str(self.run_dir).encode() in argv:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            for _ in range(100):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                if _process_gone(pid):
                    break
                time.sleep(0.05)
        _reap_qemu_zombies()


@pytest.fixture
def env(images):
    work, _ = images
    # Short path: unix socket paths are limited to 107 bytes (a long run_dir is tested separately).
    root = Path(tempfile.mkdtemp(prefix="vmi-"))
    e = Env(root, work / "base.qcow2")
    try:
        yield e
    finally:
        e.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_lifecycle_live_backup_and_reattach(env, images):
    _, expected = images
    vda, vdb = env.overlay("vda.qcow2"), env.empty("vdb.qcow2")
    sid = "srv-" + uuid.uuid4().hex
    pid = env.start(sid, [("vda", str(vda)), ("vdb", str(vdb))])

    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert os.path.basename(argv[0]).startswith(b"qemu-system-x86_64")
    assert b"tcg" in argv and b"none" in argv and b"-daemonize" in argv
    assert (env.run_dir / f"{sid}.qmp").exists()
    ppid = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("PPid:")))
    assert env.hv.is_running(sid) and env.hv.running() == [sid]

    backup = env.root / "vda-backup.qcow2"
    env.hv.backup_disk(sid, "vda", str(backup))
    info = json.loads(_qemu_img("info", "--output=json", str(backup)))
    assert info["format"] == "qcow2" and info["virtual-size"] == DISK
    assert "backing-filename" not in info and "full-backing-filename" not in info
    backup_raw = _raw_bytes(backup, env.root)
    assert backup_raw == expected
    assert backup_raw == _raw_bytes(vda, env.root, "-U")   # the source, read alongside the running QEMU

    empty_backup = env.root / "vdb-backup.qcow2"
    env.hv.backup_disk(sid, "vdb", str(empty_backup))
    assert _raw_bytes(empty_backup, env.root) == bytes(DISK)

    env.hv.reboot(sid)
    assert env.hv.is_running(sid)
    with QMPClient(env.run_dir / f"{sid}.qmp", timeout=5.0) as qmp:   # the raw client: errors, events
        with pytest.raises(QMPError) as err:
            qmp.execute("no-such-command")
        assert err.value.error_class == "CommandNotFound"
        qmp.execute("system_reset")
        assert qmp.wait_event("RESET", timeout=5.0)["event"] == "RESET"
        assert qmp.execute("query-status")["status"] == "running"

    # A vmimage restart: a fresh adapter knows nothing but run_dir.
    again = QemuHypervisor(env.run_dir)
    assert again.running() == [sid] and again.is_running(sid)
    again.reboot(sid)
    again.stop(sid, grace_seconds=0.5)

    assert _process_gone(pid)
    if ppid == os.getpid():                                  # we are its subreaper: not even a zombie
        assert not Path(f"/proc/{pid}").exists()
    assert not again.is_running(sid) and again.running() == [] and env.hv.running() == []
    assert list(env.run_dir.iterdir()) == []
    again.stop(sid)                                          # idempotent
    assert _raw_bytes(vda, env.root) == expected             # the guest disk is untouched


def test_refusals_leave_nothing_behind(env):
    vda = env.empty("vda.qcow2")
    sid = "srv-refusals"
    with pytest.raises(Conflict):
        env.hv.backup_disk(sid, "vda", str(env.root / "never.qcow2"))
    with pytest.raises(Conflict):
        env.hv.reboot(sid)
    with pytest.raises(Invalid):
        env.hv.start("../evil", [("vda", str(vda))], 64)
    with pytest.raises(Invalid):
        env.hv.start(sid, [("vda", str(vda)), ("vda", str(vda))], 64)

    with pytest.raises(BackendUnavailable):
        env.hv.start(sid, [("vda", str(env.root / "missing.qcow2"))], 64)
    assert not env.hv.is_running(sid) and list(env.run_dir.iterdir()) == []

    env.start(sid, [("vda", str(vda))])
    with pytest.raises(Conflict):
        env.hv.start(sid, [("vda", str(vda))], 64)
    existing = env.root / "exists.qcow2"
    existing.write_bytes(b"keep me")
    with pytest.raises(Conflict):
        env.hv.backup_disk(sid, "vda", str(existing))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(Conflict):
        env.hv.backup_disk(sid, "vdz", str(env.root / "nodisk.qcow2"))
    assert not (env.root / "nodisk.qcow2").exists()
    with pytest.raises(BackendUnavailable):
        env.hv.backup_disk(sid, "vda", str(env.root / "no-such-dir" / "b.qcow2"))
    assert env.hv.is_running(sid)
    env.hv.stop(sid, grace_seconds=0.2)
    assert list(env.run_dir.iterdir()) == []


def test_stop_falls_back_to_sigkill_without_qmp(env):
    sid = "srv-deaf"
    pid = env.start(sid, [("vda", str(env.empty("vda.qcow2")))])
    (env.run_dir / f"{sid}.qmp").unlink()                    # QMP unreachable: only the pid is left
    assert env.hv.is_running(sid)
    env.hv.stop(sid, grace_seconds=0.1)
    assert _process_gone(pid) and list(env.run_dir.iterdir()) == []


def test_stale_and_foreign_pidfiles_are_cleaned(env):
    env.run_dir.mkdir(exist_ok=True)
    (env.run_dir / "ghost.pid").write_text(f"{os.getpid()}\n")   # alive, but not a QEMU
    (env.run_dir / "ghost.qmp").write_text("")
    (env.run_dir / "orphan.qmp").write_text("")
    sid = "srv-real"
    env.start(sid, [("vda", str(env.empty("vda.qcow2")))])
    (env.run_dir / "other.pid").write_text(f"{read_pid(env.run_dir / f'{sid}.pid')}\n")  # a QEMU, not for "other"
    assert not env.hv.is_running("ghost")
    assert env.hv.running() == [sid]
    assert sorted(p.name for p in env.run_dir.iterdir()) == [f"{sid}.pid", f"{sid}.qmp"]
    env.hv.stop(sid, grace_seconds=0.1)


def test_long_run_dir_beyond_unix_socket_limit(env):
    long_dir = env.root / ("d" * 60) / ("e" * 60) / "run"
    hv = QemuHypervisor(long_dir)
    assert len(str(long_dir / "x.qmp")) > 108
    env.run_dir = long_dir                                   # so cleanup finds these QEMUs
    sid = "srv-" + "f" * 40
    hv.start(sid, [("vda", str(env.overlay("vda.qcow2")))], 64)
    pid = read_pid(long_dir / f"{sid}.pid")
    env.pids.append(pid)
    assert QemuHypervisor(long_dir).running() == [sid]
    backup = env.root / "b.qcow2"
    hv.backup_disk(sid, "vda", str(backup))
    assert _raw_bytes(backup, env.root) == _raw_bytes(env.root / "vda.qcow2", env.root, "-U")
    hv.stop(sid, grace_seconds=0.1)
    assert _process_gone(pid) and not is_qemu_for(pid, sid) and list(long_dir.iterdir()) == []


def test_failed_backup_cleans_up_inside_qemu(env):
    """A backup that times out is cancelled: no target file, no leftover jobs or nodes."""
    big = env.root / "big.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", str(big), str(256 * MiB))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x11 0 {256 * MiB}", str(big)],
                   check=True, capture_output=True)
    sid = "srv-slow"
    env.start(sid, [("vda", str(big))])
    target = env.root / "partial.qcow2"
    env.hv.backup_timeout = 0.0
    with pytest.raises(BackendUnavailable, match="timed out|failed"):
        env.hv.backup_disk(sid, "vda", str(target))
    assert not target.exists()
    assert env.hv._qmp(sid, "query-jobs") == []
    nodes = {n["node-name"] for n in env.hv._qmp(sid, "query-named-block-nodes", {"flat": True})}
    assert nodes == {"vda", "vda-file"}
    env.hv.backup_timeout = 60.0
    env.hv.backup_disk(sid, "vda", str(target))              # the same target name is usable again
    assert json.loads(_qemu_img("info", "--output=json", str(target)))["virtual-size"] == 256 * MiB
    env.hv.stop(sid, grace_seconds=0.1)
