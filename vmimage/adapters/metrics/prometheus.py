"""The core's Meter as Prometheus metrics, and the scrape of GET /metrics.

`vmimage serve` keeps every serving process's samples in files under `<data dir>/metrics`
(prometheus-client's multiprocess mode), emptied at start: a scrape answered by any worker
sums all of them, and a worker that dies and is restarted leaves its counts in its files, so
nothing counted is lost. Without that directory (a container built in a test) the samples
stay in the process. The jobs gauge is read from the database at scrape time, so every
process answers the same figures for the whole service.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import _read_all_values
from prometheus_client.utils import floatToGoString

from vmimage.core.metrics import Meter

CONTENT_TYPE = CONTENT_TYPE_LATEST
_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"     # where prometheus-client's processes keep their files
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_JOBS_HELP = "Jobs in the database by kind and status"
JOBS_FRESH_SECONDS = 1.0     # the jobs gauge's figures are answered this long before the database is asked again
_JOB_SECONDS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf"))


def share_between_processes(directory: Path) -> None:
    """From now on, metrics of this process and of the processes it starts live in files
    under `directory`, emptied here (call it once, in the process that starts the others,
    before any meter is made)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[_DIRECTORY_VARIABLE] = str(directory)
    values.ValueClass = values.MultiProcessValue()


def _shared_directory() -> str | None:
    return os.environ.get(_DIRECTORY_VARIABLE) or None


