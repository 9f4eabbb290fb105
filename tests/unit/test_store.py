"""The file store: shared streaming downloads, verification, crash safety, LRU, key safety.

Real files under tmp_path, a real event loop, real SQLite; upstreams are async generators
or a real aiohttp server on loopback.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import types
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpServer

from proxy.store.file_store import (
    Download,
    DownloadAborted,
    DownloadFailed,
    ExpectedFile,
    FileStore,
    HashMismatch,
    InvalidKeyError,
    PathEscapeError,
    SizeMismatch,
    Source,
    SourceResponse,
    StoreClosedError,
    StoreFormatError,
    StoreLockedError,
    UpstreamFailed,
)
from proxy.store.layout import KEY_PATTERN
from proxy.store.local_disk import LocalDiskBackend, shard_of

T = TypeVar("T")
CHUNK = 64 * 1024
PAYLOAD = bytes(range(256)) * 1200 + b"tail"  # 307204 bytes: five chunks, the last short


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(data: bytes) -> str:
    return f"sha256-{sha256_of(data)}"


def expect(data: bytes) -> ExpectedFile:
    return ExpectedFile({"sha256": sha256_of(data)}, len(data))


async def within(awaitable: Awaitable[T]) -> T:
    """Guard against a hang: a broken store must fail the test, not stall it."""
    return await asyncio.wait_for(awaitable, 20)


class FakeUpstream:
    """An upstream file as a `Source`: counts calls, can pause before a chunk or break off."""

    def __init__(
        self,
        data: bytes,
        *,
        pause_before_chunk: int | None = None,
        fail_after_chunk: int | None = None,
        announce: int | bool = True,
    ) -> None:
        self.data = data
        self.calls = 0
        self.pause_before_chunk = pause_before_chunk
        self.fail_after_chunk = fail_after_chunk
        self.announce = announce
        self.paused = asyncio.Event()
        self.release = asyncio.Event()
        self.chunks_sent = 0
        self.generator: AsyncGenerator[bytes, None] | None = None

    async def __call__(self) -> SourceResponse:
        self.calls += 1
        if self.announce is True:
            length: int | None = len(self.data)
        elif self.announce is False:
            length = None
        else:
            length = self.announce
        self.generator = self._chunks()
        return SourceResponse(length, self.generator)

    @property
    def closed(self) -> bool:
        generator = self.generator
        assert isinstance(generator, types.AsyncGeneratorType)
        # A finished or closed async generator has no frame left (started or not).
        return generator.ag_frame is None

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        for index, start in enumerate(range(0, len(self.data), CHUNK)):
            if index == self.pause_before_chunk:
                self.paused.set()
                await self.release.wait()
            # Like a network, let other tasks (the readers) run between chunks.
            await asyncio.sleep(0)
            yield self.data[start : start + CHUNK]
            self.chunks_sent += 1
            if index + 1 == self.fail_after_chunk:
                raise ConnectionResetError("upstream connection reset")


async def read_all(download: Download) -> bytes:
    return b"".join([chunk async for chunk in download.stream()])


async def read_until_failure(download: Download) -> tuple[bytes, DownloadFailed | None]:
    """The bytes a client received before the stream raised, and what it raised."""
    received = bytearray()
    try:
        async for chunk in download.stream():
            received += chunk
    except DownloadFailed as failure:
        return bytes(received), failure
    return bytes(received), None


def files_on_disk(root: Path) -> list[Path]:
    return sorted(path for path in (root / "files").rglob("*") if path.is_file())


def tmp_entries(root: Path) -> list[Path]:
    return sorted((root / "tmp").iterdir())


async def store_payload(store: FileStore, data: bytes) -> Path:
    stored = await within(store.download(key_of(data), FakeUpstream(data), expect(data)).result())
    assert stored is not None
    return stored.blob.path


# -- sharing and streaming ------------------------------------------------------------


async def test_twenty_concurrent_readers_share_one_upstream_request(store: FileStore) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
    key = key_of(PAYLOAD)

    async def client() -> tuple[Download, bytes]:
        download = store.download(key, upstream, expect(PAYLOAD))
        return download, await read_all(download)

    clients = [asyncio.create_task(client()) for _ in range(20)]
    await within(upstream.paused.wait())
    assert store.stats.downloads_in_flight == 1
    upstream.release.set()
    outcomes = await within(asyncio.gather(*clients))

    assert upstream.calls == 1
    assert all(body == PAYLOAD for _download, body in outcomes)
    shared = {id(download) for download, _body in outcomes}
    assert len(shared) == 1
    # The clients had every byte once verified; storing (fsync, rename) finishes after.
    assert await within(outcomes[0][0].result()) is not None
    stored = await store.lookup(key)
    assert stored is not None
    assert stored.blob.path.read_bytes() == PAYLOAD
    assert (stored.size, stored.sha256) == (len(PAYLOAD), sha256_of(PAYLOAD))
    stats = store.stats
    assert (stats.bytes_from_upstream, stats.file_count, stats.total_bytes) == (
        len(PAYLOAD),
        1,
        len(PAYLOAD),
    )
    assert stats.downloads_in_flight == 0


async def test_bytes_reach_the_client_while_arriving_but_the_end_waits_for_verification(
    store: FileStore,
) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    assert await within(download.ready()) == len(PAYLOAD)
    stream = download.stream()
    received = bytearray()
    while len(received) < CHUNK - 1:
        received += await within(anext(stream))
    # The upstream sent one chunk and is paused: the client has all of it but the last byte.
    assert bytes(received) == PAYLOAD[: CHUNK - 1]
    next_chunk = asyncio.ensure_future(anext(stream))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not next_chunk.done()
    upstream.release.set()
    received += await within(next_chunk)
    received += b"".join([chunk async for chunk in stream])
    assert bytes(received) == PAYLOAD


async def test_a_late_joiner_gets_the_whole_file_from_the_start(store: FileStore) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=3)
    key = key_of(PAYLOAD)
    first = store.download(key, upstream, expect(PAYLOAD))
    await within(upstream.paused.wait())

    late_upstream = FakeUpstream(PAYLOAD)
    late = store.download(key, late_upstream, expect(PAYLOAD))
    assert late is first
    late_reader = asyncio.create_task(read_all(late))
    upstream.release.set()
    assert await within(late_reader) == PAYLOAD
    assert late_upstream.calls == 0
    # Even after the download is over, a reader of the same download starts at byte 0.
    await within(first.result())
    assert await within(read_all(first)) == PAYLOAD


async def test_download_goes_on_and_is_stored_when_its_only_client_leaves(
    store: FileStore,
) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=2)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    got_first_chunk = asyncio.Event()

    async def client_that_leaves() -> None:
        async for _chunk in download.stream():
            got_first_chunk.set()

    client = asyncio.create_task(client_that_leaves())
    await within(got_first_chunk.wait())
    client.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client
    del client
    upstream.release.set()

    stored = await within(download.result())
    assert stored is not None
    assert stored.blob.path.read_bytes() == PAYLOAD
    assert await store.lookup(key_of(PAYLOAD)) == stored
    assert upstream.calls == 1


async def test_a_key_being_downloaded_is_a_lookup_miss_until_stored(store: FileStore) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    await within(upstream.paused.wait())
    assert await store.lookup(key_of(PAYLOAD)) is None
    upstream.release.set()
    await within(download.result())
    assert await store.lookup(key_of(PAYLOAD)) is not None


async def test_an_empty_file_is_downloaded_and_stored(store: FileStore) -> None:
    download = store.download(key_of(b""), FakeUpstream(b""), expect(b""))
    assert await within(read_all(download)) == b""
    stored = await within(download.result())
    assert stored is not None
    assert stored.size == 0


# -- verification ---------------------------------------------------------------------


async def test_hash_mismatch_fails_every_reader_and_keeps_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None) as store:
        upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
        wrong = ExpectedFile({"sha256": sha256_of(b"other bytes")}, len(PAYLOAD))
        key = key_of(b"other bytes")
        downloads = [store.download(key, upstream, wrong) for _ in range(20)]
        readers = [asyncio.create_task(read_until_failure(d)) for d in downloads]
        await within(upstream.paused.wait())
        upstream.release.set()
        outcomes = await within(asyncio.gather(*readers))

        for received, failure in outcomes:
            assert isinstance(failure, HashMismatch)
            assert "sha256" in str(failure)
            assert len(received) < len(PAYLOAD)
            assert PAYLOAD.startswith(received)
        with pytest.raises(HashMismatch):
            await downloads[0].result()
        assert upstream.calls == 1
        assert await store.lookup(key) is None
        assert store.stats.hash_mismatches == 1
        assert store.stats.file_count == 0
        assert tmp_entries(root) == []
        assert files_on_disk(root) == []


async def test_every_named_hash_is_checked_not_only_sha256(store: FileStore) -> None:
    hashes = {"sha256": sha256_of(PAYLOAD), "md5": hashlib.md5(b"not it").hexdigest()}
    download = store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD), ExpectedFile(hashes))
    _received, failure = await within(read_until_failure(download))
    assert isinstance(failure, HashMismatch)
    assert "md5" in str(failure)
    assert await store.lookup(key_of(PAYLOAD)) is None


async def test_hash_names_and_digests_are_compared_case_insensitively(store: FileStore) -> None:
    expected = ExpectedFile({"SHA256": sha256_of(PAYLOAD).upper(), "blake3": "unknown-hash"})
    download = store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD), expected)
    assert await within(read_all(download)) == PAYLOAD
    assert await within(download.result()) is not None


async def test_without_hashes_the_file_is_accepted_and_its_sha256_recorded(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    key = "url-0123456789abcdef"
    async with FileStore(root, None) as store:
        download = store.download(key, FakeUpstream(PAYLOAD, announce=False), ExpectedFile())
        assert await within(download.ready()) is None
        assert await within(read_all(download)) == PAYLOAD
        stored = await within(download.result())
        assert stored is not None
        assert stored.sha256 == sha256_of(PAYLOAD)
    async with FileStore(root, None) as reopened:
        again = await reopened.lookup(key)
        assert again is not None
        assert again.sha256 == sha256_of(PAYLOAD)


async def test_more_bytes_than_the_page_says_fail_without_reading_to_the_end(
    store: FileStore,
) -> None:
    upstream = FakeUpstream(PAYLOAD, announce=False)
    expected = ExpectedFile({"sha256": sha256_of(PAYLOAD)}, CHUNK + 10)
    download = store.download(key_of(PAYLOAD), upstream, expected)
    received, failure = await within(read_until_failure(download))
    assert isinstance(failure, SizeMismatch)
    assert len(received) <= CHUNK + 10
    assert upstream.chunks_sent < len(PAYLOAD) // CHUNK
    assert upstream.closed
    assert store.stats.size_mismatches == 1
    assert await store.lookup(key_of(PAYLOAD)) is None


async def test_fewer_bytes_than_the_page_says_fail_at_the_end(store: FileStore) -> None:
    expected = ExpectedFile({"sha256": sha256_of(PAYLOAD)}, len(PAYLOAD) + 1)
    download = store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD, announce=False), expected)
    received, failure = await within(read_until_failure(download))
    assert isinstance(failure, SizeMismatch)
    assert 0 < len(received) < len(PAYLOAD)
    assert PAYLOAD.startswith(received)
    assert await store.lookup(key_of(PAYLOAD)) is None


async def test_an_announced_length_other_than_the_page_size_fails_before_reading(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None) as store:
        upstream = FakeUpstream(PAYLOAD, announce=len(PAYLOAD) + 5)
        download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
        with pytest.raises(SizeMismatch, match=str(len(PAYLOAD) + 5)):
            await within(download.ready())
        assert upstream.chunks_sent == 0
        assert upstream.closed
        assert tmp_entries(root) == []


# -- upstream failures ----------------------------------------------------------------


async def test_upstream_breaking_off_mid_stream_fails_readers_and_keeps_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None) as store:
        broken = FakeUpstream(PAYLOAD, pause_before_chunk=1, fail_after_chunk=2)
        download = store.download(key_of(PAYLOAD), broken, expect(PAYLOAD))
        assert await within(download.ready()) == len(PAYLOAD)
        reader = asyncio.create_task(read_until_failure(download))
        await within(broken.paused.wait())
        broken.release.set()
        received, failure = await within(reader)
        assert isinstance(failure, UpstreamFailed)
        assert isinstance(failure.__cause__, ConnectionResetError)
        assert 0 < len(received) < 2 * CHUNK
        assert PAYLOAD.startswith(received)
        assert await store.lookup(key_of(PAYLOAD)) is None
        assert store.stats.upstream_failures == 1
        assert store.stats.downloads_in_flight == 0
        assert tmp_entries(root) == []

        # Nothing of the failure is remembered: the next request fetches afresh.
        healthy = FakeUpstream(PAYLOAD)
        retry = store.download(key_of(PAYLOAD), healthy, expect(PAYLOAD))
        assert retry is not download
        assert await within(read_all(retry)) == PAYLOAD
        assert healthy.calls == 1


async def test_an_upstream_that_fails_to_answer_raises_its_own_error_from_ready(
    store: FileStore,
) -> None:
    class NotFoundUpstream(Exception):
        pass

    async def missing() -> SourceResponse:
        raise NotFoundUpstream("404 for the file")

    download = store.download(key_of(PAYLOAD), missing, expect(PAYLOAD))
    with pytest.raises(NotFoundUpstream):
        await within(download.ready())
    received, failure = await within(read_until_failure(download))
    assert received == b""
    assert isinstance(failure, UpstreamFailed)
    assert isinstance(failure.__cause__, NotFoundUpstream)


async def test_a_body_shorter_than_announced_is_an_upstream_failure(store: FileStore) -> None:
    upstream = FakeUpstream(PAYLOAD, announce=len(PAYLOAD) + 100)
    download = store.download("url-short-body-1", upstream, ExpectedFile())
    received, failure = await within(read_until_failure(download))
    assert isinstance(failure, UpstreamFailed)
    assert "of 307304 bytes" in str(failure)
    assert 0 < len(received) < len(PAYLOAD)
    assert PAYLOAD.startswith(received)
    assert await store.lookup("url-short-body-1") is None


async def test_closing_the_store_aborts_running_downloads(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = FileStore(root, None)
    await store.open()
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    reader = asyncio.create_task(read_until_failure(download))
    await within(upstream.paused.wait())
    await within(store.close())
    _received, failure = await within(reader)
    assert isinstance(failure, DownloadAborted)
    assert tmp_entries(root) == []
    with pytest.raises(StoreClosedError):
        await store.lookup(key_of(PAYLOAD))
    async with FileStore(root, None) as reopened:
        assert await reopened.lookup(key_of(PAYLOAD)) is None


# -- restart, crash safety, no scanning -------------------------------------------------


async def test_restart_keeps_files_and_lru_order(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a, b, c, d = (bytes([n]) * 1000 for n in range(4))
    async with FileStore(root, 3000) as store:
        for data in (a, b, c):
            await store_payload(store, data)
        assert await store.lookup(key_of(a)) is not None  # a becomes the most recently used
    async with FileStore(root, 3000) as reopened:
        assert (reopened.stats.file_count, reopened.stats.total_bytes) == (3, 3000)
        await store_payload(reopened, d)
        assert reopened.stats.evictions == 1
        assert await reopened.lookup(key_of(b)) is None
        for data in (a, c, d):
            stored = await reopened.lookup(key_of(data))
            assert stored is not None
            assert stored.blob.path.read_bytes() == data


async def test_a_file_deleted_behind_the_store_is_a_miss_and_is_forgotten(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None) as store:
        path = await store_payload(store, PAYLOAD)
    path.unlink()
    async with FileStore(root, None) as reopened:
        # The index is trusted at open (no scan), so the loss shows only on lookup.
        assert reopened.stats.file_count == 1
        assert await reopened.lookup(key_of(PAYLOAD)) is None
    async with FileStore(root, None) as again:
        assert (again.stats.file_count, again.stats.total_bytes) == (0, 0)
        await store_payload(again, PAYLOAD)
        assert await again.lookup(key_of(PAYLOAD)) is not None


async def test_a_truncated_file_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None) as store:
        path = await store_payload(store, PAYLOAD)
        path.write_bytes(PAYLOAD[:100])
        assert await store.lookup(key_of(PAYLOAD)) is None
    assert not path.exists()
    async with FileStore(root, None) as reopened:
        assert reopened.stats.file_count == 0


async def test_open_trusts_the_index_and_ignores_unindexed_files(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None):
        pass
    stray_key = key_of(b"stray")
    stray = root / "files" / "v1" / shard_of(stray_key) / stray_key
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"stray")
    async with FileStore(root, None) as store:
        assert (store.stats.file_count, store.stats.total_bytes) == (0, 0)
        assert await store.lookup(stray_key) is None


async def test_leftover_partial_downloads_are_removed_at_open(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "tmp" / "stray-dir").mkdir(parents=True)
    (root / "tmp" / f"{key_of(PAYLOAD)}.0123456789abcdef.part").write_bytes(PAYLOAD[:1000])
    (root / "tmp" / "stray-dir" / "inner").write_bytes(b"x")
    async with FileStore(root, None) as store:
        assert tmp_entries(root) == []
        assert await store.lookup(key_of(PAYLOAD)) is None


CRASHING_PROCESS = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys, time
    from pathlib import Path
    from proxy.store.file_store import ExpectedFile, FileStore, SourceResponse

    async def main():
        store = FileStore(Path(sys.argv[1]), None)
        await store.open()
        first = b"first file" * 1000
        async def whole():
            async def chunks():
                yield first
            return SourceResponse(len(first), chunks())
        sha = hashlib.sha256(first).hexdigest()
        await store.download("sha256-" + sha, whole, ExpectedFile({"sha256": sha})).result()
        await store.lookup("sha256-" + sha)
        async def hanging():
            async def chunks():
                yield b"partial" * 10000
                await asyncio.Event().wait()
            return SourceResponse(None, chunks())
        download = store.download("url-0000000000000000", hanging, ExpectedFile())
        stream = download.stream()
        await anext(stream)
        print("mid-download", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_a_process_killed_mid_download_leaves_a_usable_cache(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with subprocess.Popen(
        [sys.executable, "-c", CRASHING_PROCESS, str(root)], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "mid-download"
            assert len(tmp_entries(root)) == 1
        finally:
            process.send_signal(signal.SIGKILL)

    async def reopen() -> None:
        first = b"first file" * 1000
        async with FileStore(root, None) as store:
            assert tmp_entries(root) == []
            stored = await store.lookup(key_of(first))
            assert stored is not None
            assert stored.blob.path.read_bytes() == first
            assert await store.lookup("url-0000000000000000") is None
            assert store.stats.file_count == 1

    asyncio.run(reopen())


async def test_a_second_store_on_the_same_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    async with FileStore(root, None):
        with pytest.raises(StoreLockedError):
            await FileStore(root, None).open()
    async with FileStore(root, None) as after_close:
        assert after_close.stats.file_count == 0


async def test_an_index_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    with sqlite3.connect(root / "index.sqlite3") as connection:
        connection.execute("PRAGMA user_version=99")
    with pytest.raises(StoreFormatError, match="version 99"):
        await FileStore(root, None).open()
    (root / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreFormatError):
        await FileStore(root, None).open()


async def test_using_a_store_that_is_not_open_is_an_error(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", None)
    with pytest.raises(StoreClosedError):
        await store.lookup(key_of(PAYLOAD))
    with pytest.raises(StoreClosedError):
        store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD), expect(PAYLOAD))


# -- LRU ------------------------------------------------------------------------------


async def test_eviction_removes_the_least_recently_used_files_first(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a, b, c, d, e = (bytes([n]) * 1000 for n in range(5))
    async with FileStore(root, 3000) as store:
        paths = {data: await store_payload(store, data) for data in (a, b, c)}
        assert await store.lookup(key_of(a)) is not None
        assert await store.lookup(key_of(b)) is not None
        paths[d] = await store_payload(store, d)  # order now: c, a, b, d -> c goes
        assert not paths[c].exists()
        assert all(paths[data].exists() for data in (a, b, d))
        paths[e] = await store_payload(store, e)  # a, b, d, e -> a goes
        assert not paths[a].exists()
        assert all(paths[data].exists() for data in (b, d, e))
        assert await store.lookup(key_of(c)) is None
        assert await store.lookup(key_of(a)) is None
        stats = store.stats
        assert (stats.evictions, stats.file_count, stats.total_bytes) == (2, 3, 3000)
        assert len(files_on_disk(root)) == 3


async def test_a_file_larger_than_the_store_is_served_but_not_kept(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    small = b"s" * 1000
    async with FileStore(root, len(PAYLOAD) - 1) as store:
        small_path = await store_payload(store, small)
        download = store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD), expect(PAYLOAD))
        assert await within(read_all(download)) == PAYLOAD
        assert await within(download.result()) is None
        assert await store.lookup(key_of(PAYLOAD)) is None
        assert small_path.exists()
        assert (store.stats.file_count, store.stats.evictions) == (1, 0)
        assert tmp_entries(root) == []


async def test_open_evicts_when_the_limit_shrank(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a, b, c = (bytes([n]) * 1000 for n in range(3))
    async with FileStore(root, None) as store:
        for data in (a, b, c):
            await store_payload(store, data)
    async with FileStore(root, 2000) as smaller:
        await smaller.startup_eviction()  # it runs in the background, after open()
        assert (smaller.stats.file_count, smaller.stats.total_bytes) == (2, 2000)
        assert await smaller.lookup(key_of(a)) is None
        assert await smaller.lookup(key_of(c)) is not None


async def test_hits_are_stamped_in_memory_and_written_in_batches(tmp_path: Path) -> None:
    root = tmp_path / "cache"

    def stamp_on_disk(key: str) -> int:
        with sqlite3.connect(root / "index.sqlite3") as connection:
            row = connection.execute(
                "SELECT last_access FROM files WHERE key = ?", (key,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    async with FileStore(root, None, access_flush_interval=3600) as store:
        await store_payload(store, PAYLOAD)
        stored_at = stamp_on_disk(key_of(PAYLOAD))
        for _ in range(50):
            assert await store.lookup(key_of(PAYLOAD)) is not None
        assert stamp_on_disk(key_of(PAYLOAD)) == stored_at
        await store.flush_accesses()
        flushed_at = stamp_on_disk(key_of(PAYLOAD))
        assert flushed_at > stored_at
        assert await store.lookup(key_of(PAYLOAD)) is not None
    assert stamp_on_disk(key_of(PAYLOAD)) > flushed_at


# -- keys and paths -------------------------------------------------------------------


BAD_KEYS = [
    "",
    "short",
    "Sha256-abcdef0123",
    "../../../etc/passwd",
    "sha256-abc/../../x",
    "url-abc.def-012345",
    "-leading-dash-key",
    "key with spaces 1",
    "url-0123456789\n",
    "url-0123456789\x00",
    "a" * 202,
]


@pytest.mark.parametrize("bad_key", BAD_KEYS)
async def test_invalid_keys_are_rejected_before_any_file_is_touched(
    store: FileStore, bad_key: str
) -> None:
    upstream = FakeUpstream(PAYLOAD)
    with pytest.raises(InvalidKeyError, match="invalid cache key"):
        await store.lookup(bad_key)
    with pytest.raises(InvalidKeyError):
        store.download(bad_key, upstream, expect(PAYLOAD))
    assert upstream.calls == 0
    assert tmp_entries(store.root) == []


async def test_a_planted_symlink_cannot_lead_a_key_outside_the_cache(
    store: FileStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    key = key_of(b"victim")
    shard = store.root / "files" / "v1" / shard_of(key)
    shard.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError):
        await store.lookup(key)
    with pytest.raises(PathEscapeError):
        store.download(key, FakeUpstream(b"victim"), expect(b"victim"))
    assert list(outside.iterdir()) == []


async def test_a_planted_file_symlink_is_refused_not_followed(
    store: FileStore, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for clients")
    key = key_of(b"not for clients")
    path = store.root / "files" / "v1" / shard_of(key) / key
    path.parent.mkdir()
    path.symlink_to(secret)
    with pytest.raises(PathEscapeError):
        await store.lookup(key)


async def test_a_files_folder_that_leads_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "files").mkdir(parents=True)
    (root / "files" / "v1").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PathEscapeError):
        await FileStore(root, None).open()
    (root / "files" / "v1").unlink()
    async with FileStore(root, None) as store:  # the refused open released the lock
        assert store.stats.file_count == 0


@given(st.text(max_size=220) | st.from_regex(KEY_PATTERN, fullmatch=True))
def test_any_accepted_key_names_a_file_inside_the_files_folder(key: str) -> None:
    layout = LocalDiskBackend(Path("/cache-root"))
    try:
        path = layout.path_of(key)
    except InvalidKeyError:
        assert not KEY_PATTERN.fullmatch(key)
        return
    assert path.parent.parent == layout.files_dir
    assert path.name == key


# -- resources ------------------------------------------------------------------------


async def test_finished_downloads_release_their_file_descriptors(store: FileStore) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    await store_payload(store, b"warm up the index" * 10)
    gc.collect()
    before = open_fds()
    for n in range(5):
        data = bytes([n]) * 5000
        download = store.download(key_of(data), FakeUpstream(data), expect(data))
        assert await within(read_all(download)) == data
        await within(download.result())
        failing = store.download(key_of(data + b"x"), FakeUpstream(data), expect(data + b"x"))
        await within(read_until_failure(failing))
    del download, failing
    gc.collect()
    assert open_fds() == before


# -- a real upstream over loopback ----------------------------------------------------


class UpstreamStatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status


def aiohttp_source(session: aiohttp.ClientSession, url: str) -> Source:
    async def source() -> SourceResponse:
        response = await session.get(url)
        if response.status != 200:
            response.release()
            raise UpstreamStatusError(response.status)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    yield chunk
            finally:
                response.release()

        return SourceResponse(response.content_length, chunks())

    return source


async def test_a_real_aiohttp_upstream_on_loopback_is_streamed_and_stored(
    store: FileStore, aiohttp_server: AiohttpServer
) -> None:
    requests = {"file": 0}
    gate = asyncio.Event()

    async def serve_file(request: web.Request) -> web.StreamResponse:
        requests["file"] += 1
        response = web.StreamResponse()
        response.content_length = len(PAYLOAD)
        await response.prepare(request)
        await response.write(PAYLOAD[:CHUNK])
        await gate.wait()
        for start in range(CHUNK, len(PAYLOAD), CHUNK):
            await response.write(PAYLOAD[start : start + CHUNK])
        await response.write_eof()
        return response

    async def serve_error(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    app = web.Application()
    app.router.add_get("/files/pkg-1.0.whl", serve_file)
    app.router.add_get("/files/broken.whl", serve_error)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"

    async with aiohttp.ClientSession() as session:
        source = aiohttp_source(session, f"{base}/files/pkg-1.0.whl")
        downloads = [store.download(key_of(PAYLOAD), source, expect(PAYLOAD)) for _ in range(5)]
        assert await within(downloads[0].ready()) == len(PAYLOAD)
        readers = [asyncio.create_task(read_all(d)) for d in downloads]
        gate.set()
        assert await within(asyncio.gather(*readers)) == [PAYLOAD] * 5
        stored = await within(downloads[0].result())
        assert stored is not None
        assert stored.blob.path.read_bytes() == PAYLOAD
        assert requests["file"] == 1

        broken = store.download(
            "url-broken-file-0000",
            aiohttp_source(session, f"{base}/files/broken.whl"),
            ExpectedFile(),
        )
        with pytest.raises(UpstreamStatusError) as raised:
            await within(broken.ready())
        assert raised.value.status == 503
        assert await store.lookup("url-broken-file-0000") is None


async def test_close_completes_while_a_batch_flush_is_being_requested(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = FileStore(root, None, access_flush_batch=1)
    await store.open()
    await store_payload(store, PAYLOAD)
    # The hit wakes the flusher; close() cancels it in the same loop iteration.
    assert await store.lookup(key_of(PAYLOAD)) is not None
    async with asyncio.timeout(20):
        await store.close()
