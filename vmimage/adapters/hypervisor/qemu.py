"""QemuHypervisor: each server is one daemonized qemu-system-x86_64 process (TCG, no network).

Everything we need to find a server again lives in run_dir: `<id>.pid` (written by QEMU)
and `<id>.qmp` (its QMP socket). QEMU runs with -daemonize, so it outlives vmimage; a new
QemuHypervisor on the same run_dir re-attaches through those two files. A pid is trusted
only while /proc says it is a qemu-system binary started with `-name guest=<id>`.

Live backups run as QEMU block jobs (blockdev-add + blockdev-create + blockdev-backup,
sync=full), which give a point-in-time, crash-consistent, standalone qcow2 of one disk.
Each QMP exchange uses a short-lived connection because QEMU serves one client at a time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from vmimage.adapters.hypervisor import procs
from vmimage.adapters.hypervisor.qmp import SUN_PATH_MAX, QMPClient, QMPConnectionError, QMPError
from vmimage.core.errors import BackendUnavailable, Conflict, Invalid

_SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")   # safe in file names and -name
_DEVICE = re.compile(r"[a-z][a-z0-9]{0,15}")                 # a valid QEMU node name and qdev id
_SANDBOX = "on,obsolete=deny,resourcecontrol=deny"   # +elevateprivileges/spawn=deny break -daemonize
_LIMITS = ("--core=0", "--nofile=4096")              # no multi-GB core dumps; --as would break QEMU


class QemuHypervisor:
    """The Hypervisor port on local QEMU processes."""

    def __init__(self, run_dir: str | Path, *, binary: str = "qemu-system-x86_64",
                 sandbox: bool = True, qmp_timeout: float = 10.0, start_timeout: float = 30.0,
                 backup_timeout: float = 3600.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.binary = binary
        self.sandbox = sandbox
        self.qmp_timeout = qmp_timeout
        self.start_timeout = start_timeout
        self.backup_timeout = backup_timeout
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # ---------------------------------------------------------------- the port

    def start(self, server_id: str, disks: list[tuple[str, str]], memory_mb: int) -> None:
        """Launch the server's QEMU and return once its QMP socket answers."""
        _check_id(server_id)
        if not disks:
            raise Invalid("a server needs at least one disk")
        devices = [device for device, _ in disks]
        for device in devices:
            _check_device(device)
        if len(set(devices)) != len(devices):
            raise Invalid(f"duplicate devices in {devices}")
        if memory_mb < 16:
            raise Invalid(f"memory_mb {memory_mb} is below QEMU's useful minimum of 16")
        with self._lock(server_id):
            if self._live_pid(server_id) is not None:
                raise Conflict(f"server {server_id} is already running", server_id=server_id)
            self._remove_files(server_id)
            argv, dir_fd = self._command(server_id, disks, memory_mb)
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      timeout=self.start_timeout, pass_fds=(dir_fd,) if dir_fd else ())
            except (OSError, subprocess.TimeoutExpired) as exc:
                self._abort_start(server_id)
                raise BackendUnavailable(f"QEMU for server {server_id} could not run: {exc}") from exc
            finally:
                if dir_fd is not None:
                    os.close(dir_fd)
            if done.returncode != 0:
                self._abort_start(server_id)
                detail = done.stderr.strip()[:500] or f"exit status {done.returncode}"
                raise BackendUnavailable(f"QEMU for server {server_id} did not start: {detail}")
            try:
                self._wait_qmp(server_id)
            except BackendUnavailable:
                self._abort_start(server_id)
                raise

    def stop(self, server_id: str, grace_seconds: float = 5.0) -> None:
        """ACPI power-down, then QMP quit, then SIGKILL; a no-op when not running."""
        _check_id(server_id)
        with self._lock(server_id):
            pid = self._live_pid(server_id)
            if pid is not None:
                gone = (self._try_qmp(server_id, "system_powerdown")
                        and procs.wait_gone(pid, server_id, grace_seconds))
                if not gone and self._try_qmp(server_id, "quit"):        # a failed QMP skips the wait
                    gone = procs.wait_gone(pid, server_id, 5.0)
                if not gone:
                    procs.kill(pid, server_id)
                    if not procs.wait_gone(pid, server_id, 5.0):
                        raise BackendUnavailable(f"QEMU pid {pid} of server {server_id} will not die")
            self._remove_files(server_id)

    def reboot(self, server_id: str) -> None:
        """A hard reset, like pressing the reset button (the guest is not asked)."""
        _check_id(server_id)
        with self._lock(server_id):
            self._require_running(server_id)
            self._qmp(server_id, "system_reset")

    def is_running(self, server_id: str) -> bool:
        if not _SERVER_ID.fullmatch(server_id or ""):
            return False
        return self._live_pid(server_id) is not None

    def running(self) -> list[str]:
        """Servers with a live QEMU, found from run_dir alone (so also after a vmimage restart)."""
        ids = {p.stem for p in self.run_dir.glob("*.pid")} | {p.stem for p in self.run_dir.glob("*.qmp")}
        return sorted(i for i in ids if _SERVER_ID.fullmatch(i) and self._live_pid(i) is not None)

    def backup_disk(self, server_id: str, device: str, target: str) -> None:
        """Copy one attached disk, live and point-in-time, into a new standalone qcow2 at target."""
        _check_id(server_id)
        _check_device(device)
        target_path = Path(target).absolute()
        self._require_running(server_id)
        size = self._virtual_size(server_id, device)
        try:
            os.close(os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError as exc:
            raise Conflict(f"backup target {target_path} already exists") from exc
        except OSError as exc:
            raise BackendUnavailable(f"cannot create backup target {target_path}: {exc}") from exc
        tag = uuid.uuid4().hex[:12]
        file_node, fmt_node = f"vmimage-bk-{tag}-file", f"vmimage-bk-{tag}"
        create_job, backup_job = f"vmimage-create-{tag}", f"vmimage-backup-{tag}"
        added: list[str] = []
        try:
            self._qmp(server_id, "blockdev-add",
                      {"driver": "file", "filename": str(target_path), "node-name": file_node})
            added.append(file_node)
            self._qmp(server_id, "blockdev-create",
                      {"job-id": create_job, "options": {"driver": "qcow2", "file": file_node, "size": size}})
            self._wait_job(server_id, create_job, max(self.qmp_timeout, 30.0))
            self._qmp(server_id, "blockdev-add", {"driver": "qcow2", "node-name": fmt_node, "file": file_node})
            added.append(fmt_node)
            self._qmp(server_id, "blockdev-backup", {"job-id": backup_job, "device": device, "target": fmt_node,
                                                     "sync": "full", "auto-dismiss": False})
            self._wait_job(server_id, backup_job, self.backup_timeout)
            self._delete_nodes(server_id, added, strict=True)
        except BaseException:
            for job_id in (backup_job, create_job):
                self._abandon_job(server_id, job_id)
            self._delete_nodes(server_id, added, strict=False)
            target_path.unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------- processes and files

    def _command(self, server_id: str, disks: list[tuple[str, str]],
                 memory_mb: int) -> tuple[list[str], int | None]:
        """The QEMU argv, and a directory fd QEMU must inherit when the socket path is too long."""
        socket_path, dir_fd = str(self._socket(server_id)), None
        if len(os.fsencode(socket_path)) > SUN_PATH_MAX:
            dir_fd = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            socket_path = f"/proc/self/fd/{dir_fd}/{server_id}.qmp"
        argv = [self.binary, "-name", f"guest={server_id}", "-no-user-config", "-nodefaults",
                "-accel", "tcg", "-m", str(memory_mb), "-smp", "1", "-nic", "none", "-display", "none",
                "-chardev", f"socket,id=qmp,path={_opt(socket_path)},server=on,wait=off",
                "-mon", "chardev=qmp,mode=control",
                "-pidfile", str(self._pidfile(server_id)), "-daemonize"]
        if self.sandbox:
            argv += ["-sandbox", _SANDBOX]
        for device, path in disks:
            blockdev = {"driver": "qcow2", "node-name": device,
                        "file": {"driver": "file", "filename": str(Path(path).absolute()),
                                 "node-name": f"{device}-file"}}
            argv += ["-blockdev", json.dumps(blockdev),
                     "-device", json.dumps({"driver": "virtio-blk-pci", "drive": device, "id": device})]
        prlimit = shutil.which("prlimit")
        return ([prlimit, *_LIMITS, "--", *argv] if prlimit else argv), dir_fd

    def _wait_qmp(self, server_id: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._qmp(server_id, "query-status", timeout=min(self.qmp_timeout, 5.0))
                return
            except BackendUnavailable as exc:
                pid = procs.read_pid(self._pidfile(server_id))
                if pid is None or not procs.is_qemu_for(pid, server_id) or time.monotonic() > deadline:
                    raise BackendUnavailable(f"QEMU for server {server_id} does not answer QMP: {exc}") from exc
                time.sleep(0.05)

    def _abort_start(self, server_id: str) -> None:
        pid = procs.read_pid(self._pidfile(server_id))
        if pid is not None:
            procs.kill(pid, server_id)
            procs.wait_gone(pid, server_id, 5.0)
        self._remove_files(server_id)

    def _live_pid(self, server_id: str) -> int | None:
        """The server's QEMU pid, or None (and its stale files removed unless someone is busy with them)."""
        pid = procs.read_pid(self._pidfile(server_id))
        if pid is not None and procs.is_qemu_for(pid, server_id):
            return pid
        if pid is not None:
            procs.reap(pid)
        lock = self._lock(server_id)
        if lock.acquire(blocking=False):       # a start in progress owns files not yet complete
            try:
                self._remove_files(server_id)
            finally:
                lock.release()
        return None

    def _require_running(self, server_id: str) -> None:
        if self._live_pid(server_id) is None:
            raise Conflict(f"server {server_id} is not running", server_id=server_id)

    def _remove_files(self, server_id: str) -> None:
        self._pidfile(server_id).unlink(missing_ok=True)
        self._socket(server_id).unlink(missing_ok=True)

    def _pidfile(self, server_id: str) -> Path:
        return self.run_dir / f"{server_id}.pid"

    def _socket(self, server_id: str) -> Path:
        return self.run_dir / f"{server_id}.qmp"

    def _lock(self, server_id: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(server_id, threading.RLock())

    # ---------------------------------------------------------------- QMP

    def _qmp(self, server_id: str, command: str, arguments: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        """One command on a fresh connection; every failure becomes BackendUnavailable."""
        with self._lock(server_id):
            try:
                with QMPClient(self._socket(server_id), timeout or self.qmp_timeout) as qmp:
                    return qmp.execute(command, arguments)
            except (QMPError, QMPConnectionError) as exc:
                raise BackendUnavailable(f"server {server_id}: QMP {command} failed: {exc}") from exc

    def _try_qmp(self, server_id: str, command: str, arguments: dict[str, Any] | None = None) -> bool:
        try:
            self._qmp(server_id, command, arguments, timeout=min(self.qmp_timeout, 5.0))
            return True
        except BackendUnavailable:
            return False

    def _virtual_size(self, server_id: str, device: str) -> int:
        for node in self._qmp(server_id, "query-named-block-nodes", {"flat": True}):
            if node.get("node-name") == device:
                return int(node["image"]["virtual-size"])
        raise Conflict(f"server {server_id} has no disk {device}", server_id=server_id, device=device)

    def _find_job(self, server_id: str, job_id: str) -> dict[str, Any] | None:
        return next((j for j in self._qmp(server_id, "query-jobs") if j.get("id") == job_id), None)

    def _wait_job(self, server_id: str, job_id: str, timeout: float) -> None:
        """Poll query-jobs until the job concludes; dismiss it; raise if it failed or took too long."""
        deadline, delay = time.monotonic() + timeout, 0.02
        while True:
            job = self._find_job(server_id, job_id)
            if job is None:
                raise BackendUnavailable(f"server {server_id}: block job {job_id} vanished")
            if job.get("status") == "concluded":
                self._try_qmp(server_id, "job-dismiss", {"id": job_id})
                if job.get("error"):
                    raise BackendUnavailable(f"server {server_id}: block job {job_id} failed: {job['error']}")
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"server {server_id}: block job {job_id} timed out after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _abandon_job(self, server_id: str, job_id: str) -> None:
        """Cancel and dismiss a job left behind by a failed backup; never raises."""
        try:
            if self._find_job(server_id, job_id) is not None:
                self._try_qmp(server_id, "job-cancel", {"id": job_id})
                self._wait_job(server_id, job_id, 10.0)
        except BackendUnavailable:
            pass

    def _delete_nodes(self, server_id: str, nodes: list[str], strict: bool) -> None:
        """blockdev-del the backup target nodes, format node first; this also flushes and closes the file."""
        for node in reversed(nodes):
            if not self._try_qmp(server_id, "blockdev-del", {"node-name": node}) and strict:
                raise BackendUnavailable(f"server {server_id}: could not release backup node {node}")
        nodes.clear()


def _check_id(server_id: str) -> None:
    if not isinstance(server_id, str) or not _SERVER_ID.fullmatch(server_id):
        raise Invalid(f"unusable server id {server_id!r}")


def _check_device(device: str) -> None:
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise Invalid(f"unusable device name {device!r}")


def _opt(value: str) -> str:
    """Escape a value for QEMU's key=value,... option syntax (a comma is written twice)."""
    return value.replace(",", ",,")
