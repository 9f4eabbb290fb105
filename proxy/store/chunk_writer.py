"""Hashing and writing one download's chunks on a thread of its own, off the event loop.

On the loop, sha256 and `os.write` of every chunk ran one after the other with receiving:
a cold file went at a third of the upstream's speed, and one slow write (76 ms was seen)
stalled every client of the proxy. Here the loop only hands chunks over; a thread hashes and
writes them in order (both release the GIL), at most `depth` chunks behind, so memory stays
bounded and a slow disk slows the upstream read down instead of the loop. Clients read the
chunks still queued from memory (see `Download`), the rest from the file.

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


class ChunkWriter:
    """Feeds `check` and the file `fd` with chunks, in order, on a thread.

    `on_written(n)` runs on the loop after each chunk of `n` bytes is hashed and written,
    `on_stopped()` once the thread has ended.
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
        self._offset = 0  # thread side: where the next chunk goes in the file
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # loop side: chunks handed over and not yet written
        self._space = asyncio.Event()
        self._error: DownloadFailed | None = None
        self._abandoned = False
        self.stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"store-write-{key}", daemon=True)
        self._thread.start()

    async def write(self, chunk: bytes) -> None:
        """Queue `chunk`; waits while `depth` chunks are already queued."""
        while self._queued >= self._depth and self._error is None:
            self._space.clear()
            await self._space.wait()
        self._raise_error()
        self._queued += 1
        self._queue.put(chunk)

    async def finish(self) -> None:
        """Wait until every queued chunk is hashed and written; raise what went wrong."""
        self._queue.put(None)
        await self.stopped.wait()
        self._raise_error()

    def abandon(self) -> None:
        """Stop: the queued chunks are dropped, the thread ends soon (`stopped` then)."""
        self._abandoned = True
        self._queue.put(None)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self._abandoned or self._error is not None:
                    continue
                error = self._hash_and_write(chunk)
                self._tell_loop(self._written, len(chunk), error)
        finally:
            self._tell_loop(self._stopped)

    def _tell_loop(self, callback: Callable[..., None], *args: object) -> None:
        with suppress(RuntimeError):  # the loop is closed: the process is going away
            self._loop.call_soon_threadsafe(callback, *args)

    def _hash_and_write(self, chunk: bytes) -> DownloadFailed | None:
        try:
            self._check.update(chunk)
            view = memoryview(chunk)
            while view:
                # pwrite, not write: readers send from duplicates of this descriptor, and a
                # duplicate shares (and sendfile moves) the file position.
                written = os.pwrite(self._fd, view, self._offset)
                self._offset += written
                view = view[written:]
        except DownloadFailed as exc:
            return exc
        except OSError as exc:
            failure = StorageFailed(f"{self._key}: writing the download failed: {exc}")
            failure.__cause__ = exc
            return failure
        return None

    # -- back on the loop --------------------------------------------------------------------

    def _stopped(self) -> None:
        self.stopped.set()
        if self._on_stopped is not None:
            self._on_stopped()

    def _written(self, size: int, error: DownloadFailed | None) -> None:
        self._queued -= 1
        if error is not None and self._error is None:
            self._error = error
        self._space.set()
        if error is None:
            self._on_written(size)
