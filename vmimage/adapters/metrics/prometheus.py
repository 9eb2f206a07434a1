"""The core's Meter as Prometheus metrics, and the scrape of GET /metrics.

`vmimage serve` keeps every serving process's samples in files under `<data dir>/metrics`
(prometheus-client's multiprocess mode), emptied at start: a scrape answered by any worker
sums all of them, and a worker that dies and is restarted leaves its counts in its files, so
nothing counted is lost. Without that directory (a container built in a test) the samples
stay in the process. The jobs gauge is read from the database at scrape time, so every
process answers the same figures for the whole service.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from vmimage.core.metrics import Meter

CONTENT_TYPE = CONTENT_TYPE_LATEST
_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"     # where prometheus-client's processes keep their files
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
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
    """vmimage_jobs{kind, status}: the jobs in the database by kind and status, at scrape time."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("vmimage_jobs", "Jobs in the database by kind and status",
                                   labels=["kind", "status"])
        for (kind, status), count in sorted(self.counts().items()):
            family.add_metric([kind, status], count)
        yield family


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
        self.jobs = _Jobs(job_counts)
        if self.registry is not None:
            self.registry.register(self.jobs)

    # --- the Meter port -------------------------------------------------------------------

    def request(self, face: str, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"     # a client's verb is no label
        self.requests.labels(face, method, route, str(status)).inc()
        self.request_seconds.labels(face, route).observe(seconds)

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
        (blocking: files and a database query)."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self.directory)
        registry.register(self.jobs)
        return generate_latest(registry)
