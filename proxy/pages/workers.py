"""The worker process that does a big page's CPU work (a root list of 700k names, a cold
page of 20k files), so the event loop keeps answering while it runs: parsing and encoding a
6 MB document hold the GIL for tens of ms at a time, too long for a thread.

One process (the machine's other core), spawned on first use or by `warm_up` (spawn, not
fork: the server's threads and sockets stay out of it). Jobs are module-level functions; their
arguments and results are bytes and small values, never big object graphs (pickling 20k
records costs more than building them).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def _ready() -> bool:
    return True


class PageWorkers:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` in the worker process."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), function, *args)

    def warm_up(self) -> None:
        """Start the process now (in the background), so the first big page does not wait
        for it to start and import the proxy."""
        self._executor().submit(_ready)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
