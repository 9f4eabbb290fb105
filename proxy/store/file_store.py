"""The file store's policy: complete, hash-checked files, downloaded once, bounded by LRU.

The bytes live in a blob backend (`proxy.store.backend`; local disk by default). The store
owns its cache root's lock, index and `tmp/` (`proxy.store.layout`, `proxy.store.index`).
Keys match `[a-z0-9][a-z0-9-]{7,200}` (`InvalidKeyError` otherwise); the backend refuses
keys it cannot hold safely (`PathEscapeError`).

What a crash can leave, and why it is harmless:
- a partial download only ever lives in `tmp/`, which `open()` empties;
- a file is fsync-ed, then recorded in the index (a durable commit), then put into the
  backend, so the index may name a blob that is missing, never the reverse. `lookup`
  treats a missing blob (or one of the wrong size) as a miss and drops its record;
- eviction deletes the blob before its record, with the same result.
`open()` reads the total size from the index (`SELECT SUM(size)`) and never lists the
backend; the index is the truth.

Policy:
- Concurrent `download()` calls for one key share the first call's download (and its
  expected hashes); the download is a task of its own and finishes without clients.
- After each stored download, least recently used files (never the new one) are evicted
  until the total is within `max_bytes`. A file larger than `max_bytes` alone is served to
  the clients waiting on it but not kept. `open()` also evicts when the limit shrank.
- A lookup only notes its access in memory; the stamps reach the index in batches
  (`proxy.store.accesses`).
- Blocking work that can take long (fsync, SQLite commits, renames, unlinks) runs off the
  event loop: index work on one dedicated thread, in submission order; the backend's own
  work where the backend puts it; a download's hashing and writing on its own thread
  (`proxy.store.chunk_writer`). Evictions run one at a time.
- One process per cache root (the lock); POSIX only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, TypeVar

from proxy.store.accesses import AccessStamps
from proxy.store.backend import BlobBackend, StoredFile
from proxy.store.download import Download
from proxy.store.errors import (
    DownloadAborted,
    DownloadFailed,
    HashMismatch,
    InvalidKeyError,
    PathEscapeError,
    SizeMismatch,
    StorageFailed,
    StoreClosedError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    UpstreamFailed,
)
from proxy.store.group_commit import GroupCommit
from proxy.store.index import IndexEntry, StoreIndex
from proxy.store.layout import StoreLayout, check_key, take_root
from proxy.store.local_disk import LocalDiskBackend
from proxy.store.stats import DownloadCounters, StoreStats
from proxy.store.upstream_body import Source, SourceResponse, UpstreamBody
from proxy.store.verify import ExpectedFile

__all__ = [
    "Download",
    "DownloadAborted",
    "DownloadFailed",
    "ExpectedFile",
    "FileStore",
    "HashMismatch",
    "InvalidKeyError",
    "PathEscapeError",
    "SizeMismatch",
    "Source",
    "SourceResponse",
    "StorageFailed",
    "StoreClosedError",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "StoreStats",
    "StoredFile",
    "UpstreamBody",
    "UpstreamFailed",
    "check_key",
]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class FileStore:
    """Complete files under `root`, at most `max_bytes` of them (None: unbounded)."""

    def __init__(
        self,
        root: Path,
        max_bytes: int | None,
        *,
        backend: BlobBackend | None = None,
        access_flush_interval: float = 10.0,
        access_flush_batch: int = 1024,
    ) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be None or >= 0, not {max_bytes}")
        self._layout = StoreLayout(Path(root))
        self.backend: BlobBackend = backend if backend is not None else LocalDiskBackend(root)
        self._evicting = asyncio.Lock()
        self._max_bytes = max_bytes
        self._counters = DownloadCounters()
        self._evictions = 0
        self._in_flight: dict[str, Download] = {}
        self._accesses = AccessStamps(access_flush_interval, access_flush_batch)
        self._index: StoreIndex | None = None
        self._commits: GroupCommit | None = None  # records of kept files, grouped
        self._lock_fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._startup_eviction: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def root(self) -> Path:
        return self._layout.root

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Take the cache root (creating it), empty `tmp/`, read the index totals."""
        if self._index is not None:
            raise StoreError(f"file store {self.root} is already open")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-index")
        try:
            index = await self._in_index_thread(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        try:
            await self.backend.prepare()
        except BaseException:
            await self._in_index_thread(self._close_sync, index)
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self._index = index
        self._commits = GroupCommit(lambda *group: self._in_index_thread(index.add_many, *group))
        self._accesses.start(index.newest_access, functools.partial(self._write_stamps, index))
        # Evicting thousands of files takes seconds: do it in the background, so the server
        # listens at once (a lookup of a file about to go is still a correct answer).
        self._closing = False
        self._startup_eviction = asyncio.get_running_loop().create_task(
            self._evict_at_open(self._index), name="store-startup-eviction"
        )

    async def _evict_at_open(self, index: StoreIndex) -> None:
        try:
            await self._evict(index, None)
        except OSError:
            log.exception("evicting down to the size limit at open failed")

    async def startup_eviction(self) -> None:
        """Wait until the eviction that `open()` started in the background is over."""
        if self._startup_eviction is not None:
            await asyncio.shield(self._startup_eviction)

    async def drain(self, grace: float) -> None:
        """Let running downloads finish and store their files, for at most `grace` seconds
        (at shutdown, before `close()` aborts whatever is still running)."""
        downloads = list(self._in_flight.values())
        if downloads:
            log.info("waiting up to %.0f s for %d download(s) to finish", grace, len(downloads))
            waiting = [asyncio.ensure_future(download.result()) for download in downloads]
            await asyncio.wait(waiting, timeout=grace)
            for future in waiting:
                future.cancel()
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: a failed download was logged already

    async def close(self) -> None:
        """Abort running downloads, write pending access stamps, release the cache root."""
        index = self._index
        if index is None:
            return
        self._index = None
        self._closing = True  # a running start-up eviction stops after its current batch
        if self._startup_eviction is not None:
            await asyncio.wait([self._startup_eviction])
            self._startup_eviction = None
        await self._accesses.stop()
        downloads = list(self._in_flight.values())
        for download in downloads:
            download.cancel()
        for download in downloads:
            with suppress(DownloadFailed):
                await download.result()
        await self._accesses.flush(functools.partial(self._write_stamps, index))
        await self._in_index_thread(self._close_sync, index)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def __aenter__(self) -> FileStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the API -------------------------------------------------------------------

    async def lookup(self, key: str) -> StoredFile | None:
        """The complete file for `key`, or None; a hit counts as a use for LRU.

        A key being downloaded is a miss (join its download with `download`). A record
        whose blob is missing or has the wrong size is a miss, and the record is dropped
        before this returns, so a download that follows cannot be undone by it.
        """
        index = self._require_open()
        self.backend.check(check_key(key))
        if key in self._in_flight:
            return None
        entry = index.entry(key)
        if entry is None:
            return None
        blob = await self.backend.open(key)
        if blob is None or blob.size != entry.size:
            log.warning("cached file %s is missing or damaged; dropping its record", key)
            await self._forget(index, key)
            return None
        self._accesses.note(key)
        return StoredFile(key, entry.size, entry.sha256, blob)

    def download(self, key: str, source: Source, expected: ExpectedFile) -> Download:
        """The running download of `key`, or a new one from `source` checked against
        `expected`. Callers look the key up first: this always fetches when none runs."""
        self._require_open()
        self.backend.check(check_key(key))
        running = self._in_flight.get(key)
        if running is not None:
            return running
        tmp_path = self._layout.new_tmp_path(key)
        try:
            download = Download(
                key,
                source,
                expected,
                tmp_path,
                self._counters,
                self._keep,
                self._download_finished,
            )
        except OSError as exc:
            raise StorageFailed(f"{key}: cannot create {tmp_path}: {exc}") from exc
        self._in_flight[key] = download
        download.start()
        return download

    async def wait_idle(self) -> None:
        """Wait until every running download is over (kept or failed): a process that
        fetched through its own store calls this before closing it."""
        while self._in_flight:
            for download in list(self._in_flight.values()):
                with suppress(DownloadFailed):
                    await download.result()

    def downloads_in_flight(self) -> tuple[Download, ...]:
        """The downloads running now (for progress logs and the status page)."""
        return tuple(self._in_flight.values())

    def figures(self) -> dict[str, int]:
        """`stats` as a name -> number mapping, for the metrics endpoint."""
        return dataclasses.asdict(self.stats)

    @property
    def stats(self) -> StoreStats:
        index = self._index
        counters = self._counters
        return StoreStats(
            total_bytes=index.total_bytes if index is not None else 0,
            file_count=index.file_count if index is not None else 0,
            downloads_in_flight=len(self._in_flight),
            bytes_from_upstream=counters.bytes_from_upstream,
            evictions=self._evictions,
            hash_mismatches=counters.hash_mismatches,
            size_mismatches=counters.size_mismatches,
            upstream_failures=counters.upstream_failures,
            storage_failures=counters.storage_failures,
        )

    async def flush_accesses(self) -> None:
        """Write the access stamps noted since the last flush to the index."""
        index = self._require_open()
        await self._accesses.flush(functools.partial(self._write_stamps, index))

    # -- internals (loop side) -----------------------------------------------------

    async def _write_stamps(self, index: StoreIndex, stamps: dict[str, int]) -> None:
        await self._in_index_thread(index.record_accesses, stamps)

    def _require_open(self) -> StoreIndex:
        if self._index is None:
            raise StoreClosedError(f"file store {self.root} is not open")
        return self._index

    def _in_index_thread(
        self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        assert self._executor is not None
        return asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def _download_finished(self, download: Download) -> None:
        if self._in_flight.get(download.key) is download:
            del self._in_flight[download.key]

    async def _keep(
        self, key: str, tmp_path: Path, fd: int, size: int, sha256: str
    ) -> StoredFile | None:
        """Put a verified download into the backend and evict what no longer fits."""
        index = self._index
        if index is None or (self._max_bytes is not None and size > self._max_bytes):
            log.info("%s (%d bytes) is not kept: store closed or file too large", key, size)
            os.unlink(tmp_path)
            return None
        await asyncio.to_thread(os.fsync, fd)
        accesses = self._accesses.take()
        stamp = self._accesses.tick()
        assert self._commits is not None
        await self._commits.add(IndexEntry(key, size, sha256, stamp), accesses)
        try:
            blob = await self.backend.put(key, tmp_path, size)
        except BaseException:
            await self._in_index_thread(index.remove, [key])
            raise
        await self._evict(index, key)
        return StoredFile(key, size, sha256, blob)

    async def _forget(self, index: StoreIndex, key: str) -> None:
        await self.backend.delete([key])
        await self._in_index_thread(index.remove, [key])

    async def _evict(self, index: StoreIndex, keep: str | None) -> None:
        """Evict least recently used files (never `keep`) until within `max_bytes`."""
        max_bytes = self._max_bytes
        if max_bytes is None:
            return
        async with self._evicting:
            while index.total_bytes > max_bytes and not (keep is None and self._closing):
                victims = await self._in_index_thread(
                    index.eviction_victims, index.total_bytes - max_bytes, keep
                )
                if not victims:
                    return
                await self.backend.delete(victims)
                removed = await self._in_index_thread(index.remove, victims)
                self._evictions += len(removed)

    # -- internals (index thread) --------------------------------------------------

    def _open_sync(self) -> StoreIndex:
        self._lock_fd, index = take_root(self._layout)
        return index

    def _close_sync(self, index: StoreIndex) -> None:
        index.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