class _Jobs:
    """vmimage_jobs{kind, status}: the jobs in the database by kind and status, read at a
    scrape at most every JOBS_FRESH_SECONDS (a query per scrape was a third of its CPU, and
    a Prometheus interval is seconds long)."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.counts = counts
        self._lock = threading.Lock()
        self._text, self._read_at = "", -math.inf

    def fresh(self) -> bool:
        return time.monotonic() - self._read_at < JOBS_FRESH_SECONDS

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("vmimage_jobs", _JOBS_HELP, labels=["kind", "status"])
        for (kind, status), count in sorted(self.counts().items()):
            family.add_metric([kind, status], count)
        yield family

    def text(self) -> str:
        """The gauge's lines, from the database unless read within JOBS_FRESH_SECONDS
        (blocking when it asks the database)."""
        if self.fresh():
            return self._text
        with self._lock:          # scrapes at once: one asks, the others answer what it read
            if self.fresh():
                return self._text
            lines = [f"# HELP vmimage_jobs {_JOBS_HELP}\n# TYPE vmimage_jobs gauge\n"]
            for (kind, status), count in sorted(self.counts().items()):
                lines.append(f"vmimage_jobs{_label_text([('kind', kind), ('status', status)])} "
                             f"{floatToGoString(count)}\n")
            self._text, self._read_at = "".join(lines), time.monotonic()
            return self._text


def _number(value: float) -> str:
    """A sample's value: Python's shortest repr, which the text format reads, for finite ones."""
    return repr(value) if math.isfinite(value) else floatToGoString(value)


def _escaped(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _label_text(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escaped(value)}"' for name, value in labels)
    return "{" + inner + "}" if inner else ""


class _Series:
    """A counter's sample, or a histogram's buckets and sum, for one set of labels: the keys
    their values have in the files, the heads of their lines, and their text at the last
    scrape (most series have not moved since: only their values are compared then)."""

    __slots__ = ("key", "line", "buckets", "sum_key", "sum_line", "count_line", "keys", "last", "start", "end")

    def __init__(self) -> None:
        self.key = self.line = self.sum_key = self.sum_line = self.count_line = ""
        self.buckets: list[tuple[float, str, str]] = []     # (le, key, line head), by le
        self.keys: tuple[str, ...] = ()
        # (values, text) of the last scrape, replaced whole: scrapes may run at once.
        self.last: tuple[tuple[float, ...], str] = ((), "")
        self.start = self.end = 0      # where its values are in a scrape's values, in layout order

    def ready(self) -> None:
        self.buckets.sort()
        self.keys = (self.key,) if self.key else (*(key for _, key, _ in self.buckets), self.sum_key)

    def render(self, values: tuple[float, ...]) -> str:
        last_values, last_text = self.last
        if values == last_values:
            return last_text
        if self.key:
            text = f"{self.line}{_number(values[0])}\n"
        else:
            lines, count = [], 0.0
            for (_, _, head), value in zip(self.buckets, values):   # a bucket alone in the files; up to its le here
                count += value
                lines.append(f"{head}{_number(count)}\n")
            lines.append(f"{self.count_line}{_number(count)}\n{self.sum_line}{_number(values[-1])}\n")
            text = "".join(lines)
        self.last = (values, text)
        return text


class _SamplesFile:
    """One process's file of samples, read at each scrape. Its entries only ever grow (a key
    is appended when a label set is first counted, its value rewritten in place), so their
    keys and the offsets of their values are parsed once per size, and the values read in a
    single struct call, in C, rather than entry by entry."""

    __slots__ = ("path", "kind", "used", "keys", "values_at", "kinds", "fd")

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)     # kept: the file is never replaced
        self.used = -1
        self.keys: tuple[str, ...] = ()
        self.values_at = struct.Struct("")
        self.kinds: dict[str, str] = {}

    def close(self) -> None:
        os.close(self.fd)

    def read(self) -> tuple[float, ...]:
        data = os.pread(self.fd, max(mmap.PAGESIZE, self.used), 0)    # most often all of it at once
        used = struct.unpack_from("i", data, 0)[0]
        if used > len(data):
            data += os.pread(self.fd, used - len(data), len(data))
        if used != self.used:
            entries = list(_read_all_values(data, used))
            self.keys = tuple(key for key, _, _, _ in entries)
            layout, at = ["="], 0
            for _, _, _, pos in entries:     # each value a native double at pos (its timestamp unused)
                layout.append(f"{pos - at}xd")
                at = pos + 8
            self.values_at = struct.Struct("".join(layout))
            self.kinds = dict.fromkeys(self.keys, self.kind)
            self.used = used
        return self.values_at.unpack_from(data, 0)


_RELIST_NS = 2_000_000_000


class _SharedExposition:
    """The samples in the processes' files, summed and rendered in the text format.

    What prometheus-client's MultiProcessCollector and generate_latest do for counters and
    histograms (the only kinds kept in the files here), with each key's meaning parsed and
    its line head rendered once rather than on every scrape (keys change only when a label
    set is first counted): that is most of a scrape's CPU (bench/metrics_scrape.py).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.known: frozenset[str] = frozenset()
        self.layout: list[tuple[str, list[_Series]]] = []     # (HELP and TYPE lines, series)
        self.files: dict[str, _SamplesFile] = {}
        self.order: tuple[str, ...] = ()       # every series' keys, in layout order
        self.lock = threading.Lock()           # scrapes at once (event loop and a thread) share the open files
        # (values in layout order, text) of the last scrape, replaced whole: scrapes may run at once.
        self.last: tuple[tuple[float, ...], str] = ((), "")
        self.listed: tuple[int, int] = (-1, -1)     # the directory's (inode, mtime) when last listed
        self.paths: list[str] = []

    def _sample_paths(self) -> list[str]:
        """The processes' files. A file is added when a process first counts something of a
        kind, so the directory rarely changes: listed again only when its mtime moved, or
        moved lately (a file made within the same clock tick as the last listing leaves the
        mtime as it was), else one stat instead of a listing (most of a scrape's CPU)."""
        st = os.stat(self.directory)
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self.listed or time.time_ns() - st.st_mtime_ns < _RELIST_NS:
            self.paths = [os.path.join(self.directory, name) for name in sorted(os.listdir(self.directory))
                          if name.endswith(".db")]
            self.listed = stamp
        return self.paths

    def _rebuild(self, kinds: dict[str, str]) -> None:
        metrics: dict[str, tuple[str, dict[tuple, _Series]]] = {}
        for key, kind in kinds.items():
            metric, sample, labels, help_text = json.loads(key)
            name = metric + "_total" if kind == "counter" else metric
            head = (f"# HELP {name} " + help_text.replace("\\", r"\\").replace("\n", r"\n")
                    + f"\n# TYPE {name} {kind}\n")
            le = labels.pop("le", None)
            ordered = tuple(sorted(labels.items()))
            one = metrics.setdefault(metric, (head, {}))[1].setdefault(ordered, _Series())
            if kind == "counter":
                one.key, one.line = key, f"{sample}{_label_text(ordered)} "
            elif le is not None:
                one.buckets.append((float(le), key, f"{metric}_bucket{_label_text([*ordered, ('le', le)])} "))
            else:      # a histogram's sum; its count is its buckets' total
                one.sum_key, one.sum_line = key, f"{sample}{_label_text(ordered)} "
                one.count_line = f"{metric}_count{_label_text(ordered)} "
        self.layout = []
        order: list[str] = []
        for _, (head, series) in sorted(metrics.items()):
            ordered_series = [series[labels] for labels in sorted(series)]
            for one in ordered_series:
                one.ready()
                one.start = len(order)
                order.extend(one.keys)
                one.end = len(order)
            self.layout.append((head, ordered_series))
        self.order = tuple(order)
        self.last = ((), "")
        self.known = frozenset(kinds)

    def render(self) -> str:
        with self.lock:
            return self._render()

    def _render(self) -> str:
        totals: dict[str, float] = {}
        kinds: dict[str, str] = {}
        files = {}
        for path in self._sample_paths():
            found = files[path] = self.files.get(path) or _SamplesFile(path, os.path.basename(path).split("_", 1)[0])
            values = found.read()
            if totals.keys().isdisjoint(found.kinds):    # one process's file: no sums to make
                totals.update(zip(found.keys, values))
            else:                                        # the same series in several processes' files
                for key, value in zip(found.keys, values):
                    totals[key] = totals.get(key, 0.0) + value
            kinds.update(found.kinds)
        for path, gone in self.files.items():
            if path not in files:
                gone.close()
        self.files = files
        if kinds.keys() != self.known:
            self._rebuild(kinds)
        totals[""] = 0.0       # a histogram without its sum yet (a key not written)
        values = tuple(map(totals.__getitem__, self.order))     # every value, in C
        last_values, last_text = self.last
        if values == last_values:                       # nothing counted since: the same text
            return last_text
        lines: list[str] = []
        for head, series in self.layout:
            lines.append(head)
            lines.extend(one.render(values[one.start:one.end]) for one in series)
        text = "".join(lines)
        self.last = (values, text)
        return text


