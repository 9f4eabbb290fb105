"""One download of one file from the upstream, shared by every client that wants the file.

The bytes go to a temporary file as they arrive and are hashed on the way, both on a
thread of the download's own (`ChunkWriter`), at most a few chunks behind the loop. Clients
read the file, or the chunks still queued for it from memory, never the upstream: each
`stream()` starts at byte 0 and follows the download, so a client that joins late still
gets the whole file, a slow client never slows the download down, and memory stays at the
queue plus one chunk per client whatever the file size. The download runs as its own task,
so it goes on when every client has gone away.

While the download runs a reader stays `HELD_BACK_BYTES` behind the writer: the end of
the file is released only once its size and hashes are verified. On any failure every
reader raises a `DownloadFailed`, so the server can abort the response and no client ever
holds a complete, wrong file.

The temporary file is opened once, read and written through one descriptor (`os.pread`
leaves the write position alone). The descriptor lives as long as the `Download` object,
so readers keep working after the file was renamed into the cache or even evicted.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import os
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, NoReturn

from proxy.store.backend import StoredFile
from proxy.store.chunk_writer import ChunkWriter
from proxy.store.errors import (
    DownloadAborted,
    DownloadFailed,
    StorageFailed,
    UpstreamFailed,
)
from proxy.store.piece_gatherer import PieceGatherer
from proxy.store.stats import DownloadCounters
from proxy.store.upstream_body import Source, close_chunks
from proxy.store.verify import ContentCheck, ExpectedFile

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 256 * 1024
# Enough to keep a client from having the complete file before it is verified.
HELD_BACK_BYTES = 1
# How long bytes in the file wait for more before a short span is sent anyway.
SHORT_SPAN_WAIT_S = 0.005


# Moves a verified temporary file into the cache: (key, temp path, fd, size, sha256).
KeepFile = Callable[[str, Path, int, int, str], Awaitable[StoredFile | None]]


class _Phase(enum.Enum):
    RUNNING = "running"  # bytes arriving; readers stay behind the writer
    VERIFIED = "verified"  # every byte is in and checked; readers may read to the end
    FAILED = "failed"  # nothing is kept; readers raise the failure


class Download:
    """A running (or finished) download of the file for one cache key.

    Created by `FileStore.download`; creating it creates the temporary file, `start()`
    launches the task. `on_finished` is called once, when the download is over.
    """

    def __init__(
        self,
        key: str,
        source: Source,
        expected: ExpectedFile,
        tmp_path: Path,
        counters: DownloadCounters,
        keep: KeepFile,
        on_finished: Callable[[Download], None],
    ) -> None:
        self.key = key
        self._source = source
        self._check = ContentCheck(key, expected)
        self._expected_size = expected.size
        self._tmp_path = tmp_path
        self._counters = counters
        self._keep = keep
        self._on_finished = on_finished
        self._fd = os.open(tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._close_fd = weakref.finalize(self, os.close, self._fd)
        self._phase = _Phase.RUNNING
        self._received = 0  # bytes from the upstream, readable (memory or file)
        self._written = 0  # of which hashed and in the file
        # The rest, from offset `_written` on: chunks handed to the writer, then the pieces
        # still gathered for it (`_pieces.pending`).
        self._queued: deque[bytes] = deque()
        self._writer: ChunkWriter | None = None
        self._pieces: PieceGatherer | None = None
        self._length: int | None = None
        self._source_error: Exception | None = None
        self._failure: DownloadFailed | None = None
        self._stored: StoredFile | None = None
        self._answered = asyncio.Event()
        self._body_in = asyncio.Event()  # the upstream sent its last byte, or it failed
        self._finished = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.started_at = time.time()

    @property
    def received(self) -> int:
        """Bytes received from the upstream so far."""
        return self._written

    @property
    def total(self) -> int | None:
        """The file's size, when the upstream or the page said it."""
        return self._length if self._length is not None else self._expected_size

    def start(self) -> None:
        """Launch the download as a task of its own, tied to no client."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"store-download-{self.key}"
        )
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never enters `_run`'s handlers.
        if not self._finished.is_set():
            self._fail(DownloadAborted(f"{self.key}: download aborted, the store is closing"))

    def cancel(self) -> None:
        """Abort the download (the store is closing); readers get `DownloadAborted`."""
        if self._task is not None:
            self._task.cancel()

    async def ready(self) -> int | None:
        """Wait for the upstream's answer; return the content length, if known.

        Raises the source's own exception when the source failed, and the
        `DownloadFailed` when the download has already failed otherwise (e.g. the
        upstream announced a size other than the page's).
        """
        await self._answered.wait()
        if self._source_error is not None:
            raise self._source_error
        if self._failure is not None:
            self._raise_failure()
        return self._length

    async def stream(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes [start, end) of the file (end None: to the end), following the
        download as it goes: a range waits only until the download has reached it.

        Raises a `DownloadFailed` (after yielding only part of the file) when the download
        fails, including on a hash or size mismatch.
        """
        position = start
        while end is None or position < end:
            if self._phase is _Phase.FAILED:
                self._raise_failure()
            verified = self._phase is _Phase.VERIFIED
            readable = self._received if verified else self._received - HELD_BACK_BYTES
            if end is not None:
                readable = min(readable, end)
            if position < readable:
                data = self._read(position, readable)
                position += len(data)
                yield data
            elif verified:
                return
            else:
                await self._progress.wait()

    async def written_spans(
        self, start: int, end: int | None, least: int
    ) -> AsyncIterator[tuple[int, int]]:
        """(offset, count) spans of bytes [start, end) (end None: to the end) as they reach
        the temporary file, for `sendfile` from `reader()`. A span is at least `least` bytes
        unless it is the first, the last or its bytes have waited `SHORT_SPAN_WAIT_S` (a
        slow upstream still reaches the client at once). The same release rules as
        `stream`: a reader stays behind the writer until the file is verified; a failure
        raises `DownloadFailed`."""
        loop = asyncio.get_running_loop()
        position = start
        short_since: float | None = None
        while end is None or position < end:
            limit, last = self._sendable(end)
            waited = short_since is not None and loop.time() - short_since >= SHORT_SPAN_WAIT_S
            enough = position == start or limit - position >= least
            if position < limit and (last or waited or enough):
                yield position, limit - position
                position, short_since = limit, None
            elif last:
                return
            else:
                timer = None
                if position < limit:
                    short_since = loop.time() if short_since is None else short_since
                    timer = loop.call_later(SHORT_SPAN_WAIT_S, self._notify)
                await self._progress.wait()
                if timer is not None:
                    timer.cancel()

    def _sendable(self, end: int | None) -> tuple[int, bool]:
        """How far a reader may read from the file now, and whether that is the end."""
        if self._phase is _Phase.FAILED:
            self._raise_failure()
        verified = self._phase is _Phase.VERIFIED
        limit = self._written if verified else min(self._written, self._received - HELD_BACK_BYTES)
        if end is not None:
            limit = min(limit, end)
        return limit, verified or limit == end

    def reader(self) -> BinaryIO:
        """A file object of its own on the temporary file (a duplicate descriptor, so it
        reads on after the file is renamed, evicted or the download has failed)."""
        if self._phase is _Phase.FAILED:
            self._raise_failure()  # the descriptor may be closed, its number reused
        return os.fdopen(os.dup(self._fd), "rb", buffering=0)

    async def body_received(self) -> None:
        """Wait until the upstream has sent every byte (they may not all be hashed and
        written yet: `result()` says whether they were right), or raise the failure."""
        await self._body_in.wait()
        if self._failure is not None:
            self._raise_failure()

    async def result(self) -> StoredFile | None:
        """Wait until the download is over: the stored file, or None if it was not kept.

        A verified file is not kept when it alone is larger than the store, or when
        moving it into the cache failed; its readers still got every byte.
        """
        await self._finished.wait()
        if self._failure is not None:
            self._raise_failure()
        return self._stored

    def _read(self, position: int, readable: int) -> bytes:
        """Up to a chunk of the bytes at `position` (< `readable`): from the file when
        written, else from the chunks still queued for the writer."""
        if position >= self._written:
            offset = self._written
            pending = self._pieces.pending if self._pieces is not None else ()
            for chunk in itertools.chain(self._queued, pending):
                if position < offset + len(chunk):
                    whole = position == offset and offset + len(chunk) <= readable
                    return chunk if whole else chunk[position - offset : readable - offset]
                offset += len(chunk)
        size = min(READ_CHUNK_BYTES, readable - position, self._written - position)
        try:
            data = os.pread(self._fd, size, position)
        except OSError as exc:
            raise StorageFailed(f"{self.key}: reading the partial download failed: {exc}") from exc
        if not data:
            raise StorageFailed(f"{self.key}: the partial download is shorter than written")
        return data

    def _raise_failure(self) -> NoReturn:
        # A fresh exception per reader, so concurrent readers do not share one traceback.
        failure = self._failure
        assert failure is not None
        raise type(failure)(*failure.args) from failure.__cause__

    def _notify(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _run(self) -> None:
        try:
            sha256 = await self._fetch_and_verify()
        except DownloadFailed as exc:
            self._fail(exc)
            return
        except asyncio.CancelledError:
            self._fail(DownloadAborted(f"{self.key}: download aborted, the store is closing"))
            raise
        except Exception as exc:
            log.exception("download of %s failed unexpectedly", self.key)
            unexpected = DownloadFailed(f"{self.key}: download failed: {exc!r}")
            unexpected.__cause__ = exc
            self._fail(unexpected)
            return
        self._phase = _Phase.VERIFIED
        self._notify()
        try:
            self._stored = await self._keep(
                self.key, self._tmp_path, self._fd, self._written, sha256
            )
        except Exception:
            log.exception("keeping the verified download of %s failed", self.key)
            with suppress(OSError):
                os.unlink(self._tmp_path)
        finally:
            self._finish()

    async def _fetch_and_verify(self) -> str:
        try:
            response = await self._source()
        except Exception as exc:
            self._source_error = exc
            raise UpstreamFailed(f"{self.key}: upstream request failed: {exc!r}") from exc
        try:
            self._check.check_announced_length(response.length)
            announced = response.length if response.length is not None else self._expected_size
            self._length = announced
            self._answered.set()
            await self._receive(response.chunks)
        finally:
            await close_chunks(response.chunks)
        sha256 = self._check.verify()
        if response.length is not None and self._received != response.length:
            raise UpstreamFailed(
                f"{self.key}: upstream sent {self._received} of {response.length} bytes"
            )
        return sha256

    async def _receive(self, chunks: AsyncIterator[bytes]) -> None:
        writer = self._writer = ChunkWriter(
            self.key, self._fd, self._check, self._chunk_written, self._writer_stopped
        )
        pieces = self._pieces = PieceGatherer(writer, self._queued.append)
        try:
            async for chunk in chunks:
                # Checked here too, not only on the writer's thread: stop reading at once.
                self._check.check_received(self._received + len(chunk))
                self._received += len(chunk)
                self._counters.bytes_from_upstream += len(chunk)
                await pieces.add(chunk)
                self._notify()
        except DownloadFailed:
            raise
        except Exception as exc:
            raise UpstreamFailed(
                f"{self.key}: upstream broke off after {self._received} bytes: {exc!r}"
            ) from exc
        self._body_in.set()
        await pieces.finish()
        await writer.finish()

    def _chunk_written(self, size: int) -> None:
        if self._phase is _Phase.FAILED:
            return  # a report from the thread that crossed the failure: nothing is queued
        self._queued.popleft()
        self._written += size
        self._notify()

    def _writer_stopped(self) -> None:
        if self._phase is _Phase.FAILED:
            self._release_fd()

    def _release_fd(self) -> None:
        # Only once the writer thread is gone: it must never write to a reused descriptor.
        if self._writer is None or self._writer.stopped.is_set():
            with suppress(OSError):
                self._close_fd()

    def _fail(self, failure: DownloadFailed) -> None:
        self._failure = failure
        self._phase = _Phase.FAILED
        self._counters.count_failure(failure)
        with suppress(OSError):
            os.unlink(self._tmp_path)
        # No reader reads after a failure: give the space back now, not at garbage collection.
        self._queued.clear()
        if self._pieces is not None:
            self._pieces.drop()
        if self._writer is not None:
            self._writer.abandon()
        self._release_fd()
        self._answered.set()
        self._body_in.set()
        self._notify()
        self._finish()

    def _finish(self) -> None:
        self._finished.set()
        self._on_finished(self)
