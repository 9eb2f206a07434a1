"""The guest reader of image insight: imaging/guest_reader.py in a child process of its own.

The child is a fresh interpreter (`python -I -S`: no site, standard library only) with CPU
seconds and address space capped (setrlimit, as prlimit would), no core files, a wall-clock
deadline, niced below the service, killed with the service (PR_SET_PDEATHSIG). A hostile image can make it fail, never the service.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from vmimage.core.errors import InspectionFailed, VmImageError
from vmimage.core.ports import RangedSource
from vmimage.imaging.children import die_with_parent

READER = Path(__file__).with_name("guest_reader.py")
READABLE_FORMATS = ("raw", "qcow2")


class ChildGuestReader:
    """Limits set in the forked child before exec (what `prlimit` and `nice` would do, without
    three more programs started per inspection: the side lane is meant to cost little)."""

    def __init__(self, cpu_seconds: int = 30, memory_bytes: int = 512 << 20, wall_seconds: float = 60,
                 block_bytes: int = 256 << 10, cache_blocks: int = 128, max_fetched_bytes: int = 512 << 20) -> None:
        self.cpu_seconds, self.memory_bytes, self.wall_seconds = cpu_seconds, memory_bytes, wall_seconds
        self.block_bytes, self.cache_blocks, self.max_fetched_bytes = block_bytes, cache_blocks, max_fetched_bytes

    def read(self, source: str | RangedSource, disk_format: str) -> dict[str, Any]:
        if disk_format not in READABLE_FORMATS:
            raise InspectionFailed(f"the reader reads raw and qcow2 disks, not {disk_format}")
        if isinstance(source, str):
            return self._answer(self._run_on_file(source, disk_format))
        served = BlockCache(source, self.block_bytes, self.cache_blocks, self.max_fetched_bytes)
        facts = self._answer(self._run_on_ranges(served, disk_format))
        facts.update(read_from=source.where, bytes_fetched=served.fetched)
        return facts

    def _run_on_file(self, path: str, disk_format: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-I", "-S", str(READER), path, disk_format]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=self.wall_seconds, preexec_fn=self._limits(),
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise InspectionFailed(f"reading took longer than {self.wall_seconds:g} s") from exc
        except OSError as exc:
            raise InspectionFailed(f"the reader could not start: {exc}") from exc

    def _run_on_ranges(self, served: BlockCache, disk_format: str) -> subprocess.CompletedProcess[bytes]:
        """The child asks for byte ranges on a socket; this process answers each from the
        source through a block cache, within the wall-clock deadline (a stalled store ends the
        reading, it never holds the job lane) and a cap on the bytes fetched."""
        deadline = time.monotonic() + self.wall_seconds
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-I", "-S", str(READER), "--ranges", str(theirs.fileno()), str(served.source.size),
               disk_format]
        fetcher = ThreadPoolExecutor(1, thread_name_prefix="insight-ranges")
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         pass_fds=(theirs.fileno(),), preexec_fn=self._limits())
            except OSError as exc:
                ours.close()
                raise InspectionFailed(f"the reader could not start: {exc}") from exc
            finally:
                theirs.close()
            try:
                self._serve(ours, served, fetcher, deadline)
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                raise InspectionFailed(f"reading took longer than {self.wall_seconds:g} s") from exc
            finally:
                ours.close()
                fetcher.shutdown(wait=False, cancel_futures=True)
                if child.poll() is None:
                    child.kill()
                    child.wait()
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(cmd, child.returncode, out.read(), err.read())

    def _serve(self, sock: socket.socket, served: BlockCache, fetcher: ThreadPoolExecutor, deadline: float) -> None:
        """Until the child closes its end (it has finished, or died)."""
        while True:
            head = _receive(sock, 12, deadline, self.wall_seconds)
            if head is None:
                return
            offset, length = struct.unpack(">QI", head)
            future = fetcher.submit(served.read, offset, length)
            try:
                data = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout as exc:
                raise InspectionFailed(f"reading took longer than {self.wall_seconds:g} s "
                                       f"(waiting for {served.source.where})") from exc
            except InspectionFailed:
                raise
            except VmImageError as exc:
                raise InspectionFailed(f"the image's data in {served.source.where} could not be read: "
                                       f"{exc.message}") from exc
            except Exception as exc:        # a store's own failure (network, protocol): the reading ends
                raise InspectionFailed(f"the image's data in {served.source.where} could not be read: "
                                       f"{type(exc).__name__}: {exc}"[:300]) from exc
            try:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock.sendall(struct.pack(">I", len(data)) + data)
            except OSError:
                return              # the child is gone (a limit killed it): its exit says why

    def _answer(self, done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
        if done.returncode != 0:
            if done.returncode < 0:
                why = f"the reader was killed by signal {-done.returncode} (a resource limit)"
            else:
                why = f"the reader failed: {done.stderr.decode('utf-8', 'replace').strip()[-300:]}"
            raise InspectionFailed(why)
        try:
            facts = json.loads(done.stdout)
        except ValueError as exc:
            raise InspectionFailed("the reader's answer was not JSON") from exc
        if not isinstance(facts, dict):
            raise InspectionFailed("the reader's answer was not an object")
        if "error" in facts:
            raise InspectionFailed(str(facts["error"])[:500])
        return facts

    def _limits(self) -> Callable[[], None]:
        cpu, memory = self.cpu_seconds, self.memory_bytes
        die = die_with_parent()

        def setup() -> None:
            if die is not None:
                die()
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.nice(10)       # the service's own requests come first
        return setup


class BlockCache:
    """Answers (offset, length) from aligned blocks of the source, the last few kept (the
    reader comes back to the same metadata often); refuses past a total of bytes fetched."""

    def __init__(self, source: RangedSource, block_bytes: int, blocks: int, max_fetched: int) -> None:
        self.source, self.block_bytes, self.blocks, self.max_fetched = source, block_bytes, blocks, max_fetched
        self.cache: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.source.size)
        parts = []
        while offset < end:
            index, within = divmod(offset, self.block_bytes)
            part = self._block(index)[within:within + end - offset]
            if not part:
                break
            parts.append(part)
            offset += len(part)
        return b"".join(parts)

    def _block(self, index: int) -> bytes:
        block = self.cache.get(index)
        if block is not None:
            self.cache.move_to_end(index)
            return block
        start = index * self.block_bytes
        length = min(self.block_bytes, self.source.size - start)
        if self.fetched + length > self.max_fetched:
            raise InspectionFailed(f"more than {self.max_fetched} bytes fetched from {self.source.where}")
        block = self.source.read(start, length)
        self.fetched += length
        self.cache[index] = block
        if len(self.cache) > self.blocks:
            self.cache.popitem(last=False)
        return block


def _receive(sock: socket.socket, length: int, deadline: float, wall_seconds: float) -> bytes | None:
    """length bytes from the child; None when it closed its end first."""
    parts, left = [], length
    while left:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(left)
        except TimeoutError as exc:
            raise InspectionFailed(f"reading took longer than {wall_seconds:g} s") from exc
        except OSError:
            return None
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