class PrometheusMeter(Meter):
    def __init__(self, job_counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.directory = _shared_directory()
        # In the shared mode the samples are in the files, not in a registry of this process.
        self.registry = None if self.directory else CollectorRegistry()
        own = self.registry
        self.requests = Counter("vmimage_http_requests", "HTTP requests answered",
                                ["face", "method", "route", "status"], registry=own)
        self.request_seconds = Histogram("vmimage_http_request_duration_seconds", "Time to answer an HTTP request",
                                         ["face", "route"], registry=own)
        self.upload_bytes = Counter("vmimage_upload_bytes", "Image data received", ["face"], registry=own)
        self.download_bytes = Counter("vmimage_download_bytes", "Image data sent", ["face"], registry=own)
        self.job_seconds = Histogram("vmimage_job_duration_seconds", "Time from a job's start to its end",
                                     ["kind", "status"], buckets=_JOB_SECONDS, registry=own)
        self.store_errors = Counter("vmimage_store_errors", "Store calls failed on the store's side",
                                    ["store", "operation"], registry=own)
        self.login_failures = Counter("vmimage_login_failures", "Logins refused for their credentials",
                                      ["face"], registry=own)
        self.signature_failures = Counter("vmimage_signature_failures", "Signed requests whose signature "
                                          "did not hold", ["face"], registry=own)
        self._per_request: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self.jobs = _Jobs(job_counts)
        self.exposition = _SharedExposition(self.directory) if self.directory else None
        if self.registry is not None:
            self.registry.register(self.jobs)

    # --- the Meter port -------------------------------------------------------------------

    def request(self, face: str, method: str, route: str, status: int, seconds: float) -> None:
        # Every request passes here: its two samples are looked up once per label set.
        verb = method if method in _METHODS else "other"     # a client's own verb is no label
        found = self._per_request.get((face, verb, route, status))
        if found is None:
            found = self._per_request[(face, verb, route, status)] = (
                self.requests.labels(face, verb, route, str(status)), self.request_seconds.labels(face, route))
        count, duration = found
        count.inc()
        duration.observe(seconds)

    def uploaded(self, face: str, size: int) -> None:
        self.upload_bytes.labels(face).inc(size)

    def downloaded(self, face: str, size: int) -> None:
        self.download_bytes.labels(face).inc(size)

    def job_finished(self, kind: str, status: str, seconds: float) -> None:
        self.job_seconds.labels(kind, status).observe(max(0.0, seconds))

    def store_error(self, store: str, operation: str) -> None:
        self.store_errors.labels(store, operation).inc()

    def login_failure(self, face: str) -> None:
        self.login_failures.labels(face).inc()

    def signature_failure(self, face: str) -> None:
        self.signature_failures.labels(face).inc()

    # --- the scrape -----------------------------------------------------------------------

    def scrape(self) -> bytes:
        """Every process's samples and the jobs in the database, in Prometheus' text format
        (blocking: files and, at most once a second, a database query)."""
        if self.exposition is None:
            assert self.registry is not None
            return generate_latest(self.registry)
        return (self.exposition.render() + self.jobs.text()).encode()

    def scrape_without_waiting(self) -> bytes | None:
        """The scrape, when it needs no database query (the jobs gauge read within the
        second): the processes' files are a few KiB in the page cache, read in tens of
        microseconds, so the event loop may answer it without a thread's hand-over, which
        cost more than the scrape itself. None: ask scrape() on a thread."""
        if self.exposition is None or not self.jobs.fresh():
            return None
        return (self.exposition.render() + self.jobs.text()).encode()
