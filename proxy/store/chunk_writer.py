"""Hashing and writing one download's chunks on two threads of its own, off the event loop.

On the loop, sha256 and `os.write` of every chunk ran one after the other with receiving:
a cold file went at a third of the upstream's speed, and one slow write (76 ms was seen)
stalled every client of the proxy. Here the loop only hands chunks over; one thread writes
them in order, another hashes them in order (both release the GIL, and hashing is the
slower: one thread doing both capped a cold file at the sum of the two), each at most
`depth` chunks behind, so memory stays bounded and a slow disk slows the upstream read down
instead of the loop. Clients read the file as it is written (the last byte only once the
hash is verified), or the chunks still queued for it from memory (see `Download`).

The writer never closes the descriptor: its owner does, after `stopped` (a thread still
writing to a closed, reused descriptor number would write into another file).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from contextlib import suppress

from proxy.store.errors import DownloadFailed, StorageFailed
from proxy.store.verify import ContentCheck

DEFAULT_DEPTH = 16  # chunks of up to 256 KiB: at most 4 MiB queued per download

# A chunk to work on, or None: stop.
_Work = queue.SimpleQueue[bytes | None]


class ChunkWriter:
    """Feeds `check` and the file `fd` with chunks, in order, on two threads.

    `on_written(n)` runs on the loop after each chunk of `n` bytes is in the file,
    `on_stopped()` once both threads have ended.
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
    ) -> None:
        self._key = key
        self._fd = fd
        self._check = check
        self._on_written = on_written
        self._on_stopped = on_stopped
        self._depth = depth
        self._offset = 0  # write thread: where the next chunk goes in the file
        self._loop = asyncio.get_running_loop()
        self._writes: _Work = queue.SimpleQueue()
        self._hashes: _Work = queue.SimpleQueue()
        self._unwritten = 0  # loop side: chunks handed over and not yet written
        self._unhashed = 0  # loop side: chunks handed over and not yet hashed
        self._running = 2
        self._space = asyncio.Event()
        self._error: DownloadFailed | None = None
        self._abandoned = False
        self.stopped = asyncio.Event()
        for name, work, job, report in (
            ("write", self._writes, self._write, self._written),
            ("hash", self._hashes, self._hash, self._hashed),
        ):
            threading.Thread(
                target=self._run,
                args=(work, job, report),
                name=f"store-{name}-{key}",
                daemon=True,
            ).start()

    async def write(self, chunk: bytes) -> None:
        """Queue `chunk`; waits while `depth` chunks are already queued on either thread."""
        while max(self._unwritten, self._unhashed) >= self._depth and self._error is None:
            self._space.clear()
            await self._space.wait()
        self._raise_error()
        self._unwritten += 1
        self._unhashed += 1
        self._writes.put(chunk)
        self._hashes.put(chunk)

    async def finish(self) -> None:
        """Wait until every queued chunk is hashed and written; raise what went wrong."""
        self._writes.put(None)
        self._hashes.put(None)
        await self.stopped.wait()
        self._raise_error()

    def abandon(self) -> None:
        """Stop: the queued chunks are dropped, the threads end soon (`stopped` then)."""
        self._abandoned = True
        self._writes.put(None)
        self._hashes.put(None)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the threads -----------------------------------------------------------------------

    def _run(
        self,
        work: _Work,
        job: Callable[[bytes], None],
        report: Callable[[int, DownloadFailed | None], None],
    ) -> None:
        try:
            while (chunk := work.get()) is not None:
                if self._abandoned or self._error is not None:
                    continue
                error = _failure_of(self._key, job, chunk)
                self._tell_loop(report, len(chunk), error)
        finally:
            self._tell_loop(self._thread_stopped)

    def _tell_loop(self, callback: Callable[..., None], *args: object) -> None:
        with suppress(RuntimeError):  # the loop is closed: the process is going away
            self._loop.call_soon_threadsafe(callback, *args)

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

    def _thread_stopped(self) -> None:
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
