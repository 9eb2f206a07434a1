"""S3BlobStore: blobs as objects in one bucket (under an optional prefix) of an S3 server.

A write is a multipart upload, started when the first part is full, whose parts go up on a
few threads while the caller keeps streaming; at most `max_in_flight` parts are held in
memory at once, so a write of any size costs a bounded amount of memory. Nothing is visible
under the key until commit() completes the upload (a blob smaller than one part is one PUT
at commit); abort() aborts it. Every upload is written down in the journal until it ends, so
one whose abort failed (S3 down or stalled) or whose process died is aborted later
(s3_uploads.py); cleanup_partial() aborts a store's unfinished uploads by prefix. Reads are
ranged GETs streamed in chunks.

Every call to the S3 server goes through the store's backend (core/backends.py): a slot of its
own pool, a connect and read deadline of `stall_seconds` that botocore does not multiply by
retrying a timed-out attempt, and a breaker that refuses calls at once while the server keeps
failing. Timeouts, refused connections and 5xx answers are outages; a missing object is not.

Credentials stay inside the boto3 client: locations, descriptions and errors name only the
bucket and the key, and SDK errors become core errors at this edge (_call).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError, ConnectTimeoutError, HTTPClientError,
                                 IncompleteReadError, ReadTimeoutError)

from vmimage.adapters.blob.s3_uploads import Entry, UploadJanitor
from vmimage.core.backends import Backend
from vmimage.core.errors import BackendUnavailable, NotFound
from vmimage.core.metrics import meter
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
_OUTAGES = (ConnectionError, HTTPClientError, IncompleteReadError)    # timeouts, refused and cut connections
_STALLS = (ReadTimeoutError, ConnectTimeoutError)


@dataclass(frozen=True)
class S3Connection:
    endpoint: str | None
    access_key: str | None
    secret_key: str | None
    region: str = "us-east-1"

    def __repr__(self) -> str:       # never print the secret
        return f"S3Connection(endpoint={self.endpoint!r}, region={self.region!r})"

    def client(self, pool: int = 16, stall_seconds: float | None = 15.0):
        """stall_seconds: the connect and read deadline (a read: the next bytes of an answer)."""
        # Bodies are not SHA-256 signed (UNSIGNED-PAYLOAD, what the SDKs do over TLS): over plain
        # http botocore would hash every byte once more, and the server would again; the core
        # already hashes the data (md5 + sha512) in its own pass.
        deadline = stall_seconds if stall_seconds is not None else 120
        config = Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                        signature_version="s3v4",
                        retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=pool,
                        connect_timeout=deadline, read_timeout=deadline,
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
        client = _session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region, config=config)
        client.meta.events.register_first("needs-retry.s3", _no_retry_after_a_stall,
                                          unique_id="vmimage-no-retry-after-a-stall")
        return client


def _no_retry_after_a_stall(caught_exception: BaseException | None = None, **_kwargs) -> bool | None:
    """botocore retries an attempt that timed out like any failed connection, so one stalled
    server would hold its caller for five deadlines. Registered before botocore's own retry
    handler, whose answer only counts when this one says None, a False ends the retries."""
    return False if isinstance(caught_exception, _STALLS) else None


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


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


@contextmanager
def _call(backend: Backend, store: str, what: str, key: str | None = None) -> Iterator[None]:
    """One call to the S3 server through the backend's gate. SDK errors -> core errors: the
    message names the store, the action and S3's error code; outages count for the breaker."""
    with backend.call() as call:
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                raise NotFound("Image data not found in the store", store=store, key=key) from None
            if _status(exc) >= 500 or _status(exc) == 429:
                call.failed()
            meter().store_error(store, what)
            raise BackendUnavailable(f"Store '{store}' failed to {what}: {code or 'error'}", store=store) from None
        except BotoCoreError as exc:
            if isinstance(exc, _OUTAGES):
                call.failed(stalled=isinstance(exc, _STALLS))
            # The class name only: some botocore messages carry the endpoint's full request.
            reason = (f"no answer within {backend.stall_seconds:g} s" if isinstance(exc, _STALLS)
                      else type(exc).__name__)
            meter().store_error(store, what)
            raise BackendUnavailable(f"Store '{store}' failed to {what}: {reason}",
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
        self._entry: Path | None = None           # the upload's line in the journal
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
            with store.call("start an upload", self._key):
                self._upload_id = store.client.create_multipart_upload(
                    Bucket=store.bucket, Key=self._object)["UploadId"]
            self._entry = store.journal_begin(self._object, self._upload_id)
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
        with store.call("write a part", self._key):
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
                with store.call("write", self._key):
                    store.client.put_object(Bucket=store.bucket, Key=self._object, Body=bytes(self._take()))
            else:
                if self._fill or not self._parts:
                    self._send(self._take())
                parts = [future.result() for future in self._parts]
                with store.call("complete an upload", self._key):
                    store.client.complete_multipart_upload(
                        Bucket=store.bucket, Key=self._object, UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts})
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._close_pool()
        store.journal_end(self._entry)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._part, self._fill = None, 0
        for future in self._parts:
            future.cancel()
        self._close_pool()
        if self._upload_id is not None:
            store = self._store
            try:
                with store.call("abort an upload", self._key):
                    store.client.abort_multipart_upload(Bucket=store.bucket, Key=self._object,
                                                        UploadId=self._upload_id)
            except NotFound:
                pass
            except BackendUnavailable:     # the janitor aborts it once S3 answers again
                log.warning("could not abort the upload of %s in store %s yet", self._key, store.name)
                store.journal_orphan(self._entry)
                return
            store.journal_end(self._entry)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class S3BlobStore:
    kind = "s3"
    read_only = False

    def __init__(self, name: str, bucket: str, prefix: str, connection: S3Connection,
                 description: str = "", max_in_flight: int = MAX_IN_FLIGHT, object_names: bool = False,
                 client=None, backend: Backend | None = None, janitor: UploadJanitor | None = None) -> None:
        """object_names: keys are any object names (a user's bucket), not image keys.
        backend: the gate of every call (its own when not given); janitor: where the store's
        multipart uploads are written down until they end (none: not written down)."""
        self.name, self.bucket, self.object_names = name, bucket, object_names
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = description or f"Objects in S3 bucket {bucket}" + (f" under {self.prefix}" if self.prefix else "")
        self.max_in_flight = max(1, max_in_flight)
        self.backend = backend or Backend(f"S3 store '{name}'")
        self.janitor = janitor
        if client is None:
            client = connection.client(pool=4 * self.max_in_flight, stall_seconds=self.backend.stall_seconds)
            if janitor is not None:      # the janitor aborts this store's leftovers with its client
                janitor.register(self.backend.name, abort_entry(client, self.backend))
                self.backend.on_recovery(janitor.wake)
        self.client = client
        self._bucket_ready = False
        self._lock = threading.Lock()

    def call(self, what: str, key: str | None = None):
        """One call to the S3 server (see _call)."""
        return _call(self.backend, self.name, what, key)

    # --- the journal of multipart uploads (s3_uploads.py) -----------------------------------

    def journal_begin(self, object_key: str, upload_id: str) -> Path | None:
        if self.janitor is None:
            return None
        try:
            return self.janitor.journal.begin(self.backend.name, self.bucket, object_key, upload_id)
        except OSError:
            log.warning("could not write down the upload of %s in store %s", object_key, self.name, exc_info=True)
            return None

    def journal_end(self, entry: Path | None) -> None:
        if self.janitor is not None and entry is not None:
            self.janitor.journal.end(entry)

    def journal_orphan(self, entry: Path | None) -> None:
        if self.janitor is not None and entry is not None:
            try:
                self.janitor.journal.orphan(entry)
            except OSError:
                log.warning("could not mark an unfinished upload in store %s", self.name, exc_info=True)
            self.janitor.wake()

    # --- the BlobStore port -----------------------------------------------------------------

    def object_key(self, key: str) -> str:
        if self.object_names and key:
            return self.prefix + key
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.prefix + key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def check(self) -> None:
        with self.call("look at its bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (several processes may race to do it)."""
        if self._bucket_ready:
            return
        with self._lock, self.call("create its bucket"):
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
        """Opens the object now (a GET); each chunk after is one call of its own, so a reader
        holds a slot only while it reads, not while its caller sends the bytes on."""
        if end is not None and end <= start:
            return iter(())
        args = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self.call("read", key):
            try:
                body = self.client.get_object(**args)["Body"]
            except ClientError as exc:
                if _code(exc) != "InvalidRange" or not start:
                    raise
                body = None
        if body is None:
            if self._past_end(key, start):
                return iter(())       # a range that starts past the end: no bytes
            raise BackendUnavailable(f"Store '{self.name}' refused the range {args['Range']}", store=self.name)

        def chunks() -> Iterator[bytes]:
            stream = body.iter_chunks(chunk_size)
            try:
                while True:
                    with self.call("read", key):
                        chunk = next(stream, None)
                    if chunk is None:
                        return
                    yield chunk
            finally:
                body.close()
        return chunks()

    def _past_end(self, key: str, start: int) -> bool:
        return start >= self.size(key)

    def delete(self, key: str) -> None:
        with self.call("delete", key):
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
        with self.call("look at", key):
            try:
                return int(self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))["ContentLength"])
            except ClientError as exc:
                if _code(exc) == "NoSuchBucket":
                    raise NotFound("Image data not found in the store", store=self.name, key=key) from None
                raise

    def unfinished_uploads(self, key: str | None = None,
                           initiated_before: datetime | None = None) -> list[tuple[str, str]]:
        """(object key, upload id) of this service's unfinished uploads (of one key, or all;
        initiated before a time, when given)."""
        found = []
        with self.call("list uploads", key):
            try:
                pages = self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=self.object_key(key) if key else self.prefix)
                for page in pages:
                    for upload in page.get("Uploads", []):
                        name = upload["Key"][len(self.prefix):]
                        if not ((name == key) if key else _OUR_KEY.match(name)):
                            continue
                        started = upload.get("Initiated")
                        if initiated_before is not None and isinstance(started, datetime) \
                                and started >= initiated_before:
                            continue
                        found.append((upload["Key"], upload["UploadId"]))
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise
        return found

    def cleanup_partial(self, key: str | None = None) -> int:
        """Abort the unfinished uploads of a key, or of the whole store (a single process at
        its start: nothing of the service is writing). A store-wide sweep that S3 does not
        answer is left to the janitor, which does it once S3 answers, sparing what this
        process started since."""
        if key is not None or self.janitor is None:
            return self._abort_unfinished(key)
        started = datetime.now().astimezone()
        try:
            return self._abort_unfinished(None)
        except BackendUnavailable:
            janitor = self.janitor
            janitor.sweep_later(f"store {self.name}", lambda: self._abort_unfinished(
                None, initiated_before=started, sparing=janitor.journal.live_upload_ids()))
            raise

    def _abort_unfinished(self, key: str | None, initiated_before: datetime | None = None,
                          sparing: Collection[str] = ()) -> int:
        count = 0
        for object_key, upload_id in self.unfinished_uploads(key, initiated_before):
            if upload_id in sparing:
                continue
            with self.call("abort an upload", key):
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
        with self.call("list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                found.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
        return found

    def local_path(self, key: str) -> str | None:
        return None

    def open_file(self, key: str) -> None:
        return None


def abort_entry(client, backend: Backend):
    """The janitor's abort of a journal entry with this client (NotFound: already gone)."""
    def abort(entry: Entry) -> None:
        with _call(backend, backend.name, "abort an upload", entry.key):
            try:
                client.abort_multipart_upload(Bucket=entry.bucket, Key=entry.key, UploadId=entry.upload_id)
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":      # the bucket went, and its uploads with it
                    raise
    return abort


class S3Buckets:
    """The buckets of one S3 server as blob stores keyed by object name (users' buckets)."""

    def __init__(self, connection: S3Connection, backend: Backend | None = None,
                 janitor: UploadJanitor | None = None) -> None:
        self._connection = connection
        self.backend = backend or Backend("S3 buckets")
        self.janitor = janitor
        self._client = None
        self._lock = threading.Lock()

    def _shared_client(self):
        with self._lock:
            if self._client is None:
                self._client = self._connection.client(pool=4 * MAX_IN_FLIGHT, stall_seconds=self.backend.stall_seconds)
                if self.janitor is not None:
                    self.janitor.register(self.backend.name, abort_entry(self._client, self.backend))
                    self.backend.on_recovery(self.janitor.wake)
            return self._client

    def register(self) -> None:
        """Let the janitor abort this server's leftovers now (it needs the client)."""
        self._shared_client()

    def store(self, bucket: str) -> S3BlobStore:
        store = S3BlobStore(f"bucket {bucket}", bucket, "", self._connection, description=f"S3 bucket {bucket}",
                            object_names=True, client=self._shared_client(), backend=self.backend,
                            janitor=self.janitor)
        store._bucket_ready = True        # never created here: an operator's bucket
        return store
