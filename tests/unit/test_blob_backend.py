"""The file store's policy over the `BlobBackend` Protocol: any backend, not only local disk.

`MemoryBackend` is a second, real implementation of the Protocol (bytes in a dict); the
store's download, verification, lookup and eviction run unchanged over it. The local-disk
backend's blobs are read whole and by range.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.store.backend import Blob, BlobBackend, StoredFile
from proxy.store.file_store import ExpectedFile, FileStore, SourceResponse
from proxy.store.local_disk import LocalDiskBackend

PAYLOAD = bytes(range(256)) * 3000


def key_of(data: bytes) -> str:
    return f"sha256-{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class MemoryBlob:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def local_file(self) -> Path | None:
        return None

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        view = self.data[start:end]
        for offset in range(0, len(view), 1000):
            yield view[offset : offset + 1000]


class MemoryBackend:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def prepare(self) -> None:
        pass

    def check(self, key: str) -> None:
        pass

    async def put(self, key: str, verified: Path, size: int) -> Blob:
        self.blobs[key] = verified.read_bytes()
        verified.unlink()
        return MemoryBlob(self.blobs[key])

    async def open(self, key: str) -> Blob | None:
        data = self.blobs.get(key)
        return None if data is None else MemoryBlob(data)

    async def stat(self, key: str) -> int | None:
        data = self.blobs.get(key)
        return None if data is None else len(data)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.blobs.pop(key, None)


def as_backend(backend: MemoryBackend) -> BlobBackend:
    return backend  # mypy checks here that MemoryBackend implements the Protocol


async def read(blob: Blob, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in blob.chunks(start, end)])


async def store_bytes(store: FileStore, data: bytes) -> StoredFile:
    async def source() -> SourceResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return SourceResponse(len(data), chunks())

    expected = ExpectedFile({"sha256": hashlib.sha256(data).hexdigest()}, len(data))
    stored = await store.download(key_of(data), source, expected).result()
    assert stored is not None
    return stored


async def test_the_store_keeps_and_serves_files_through_any_backend(tmp_path: Path) -> None:
    backend = MemoryBackend()
    async with FileStore(tmp_path / "cache", None, backend=as_backend(backend)) as store:
        stored = await store_bytes(store, PAYLOAD)
        assert backend.blobs == {key_of(PAYLOAD): PAYLOAD}
        hit = await store.lookup(key_of(PAYLOAD))
        assert hit is not None
        assert (hit.size, hit.sha256) == (stored.size, stored.sha256)
        assert hit.blob.local_file is None
        assert await read(hit.blob) == PAYLOAD
    assert not (tmp_path / "cache" / "files").exists()  # nothing went to local disk


async def test_a_blob_the_backend_lost_is_a_miss_and_its_record_is_dropped(
    tmp_path: Path,
) -> None:
    backend = MemoryBackend()
    async with FileStore(tmp_path / "cache", None, backend=as_backend(backend)) as store:
        await store_bytes(store, PAYLOAD)
        backend.blobs.clear()
        assert await store.lookup(key_of(PAYLOAD)) is None
        assert store.stats.file_count == 0


async def test_eviction_deletes_from_the_backend(tmp_path: Path) -> None:
    backend = MemoryBackend()
    first, second = b"a" * 6000, b"b" * 6000
    async with FileStore(tmp_path / "cache", 10_000, backend=as_backend(backend)) as store:
        await store_bytes(store, first)
        await store_bytes(store, second)
        assert set(backend.blobs) == {key_of(second)}
        assert store.stats.evictions == 1


@pytest.mark.parametrize(("start", "end"), [(0, None), (10, 20), (0, 262_144 + 5), (700_000, None)])
async def test_local_disk_blobs_read_whole_and_by_range(
    tmp_path: Path, start: int, end: int | None
) -> None:
    async with FileStore(tmp_path / "cache", None) as store:
        stored = await store_bytes(store, PAYLOAD)
        assert isinstance(store.backend, LocalDiskBackend)
        assert stored.blob.local_file == store.backend.path_of(stored.key)
        assert await read(stored.blob, start, end) == PAYLOAD[start:end]
