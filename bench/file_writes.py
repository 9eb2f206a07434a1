"""The file store's writer alone (no HTTP, no hashing): CPU-seconds and MiB/s per GiB written,
for each VMIMAGE_FILE_WRITES mode, with each file kept (the page cache grows into free memory,
as a run of uploads does) or deleted before the next (its pages are reused), and cached with the
files kept under the service's default bound on cached written data (VMIMAGE_FILE_CACHE_MIB).

On this project's VM the cached mode costs ~0.3 CPU-s/GiB when pages are reused but ~2 when
the cache grows: the guest's free memory has to be faulted in from the host again. A server
whose page cache fills memory takes its pages from reclaim, the cheap case; the bound makes
new writes take the pages of the oldest written data once it is reached.

    .venv/bin/python bench/file_writes.py [--rounds 6] [--size-gib 1] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vmimage.adapters.blob.local import CachedWrites, LocalFileBlobStore  # noqa: E402
from vmimage.settings import Settings  # noqa: E402

MIB = 1 << 20


def run(mode: str, keep: bool, bound_mib: int, rounds: int, size_mib: int, root: str | None) -> list[float]:
    directory = tempfile.mkdtemp(dir=root, prefix="vmimage-file-writes-")
    store = LocalFileBlobStore("bench", directory, writes=mode, cached_writes=CachedWrites(bound_mib << 20))
    buf = os.urandom(MIB)
    cpu_per_gib = []
    try:
        for r in range(rounds):
            writer = store.writer(f"blob-{r}")
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(size_mib):
                writer.write(buf)
            writer.commit()
            cpu, took = time.process_time() - cpu0, time.perf_counter() - t0
            cpu_per_gib.append(cpu / (size_mib / 1024))
            print(f"  {label(mode, keep, bound_mib)}, round {r + 1}: {cpu_per_gib[-1]:.2f} CPU-s/GiB, "
                  f"{size_mib / took:.0f} MiB/s", flush=True)
            if not keep:
                store.delete(f"blob-{r}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return cpu_per_gib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--data-root", default=None, help="where the files go (default: system temp)")
    args = p.parse_args()
    size_mib = int(args.size_gib * 1024)
    bound = Settings().file_cache_mib
    results = {}
    for mode, keep, bound_mib in (("cached", True, 0), ("cached", False, 0), ("cached", True, bound),
                                  ("direct", True, 0)):
        results[label(mode, keep, bound_mib)] = run(mode, keep, bound_mib, args.rounds, size_mib, args.data_root)
    for name, cpus in results.items():
        print(f"{name}: median {statistics.median(cpus):.2f} CPU-s/GiB ({min(cpus):.2f}-{max(cpus):.2f})")


def label(mode: str, keep: bool, bound_mib: int) -> str:
    return f"{mode}, files {'kept' if keep else 'deleted'}" + (f", cached data bound {bound_mib} MiB" if bound_mib else "")


if __name__ == "__main__":
    main()
