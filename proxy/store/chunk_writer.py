"""Hashing and writing one download's chunks off the event loop, on a small shared pool.

On the loop, sha256 and `os.write` of every chunk ran one after the other with receiving:
a cold file went at a third of the upstream's speed, and one slow write (76 ms was seen)
stalled every client of the proxy. Here the loop only hands chunks over to two lanes: one
writes them in order, the other hashes them in order (both release the GIL, and hashing is
the slower: one thread doing both capped a cold file at the sum of the two), each at most
`depth` chunks behind, so memory stays bounded and a slow disk slows the upstream read down
instead of the loop. Clients read the file as it is written (the last byte only once the
hash is verified), or the chunks still queued for it from memory (see `Download`).

A lane is drained by one pool thread at a time (a drain runs while chunks are queued, then
ends), so its chunks are handled in order. The pool is shared by every download: threads
started per download made the loop wait for each new thread to run (0.5-1 ms a thread on a
loaded machine; a 200-file mirror started 200 of them, and 400 with two lanes).

The writer never closes the descriptor: its owner does, after `stopped` (a thread still
writing to a closed, reused descriptor number would write into another file).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import suppress

from proxy.store.errors import DownloadFailed, StorageFailed
from proxy.store.verify import ContentCheck

DEFAULT_DEPTH = 16  # chunks of up to 256 KiB: at most 4 MiB queued per download
# Lanes worked on at the same moment; more only queue up for the CPU and disk.
POOL_THREADS = 8
# Chunks a lane handles before it lets the other lanes waiting for a thread go first.
CHUNKS_PER_TURN = 4

# What a lane reports to the loop after each chunk: its size, what went wrong (or None).
_Report = Callable[[int, DownloadFailed | None], None]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool per process, made on first use (its threads start as work comes)."""
    return ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="store-chunks")


class ChunkWriter:
    """Feeds `check` and the file `fd` with chunks, in order, on pool threads.

    `on_written(n)` runs on the loop after each chunk of `n` bytes is in the file,
    `on_stopped()` once, after `finish` or `abandon`, when no thread works for it any more.
    Errors (a `DownloadFailed` from the check, an `OSError` as `StorageFailed`) are raised
    on the loop by the next `write` or by `finish`.
    """

    def __init__(
        self,
        key: str,
        fd: int,
        check: ContentCheck,
        on_written: Callable[[int], None],
        on_stopped: Callable[[], None] | None = None,
        depth: int = DEFAULT_DEPTH,
        pool: Executor | None = None,
    ) -> None:
        self._key = key
        self._fd = fd
        self._check = check
        self._on_written = on_written
        self._on_stopped = on_stopped
        self._depth = depth
        self._offset = 0  # write lane: where the next chunk goes in the file
        self._loop = asyncio.get_running_loop()
        self._unwritten = 0  # loop side: chunks handed over and not yet written
        self._unhashed = 0  # loop side: chunks handed over and not yet hashed
        self._running = 2
        self._space = asyncio.Event()
        self._error: DownloadFailed | None = None
        self._abandoned = False
        self.stopped = asyncio.Event()
        self._lanes = tuple(
            _Lane(
                pool or _pool(),
                self._loop,
                functools.partial(_failure_of, key, job),
                report,
                self._dropping,
                self._lane_stopped,
            )
            for job, report in ((self._write, self._written), (self._hash, self._hashed))
        )

    async def write(self, chunk: bytes) -> None:
        """Queue `chunk`; waits while `depth` chunks are already queued on either lane."""
        await self.space()
        self.put(chunk)

    async def space(self) -> None:
        """Wait while `depth` chunks are queued on either lane; raise what went wrong."""
        while max(self._unwritten, self._unhashed) >= self._depth and self._error is None:
            self._space.clear()
            await self._space.wait()
        self._raise_error()

    def put(self, chunk: bytes) -> None:
        """Queue `chunk` at once (the caller bounds how many: see `space`)."""
        self._unwritten += 1
        self._unhashed += 1
        for lane in self._lanes:
            lane.put(chunk)

    async def finish(self) -> None:
        """Wait until every queued chunk is hashed and written; raise what went wrong."""
        for lane in self._lanes:
            lane.close()
        await self.stopped.wait()
        self._raise_error()

    def abandon(self) -> None:
        """Stop: the queued chunks are dropped, the lanes end soon (`stopped` then)."""
        self._abandoned = True
        for lane in self._lanes:
            lane.close()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- on pool threads ---------------------------------------------------------------------

    def _dropping(self) -> bool:
        """Whether the chunks left are to be dropped (abandoned, or something went wrong)."""
        return self._abandoned or self._error is not None

    def _hash(self, chunk: bytes) -> None:
        self._check.update(chunk)

    def _write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            # pwrite, not write: readers send from duplicates of this descriptor, and a
            # duplicate shares (and sendfile moves) the file position.
            written = os.pwrite(self._fd, view, self._offset)
            self._offset += written
            view = view[written:]

    # -- back on the loop --------------------------------------------------------------------

    def _lane_stopped(self) -> None:
        self._running -= 1
        if self._running:
            return
        self.stopped.set()
        if self._on_stopped is not None:
            self._on_stopped()

    def _note_error(self, error: DownloadFailed | None) -> None:
        if error is not None and self._error is None:
            self._error = error
        self._space.set()

    def _written(self, size: int, error: DownloadFailed | None) -> None:
        self._unwritten -= 1
        self._note_error(error)
        if error is None:
            self._on_written(size)

    def _hashed(self, _size: int, error: DownloadFailed | None) -> None:
        self._unhashed -= 1
        self._note_error(error)


