"""What an operator's probes ask of the service: is it ready, and how many jobs are where."""

from __future__ import annotations

import logging
from collections.abc import Callable

from vmimage.core.errors import VmImageError
from vmimage.core.services.deps import Deps

log = logging.getLogger("vmimage")


def job_counts(deps: Deps) -> dict[tuple[str, str], int]:
    """The jobs in the database by (kind, status)."""
    with deps.uow() as uow:
        return uow.jobs.counts()


def unready(deps: Deps, jobs_running: Callable[[], bool]) -> dict[str, str]:
    """What keeps the service from serving, by name ("database", "store <name>", "jobs"),
    each with a short reason that names no credential and no path; empty when ready."""
    failed: dict[str, str] = {}
    try:
        job_counts(deps)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the database does not answer
        log.warning("readiness: the database did not answer: %s", type(exc).__name__)
        failed["database"] = "not answering"
    for name, store in deps.stores.items():
        if store.read_only:
            continue
        try:
            store.check()
        except VmImageError as exc:
            failed[f"store {name}"] = "not answering" if exc.fields.get("retry_after") is None \
                else "not answering (calls paused)"
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is a store not answering
            log.warning("readiness: store %s: %s", name, type(exc).__name__)
            failed[f"store {name}"] = "not answering"
    if not jobs_running():
        failed["jobs"] = "the job engine is not running"
    return failed
