"""Object stores against a real S3-compatible server (nanio) and a real folder."""
from __future__ import annotations

import pytest

from helpers import encode, photo
from services import ACCESS_KEY
from synthspot.integrations.objectstore import FetchError, LocalObjectStore
from synthspot.integrations.s3 import S3ObjectStore


@pytest.fixture
def bucket(s3_server):
    client = s3_server.client()
    client.create_bucket(Bucket="uploads")
    return client


def reason(store, bucket, key, **kw):
    with pytest.raises(FetchError) as info:
        store.fetch(bucket, key, **kw)
    return info.value


def test_s3_fetch_and_error_reasons(s3_server, bucket):
    data = encode(photo(), "PNG")
    bucket.put_object(Bucket="uploads", Key="a/b c.png", Body=data)
    bucket.put_object(Bucket="uploads", Key="big.bin", Body=b"x" * 5000)
    store = S3ObjectStore(s3_server.client(), allowed_buckets=["uploads", "other"], max_bytes=4096 * 100)
    got = store.fetch("uploads", "a/b c.png")
    assert got.data == data and got.etag
    assert reason(store, "uploads", "missing.png").reason == "object_not_found"
    assert reason(store, "other", "x.png").reason == "object_not_found"  # no such bucket
    assert reason(store, "private", "x.png").reason == "bucket_not_allowed"
    small = S3ObjectStore(s3_server.client(), max_bytes=1000)
    assert reason(small, "uploads", "big.bin").reason == "too_large"
    denied = S3ObjectStore(s3_server.client(secret="wrong-secret"))
    assert reason(denied, "uploads", "a/b c.png").reason == "access_denied"


def test_s3_server_down_is_transient(s3_server, bucket):
    store = S3ObjectStore(s3_server.client())
    s3_server.stop()
    err = reason(store, "uploads", "a.png")
    assert err.transient and err.reason == "store_unavailable"


def test_local_store_stays_inside_its_buckets(tmp_path):
    store = LocalObjectStore(tmp_path, allowed_buckets=[])
    store.put("demo", "x/y.png", b"abc")
    assert store.fetch("demo", "x/y.png").data == b"abc"
    assert reason(store, "demo", "../../etc/passwd").reason == "invalid_reference"
    assert reason(store, "demo", "nope.png").reason == "object_not_found"
    assert ACCESS_KEY  # the S3 fixtures and this module share credentials
