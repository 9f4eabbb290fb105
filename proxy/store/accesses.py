"""Access stamps of cache hits, noted in memory and written to the index in batches.

A lookup only notes its access (a strictly increasing stamp, for LRU order); the stamps
reach the index every `interval` seconds, when `batch` are pending, and whenever the store
takes them (before it records a new file or evicts, and at close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

from proxy.store.index import AccessClock

log = logging.getLogger(__name__)

# Writes a batch of stamps (key -> stamp) to the index.
WriteStamps = Callable[[dict[str, int]], Awaitable[None]]


class AccessStamps:
    """The pending access stamps of one open store, and the task that flushes them."""

    def __init__(self, interval: float, batch: int) -> None:
        self._interval = interval
        self._batch = batch
        self._pending: dict[str, int] = {}
        self._clock = AccessClock()
        self._flush_wanted = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def start(self, newest: int, write: WriteStamps) -> None:
        """Hand out stamps after `newest` (the index's newest) and flush them with `write`."""
        self._clock = AccessClock(newest)
        self._flush_wanted = asyncio.Event()
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_periodically(write), name="store-access-flusher"
        )

    async def stop(self) -> None:
        """Stop the periodic flush (the pending stamps stay, for a last `flush`)."""
        if self._flusher is not None:
            self._flusher.cancel()
            # asyncio.wait, not `await task`: a cancellation of the caller must propagate.
            await asyncio.wait([self._flusher])
            self._flusher = None

    def tick(self) -> int:
        """A new stamp, later than every stamp handed out before."""
        return self._clock.tick()

    def note(self, key: str) -> None:
        """`key` was used now."""
        self._pending[key] = self._clock.tick()
        if len(self._pending) >= self._batch:
            self._flush_wanted.set()

    def take(self) -> dict[str, int]:
        """The pending stamps, which the caller now writes."""
        pending, self._pending = self._pending, {}
        return pending

    async def flush(self, write: WriteStamps) -> None:
        if self._pending:
            await write(self.take())

    async def _flush_periodically(self, write: WriteStamps) -> None:
        while True:
            # Not asyncio.wait_for: on 3.11 it can swallow a cancellation (close() would hang).
            with suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._flush_wanted.wait()
            self._flush_wanted.clear()
            try:
                await self.flush(write)
            except Exception:
                log.exception("writing access stamps to the cache index failed")
