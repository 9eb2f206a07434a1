"""S3BlobStore against a real OpenStack Swift s3api (tests/swift.py)."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from vmimage.adapters.blob.s3 import S3BlobStore, S3Connection, part_size
from vmimage.core.errors import BackendUnavailable, NotFound


@pytest.fixture()
def store(swift_s3):
    env = swift_s3.env
    conn = S3Connection(env["VMIMAGE_S3_ENDPOINT"], env["VMIMAGE_S3_ACCESS_KEY"], env["VMIMAGE_S3_SECRET_KEY"])
    return S3BlobStore("obj", f"t-{uuid.uuid4().hex[:8]}", "some/prefix", conn)


def _write(store, key: str, data: bytes, chunk: int = 1 << 20, commit: bool = True):
    writer = store.writer(key)
    for i in range(0, len(data), chunk):
        writer.write(data[i:i + chunk])
    if commit:
        writer.commit()
    return writer


def test_bucket_is_created_and_small_blob_round_trips(store, swift_s3):
    key = str(uuid.uuid4())
    _write(store, key, b"hello world")
    assert store.exists(key) and store.size(key) == 11
    assert b"".join(store.read(key)) == b"hello world"
    assert b"".join(store.read(key, 6)) == b"world"
    assert b"".join(store.read(key, 0, 5)) == b"hello"
    assert b"".join(store.read(key, 11)) == b""
    assert store.url(key) == f"s3://{store.bucket}/some/prefix/{key}"
    objects = swift_s3.client().list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [o["Key"] for o in objects] == [f"some/prefix/{key}"]
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)       # twice is fine
    with pytest.raises(NotFound):
        store.read(key)
    with pytest.raises(NotFound):
        store.size(key)


def test_multipart_blob_is_invisible_until_commit(store):
    key = str(uuid.uuid4())
    data = os.urandom(3 * part_size(1) + 12345)
    writer = _write(store, key, data, chunk=(1 << 20) + 7, commit=False)
    assert not store.exists(key)
    assert len(store.unfinished_uploads(key)) == 1
    writer.commit()
    assert store.unfinished_uploads(key) == []
    assert store.size(key) == len(data)
    assert hashlib.sha256(b"".join(store.read(key))).digest() == hashlib.sha256(data).digest()
    start, end = part_size(1) - 10, 2 * part_size(1) + 10
    assert b"".join(store.read(key, start, end, chunk_size=4096)) == data[start:end]


def test_one_part_in_flight_round_trips_many_parts(swift_s3):
    """With one part in flight, parts go one after the other and still come back in order."""
    env = swift_s3.env
    conn = S3Connection(env["VMIMAGE_S3_ENDPOINT"], env["VMIMAGE_S3_ACCESS_KEY"], env["VMIMAGE_S3_SECRET_KEY"])
    store = S3BlobStore("obj", f"t-{uuid.uuid4().hex[:8]}", "", conn, max_in_flight=1)
    key = str(uuid.uuid4())
    data = os.urandom(4 * part_size(1) + 999)
    _write(store, key, data, chunk=(960 << 10) + 3)
    assert hashlib.sha256(b"".join(store.read(key))).digest() == hashlib.sha256(data).digest()


def test_abort_leaves_nothing(store):
    key = str(uuid.uuid4())
    writer = _write(store, key, os.urandom(2 * part_size(1) + 1), commit=False)
    writer.abort()
    assert not store.exists(key)
    assert store.unfinished_uploads() == []


def test_cleanup_partial_aborts_only_this_services_uploads(store, swift_s3):
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    _write(store, mine, os.urandom(part_size(1) + 1), commit=False)           # a writer that died
    _write(store, f"staging-{other}", os.urandom(part_size(1) + 1), commit=False)
    s3 = swift_s3.client()
    foreign = s3.create_multipart_upload(Bucket=store.bucket, Key="some/prefix/somebody-elses")["UploadId"]
    assert store.cleanup_partial(mine) == 1
    assert [k for k, _ in store.unfinished_uploads()] == [f"some/prefix/staging-{other}"]
    assert store.cleanup_partial() == 1
    left = s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in left] == [("some/prefix/somebody-elses", foreign)]


def test_errors_name_no_credentials(swift_s3):
    env = swift_s3.env
    secret = "not-the-secret-" + uuid.uuid4().hex
    bad = S3BlobStore("obj", "somebucket", "", S3Connection(env["VMIMAGE_S3_ENDPOINT"], "test:tester", secret))
    with pytest.raises(BackendUnavailable) as info:
        bad.writer(str(uuid.uuid4()))
    assert secret not in str(info.value) and "test:tester" not in str(info.value)
    assert secret not in repr(S3Connection("http://x", "test:tester", secret))
