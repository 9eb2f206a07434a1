"""Buckets of the object storage that an operator granted to projects: import sources and
export targets. A project reads and writes objects only in buckets granted to it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from vmimage.core.errors import Invalid

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
MAX_KEY = 1024


@dataclass(frozen=True)
class BucketGrant:
    bucket: str
    project_id: str
    created_at: datetime | None = None


def check_bucket(name: object) -> str:
    if not isinstance(name, str) or not _BUCKET.match(name):
        raise Invalid("'bucket' must be a bucket name of 3 to 255 letters, digits, '.', '_' or '-'", field="bucket")
    return name


def check_key(key: object) -> str:
    if (not isinstance(key, str) or not key or len(key.encode()) > MAX_KEY or key.startswith("/")
            or any(ord(c) < 32 for c in key)):
        raise Invalid(f"'key' must be an object name of 1 to {MAX_KEY} bytes, not starting with '/'", field="key")
    return key


def not_granted(bucket: str) -> Invalid:
    """The one refusal for a bucket or object the caller may not use: the same whether the
    bucket or object exists or not, so it tells nothing about other projects' storage."""
    return Invalid(f"Bucket '{bucket}' is not granted to this project", bucket=bucket)
