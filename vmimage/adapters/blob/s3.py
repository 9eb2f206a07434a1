"""S3BlobStore: blobs as objects in one bucket (under an optional prefix) of an S3 server.

A write is a multipart upload, started when the first part is full, whose parts go up on a
few threads while the caller keeps streaming; at most `max_in_flight` parts are held in
memory at once, so a write of any size costs a bounded amount of memory. Nothing is visible
under the key until commit() completes the upload (a blob smaller than one part is one PUT
at commit); abort() aborts it. A process that dies mid-write leaves an unfinished upload,
which cleanup_partial() aborts. Reads are ranged GETs streamed in chunks.

Credentials stay inside the boto3 client: locations, descriptions and errors name only the
bucket and the key, and SDK errors become core errors at this edge (_translated).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vmimage.core.errors import BackendUnavailable, NotFound
from vmimage.core.ports import READ_CHUNK

log = logging.getLogger("vmimage.s3")

PART_SIZE = 8 << 20          # the first 1,000 parts; then the size doubles every 1,000 parts
MAX_PART_SIZE = 5 << 30      # S3's limit
MAX_IN_FLIGHT = 4            # parts held in memory at once (being uploaded or queued): 2 left the
                             # upload waiting on Swift (ratio 0.66 vs boto3), 4 peak at ~180 MiB RSS
# Keys this service writes: image ids and their staging keys. Only uploads to such keys are
# ever aborted by a cleanup of the whole store.
_OUR_KEY = re.compile(r"^(staging-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}


@dataclass(frozen=True)
class S3Connection:
    endpoint: str | None
    access_key: str | None
    secret_key: str | None
    region: str = "us-east-1"

    def __repr__(self) -> str:       # never print the secret
        return f"S3Connection(endpoint={self.endpoint!r}, region={self.region!r})"

    def client(self, pool: int = 16):
        # Bodies are not SHA-256 signed (UNSIGNED-PAYLOAD, what the SDKs do over TLS): over plain
        # http botocore would hash every byte once more, and the server would again; the core
        # already hashes the data (md5 + sha512) in its own pass.
        config = Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                        signature_version="s3v4",
                        retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=pool,
                        connect_timeout=10, read_timeout=120,
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
        return _session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region, config=config)


_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()


def _session() -> boto3.session.Session:
    """One SDK session per process: every client of it shares the loaded service model
    (some 12 MiB per session otherwise). Made at first use, not at import."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translated(store: str, what: str, key: str | None = None) -> Iterator[None]:
    """SDK errors -> core errors; the message names the store, the action and S3's error code."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in _MISSING:
            raise NotFound("Image data not found in the store", store=store, key=key) from None
        raise BackendUnavailable(f"Store '{store}' failed to {what}: {code or 'error'}", store=store) from None
    except BotoCoreError as exc:
        # The class name only: some botocore messages carry the endpoint's full request.
        raise BackendUnavailable(f"Store '{store}' failed to {what}: {type(exc).__name__}",
                                 store=store) from None


def part_size(part_number: int) -> int:
    """The size of part n (1-based): 8 MiB up to part 1,000, doubling every 1,000 parts, so
    10,000 parts hold far more than any image while small images keep small parts."""
    return min(PART_SIZE << ((part_number - 1) // 1000), MAX_PART_SIZE)


class _S3Writer:
    def __init__(self, store: "S3BlobStore", key: str) -> None:
        self._store, self._key = store, key
        self._object = store.object_key(key)
        self._part: bytearray | None = None      # the part being filled
        self._fill = 0
        self._upload_id: str | None = None
        self._parts: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(store.max_in_flight)
        self._done = False

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._part is None:
                self._part, self._fill = bytearray(part_size(len(self._parts) + 1)), 0
            n = min(len(view), len(self._part) - self._fill)
            self._part[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == len(self._part):
                self._send(self._take())

    def _take(self) -> bytearray:
        """The part filled so far (trimmed to what it holds); a new one starts at the next write."""
        part, fill = self._part if self._part is not None else bytearray(), self._fill
        if fill < len(part):
            del part[fill:]
        self._part, self._fill = None, 0
        return part

    def _send(self, data: bytearray) -> None:
        store = self._store
        if self._upload_id is None:
            with _translated(store.name, "start an upload", self._key):
                self._upload_id = store.client.create_multipart_upload(
                    Bucket=store.bucket, Key=self._object)["UploadId"]
            self._pool = ThreadPoolExecutor(store.max_in_flight, thread_name_prefix=f"s3-{store.name}")
        pool = self._pool
        assert pool is not None          # started with the upload
        self._raise_failed()
        self._slots.acquire()            # at most max_in_flight parts held in memory
        number = len(self._parts) + 1
        try:
            future = pool.submit(self._upload_part, number, data)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        self._parts.append(future)

    def _upload_part(self, number: int, data: bytearray) -> dict:
        store = self._store
        with _translated(store.name, "write a part", self._key):
            etag = store.client.upload_part(Bucket=store.bucket, Key=self._object, UploadId=self._upload_id,
                                            PartNumber=number, Body=data)["ETag"]
        return {"PartNumber": number, "ETag": etag}

    def _raise_failed(self) -> None:
        for future in self._parts:
            failure = future.exception() if future.done() else None
            if failure is not None:
                raise failure

    def commit(self) -> None:
        store = self._store
        try:
            if self._upload_id is None:          # smaller than one part: one plain PUT
                with _translated(store.name, "write", self._key):
                    store.client.put_object(Bucket=store.bucket, Key=self._object, Body=bytes(self._take()))
            else:
                if self._fill or not self._parts:
                    self._send(self._take())
                parts = [future.result() for future in self._parts]
                with _translated(store.name, "complete an upload", self._key):
                    store.client.complete_multipart_upload(
                        Bucket=store.bucket, Key=self._object, UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts})
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._close_pool()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._part, self._fill = None, 0
        for future in self._parts:
            future.cancel()
        self._close_pool()
        if self._upload_id is not None:
            try:
                with _translated(self._store.name, "abort an upload", self._key):
                    self._store.client.abort_multipart_upload(Bucket=self._store.bucket, Key=self._object,
                                                              UploadId=self._upload_id)
            except NotFound:
                pass
            except BackendUnavailable:     # left for cleanup_partial
                log.warning("could not abort the upload of %s in store %s", self._key, self._store.name)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class S3BlobStore:
    kind = "s3"
    read_only = False

    def __init__(self, name: str, bucket: str, prefix: str, connection: S3Connection,
                 description: str = "", max_in_flight: int = MAX_IN_FLIGHT, object_names: bool = False,
                 client=None) -> None:
        """object_names: keys are any object names (a user's bucket), not image keys."""
        self.name, self.bucket, self.object_names = name, bucket, object_names
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = description or f"Objects in S3 bucket {bucket}" + (f" under {self.prefix}" if self.prefix else "")
        self.max_in_flight = max(1, max_in_flight)
        self.client = client or connection.client(pool=4 * self.max_in_flight)
        self._bucket_ready = False
        self._lock = threading.Lock()

    def object_key(self, key: str) -> str:
        if self.object_names and key:
            return self.prefix + key
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.prefix + key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (several processes may race to do it)."""
        if self._bucket_ready:
            return
        with self._lock, _translated(self.name, "create its bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except ClientError as exc2:
                    if _code(exc2) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    def writer(self, key: str) -> _S3Writer:
        self.ensure_bucket()
        return _S3Writer(self, key)

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        if end is not None and end <= start:
            return iter(())
        args = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with _translated(self.name, "read", key):
                body = self.client.get_object(**args)["Body"]
        except BackendUnavailable:
            if start and self._past_end(key, start):
                return iter(())       # a range that starts past the end: no bytes
            raise

        def chunks() -> Iterator[bytes]:
            try:
                with _translated(self.name, "read", key):
                    yield from body.iter_chunks(chunk_size)
            finally:
                body.close()
        return chunks()

    def _past_end(self, key: str, start: int) -> bool:
        return start >= self.size(key)

    def delete(self, key: str) -> None:
        with _translated(self.name, "delete", key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
            except ClientError as exc:
                if _code(exc) not in _MISSING and _code(exc) != "NoSuchBucket":
                    raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except NotFound:
            return False

    def size(self, key: str) -> int:
        with _translated(self.name, "look at", key):
            try:
                return int(self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))["ContentLength"])
            except ClientError as exc:
                if _code(exc) == "NoSuchBucket":
                    raise NotFound("Image data not found in the store", store=self.name, key=key) from None
                raise

    def unfinished_uploads(self, key: str | None = None) -> list[tuple[str, str]]:
        """(object key, upload id) of this service's unfinished uploads (of one key, or all)."""
        found = []
        with _translated(self.name, "list uploads", key):
            try:
                pages = self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=self.object_key(key) if key else self.prefix)
                for page in pages:
                    for upload in page.get("Uploads", []):
                        name = upload["Key"][len(self.prefix):]
                        if (name == key) if key else _OUR_KEY.match(name):
                            found.append((upload["Key"], upload["UploadId"]))
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise
        return found

    def cleanup_partial(self, key: str | None = None) -> int:
        count = 0
        for object_key, upload_id in self.unfinished_uploads(key):
            with _translated(self.name, "abort an upload", key):
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
                    count += 1
                except ClientError as exc:
                    if _code(exc) not in _MISSING:
                        raise
        return count

    def keys(self) -> list[str]:
        """The keys of the blobs in this store (under its prefix)."""
        found: list[str] = []
        with _translated(self.name, "list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                found.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
        return found

    def local_path(self, key: str) -> str | None:
        return None


class S3Buckets:
    """The buckets of one S3 server as blob stores keyed by object name (users' buckets)."""

    def __init__(self, connection: S3Connection) -> None:
        self._connection = connection
        self._client = None
        self._lock = threading.Lock()

    def store(self, bucket: str) -> S3BlobStore:
        with self._lock:
            if self._client is None:
                self._client = self._connection.client(pool=4 * MAX_IN_FLIGHT)
        store = S3BlobStore(f"bucket {bucket}", bucket, "", self._connection, description=f"S3 bucket {bucket}",
                            object_names=True, client=self._client)
        store._bucket_ready = True        # never created here: an operator's bucket
        return store