class _Lane:
    """One job (writing or hashing) over a download's chunks, in order: queued chunks are
    drained on the shared pool, by at most one thread at a time. `job(chunk)` returns what
    went wrong (or None), `report(size, error)` and `stopped()` run on the loop, and while
    `dropping()` the chunks left are dropped unreported."""

    def __init__(
        self,
        pool: Executor,
        loop: asyncio.AbstractEventLoop,
        job: Callable[[bytes], DownloadFailed | None],
        report: _Report,
        dropping: Callable[[], bool],
        stopped: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._job = job
        self._report = report
        self._dropping = dropping
        self._stopped = stopped
        self._lock = threading.Lock()  # guards the three below, shared with the drain
        self._chunks: deque[bytes] = deque()
        self._draining = False  # a drain is submitted or running
        self._closed = False  # no chunk comes any more (finish or abandon)

    def put(self, chunk: bytes) -> None:
        with self._lock:
            self._chunks.append(chunk)
            if self._draining:
                return
            self._draining = True
        self._pool.submit(self._drain)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._draining:
                return  # the drain reports the stop when it ends
        # After the reports a drain posted already (`call_soon` keeps their order).
        self._loop.call_soon(self._stopped)

    def _drain(self) -> None:
        try:
            for _ in range(CHUNKS_PER_TURN):
                chunk = self._next_chunk()
                if chunk is None:
                    return
                self._tell_loop(self._report, len(chunk), self._job(chunk))
            # Back in the pool's queue: a lane that never runs dry (a fast upstream) must not
            # keep a thread while other downloads' lanes wait for one.
            self._pool.submit(self._drain)
        except BaseException:
            with self._lock:
                self._end_drain()
            raise

    def _next_chunk(self) -> bytes | None:
        """The next queued chunk; None when there is none (or they are being dropped), and
        then the drain has ended: a chunk queued later submits a new one."""
        with self._lock:
            if self._chunks and not self._dropping():
                return self._chunks.popleft()
            self._end_drain()
            return None

    def _end_drain(self) -> None:
        """With `_lock` held."""
        self._chunks.clear()  # only ever left here when dropping
        self._draining = False
        if self._closed:
            self._tell_loop(self._stopped)

    def _tell_loop(self, callback: Callable[..., None], *args: object) -> None:
        with suppress(RuntimeError):  # the loop is closed: the process is going away
            self._loop.call_soon_threadsafe(callback, *args)


def _failure_of(key: str, job: Callable[[bytes], None], chunk: bytes) -> DownloadFailed | None:
    """Run `job(chunk)`; what went wrong as a download failure, or None."""
    try:
        job(chunk)
    except DownloadFailed as exc:
        return exc
    except OSError as exc:
        failure = StorageFailed(f"{key}: writing the download failed: {exc}")
        failure.__cause__ = exc
        return failure
    return None
