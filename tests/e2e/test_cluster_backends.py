"""The S3 blob store and the Redis coordinator against the real servers (Ceph RGW, Redis)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.cluster.coordination import Coordinator
from proxy.cluster.settings import S3Settings
from proxy.store.file_store import ExpectedFile, FileStore, SourceResponse
from proxy.store.s3 import PART_BYTES, S3Blobs

from .cluster_services import ClusterServices, fresh_bucket_name


async def _chunks(data: bytes, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def _read_all(blobs: S3Blobs, key: str, start: int = 0) -> bytes:
    _, chunks = await blobs.read(key, start)
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture
async def blobs(
    cluster_services: ClusterServices, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[S3Blobs]:
    for name, value in cluster_services.environment().items():
        monkeypatch.setenv(name, value)
    settings = S3Settings(
        endpoint_url=cluster_services.s3_endpoint_url,
        bucket=fresh_bucket_name(),
        prefix="files/",
        region=cluster_services.s3_region,
        access_key_env="S3_ACCESS_KEY_ID",
        secret_key_env="S3_SECRET_ACCESS_KEY",
    )
    store = S3Blobs(settings)
    await store.connect()
    yield store
    await store.close()


async def test_bucket_is_created_and_a_small_file_is_written_once(blobs: S3Blobs) -> None:
    data = os.urandom(100_000)
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"sha256-{sha256}"
    assert await blobs.stat(key) is None
    assert await blobs.put_stream(key, len(data), _chunks(data)) is True
    # The second write is refused by the store (If-None-Match: *) and reported as such.
    assert await blobs.put_stream(key, len(data), _chunks(data)) is False
    assert await blobs.stat(key) == len(data)
    assert await _read_all(blobs, key) == data
    assert await blobs.list_keys() == [f"files/{sha256}"]


async def test_big_file_goes_in_parts_and_reads_back_whole_and_from_an_offset(
    blobs: S3Blobs,
) -> None:
    data = os.urandom(PART_BYTES + 3_000_000)
    key = f"sha256-{hashlib.sha256(data).hexdigest()}"
    assert await blobs.put_stream(key, len(data), _chunks(data)) is True
    assert await blobs.put_stream(key, len(data), _chunks(data)) is False  # HEAD first
    assert await _read_all(blobs, key) == data
    assert await _read_all(blobs, key, 12_345_678) == data[12_345_678:]
    assert await blobs.unfinished_uploads() == []


async def test_a_failed_multipart_upload_is_aborted_and_leaves_nothing(blobs: S3Blobs) -> None:
    data = os.urandom(PART_BYTES + 1000)
    key = f"sha256-{hashlib.sha256(data).hexdigest()}"

    async def breaks_off() -> AsyncIterator[bytes]:
        yield data[: PART_BYTES + 10]
        raise OSError("the source broke off")

    with pytest.raises(OSError, match="broke off"):
        await blobs.put_stream(key, len(data), breaks_off())
    assert await blobs.unfinished_uploads() == []
    assert await blobs.list_keys() == []


async def test_old_unfinished_uploads_are_swept(blobs: S3Blobs) -> None:
    key = blobs.object_key("sha256-" + "0" * 64)
    await blobs.client.create_multipart_upload(Bucket=blobs.settings.bucket, Key=key)
    assert [upload[0] for upload in await blobs.unfinished_uploads()] == [key]
    assert await blobs.sweep_orphans(older_than_s=3600) == 0  # young: someone's upload
    assert await blobs.sweep_orphans(older_than_s=-60) == 1
    assert await blobs.unfinished_uploads() == []


async def test_missing_object_reads_as_not_found(blobs: S3Blobs) -> None:
    with pytest.raises(FileNotFoundError):
        await blobs.read("sha256-" + "1" * 64)


async def test_the_bucket_is_a_blob_backend_under_the_file_store(
    blobs: S3Blobs, tmp_path: Path
) -> None:
    """The store's own policy (download, verify, keep, look up, evict) over the bucket."""
    data = os.urandom(300_000)
    key = f"sha256-{hashlib.sha256(data).hexdigest()}"
    url_key = "url-" + "ab" * 20
    async with FileStore(tmp_path / "store", None, backend=blobs) as store:
        for name in (key, url_key):
            download = store.download(
                name,
                lambda: _source(data),
                ExpectedFile({"sha256": hashlib.sha256(data).hexdigest()}, len(data)),
            )
            await download.result()
        stored = await store.lookup(key)
        assert stored is not None and stored.blob.local_file is None
        assert b"".join([c async for c in stored.blob.chunks(1000, 2000)]) == data[1000:2000]
        sha256 = key.removeprefix("sha256-")
        assert sorted(await blobs.list_keys()) == [f"files/{sha256}", f"files/{url_key}"]
        await blobs.delete([url_key])
        assert await store.lookup(url_key) is None
    assert list((tmp_path / "store").rglob("*.part")) == []


async def _source(data: bytes) -> SourceResponse:
    return SourceResponse(len(data), _chunks(data, 64 * 1024))


async def test_lock_is_exclusive_names_its_holder_and_expires_when_not_renewed(
    cluster_services: ClusterServices,
) -> None:
    first = Coordinator(cluster_services.redis_url, lock_ttl_s=0.6)
    second = Coordinator(cluster_services.redis_url, lock_ttl_s=0.6)
    first.advertise_url, second.advertise_url = "http://127.0.0.1:1", "http://127.0.0.1:2"
    key = f"sha256-{os.urandom(32).hex()}"
    try:
        lock = await first.try_lock(key)
        assert lock is not None
        assert await second.try_lock(key) is None
        assert await second.holder(key) == "http://127.0.0.1:1"
        await asyncio.sleep(1.0)  # renewed meanwhile: still held
        assert await second.try_lock(key) is None
        assert lock.renewer is not None
        lock.renewer.cancel()  # the holder "dies": nobody renews
        await asyncio.sleep(1.0)
        taken = await second.try_lock(key)
        assert taken is not None
        await first.release(lock)  # a stale holder cannot release the new lock
        assert await first.holder(key) == "http://127.0.0.1:2"
        await second.release(taken)
        assert await first.holder(key) is None
    finally:
        await first.close()
        await second.close()


async def test_redis_down_is_reported_not_raised() -> None:
    coordinator = Coordinator("redis://127.0.0.1:1/0")
    try:
        reason = await coordinator.problem()
        assert reason is not None and reason.startswith("redis:")
    finally:
        await coordinator.close()
