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
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


# How often the worker checks that the server that started it still runs.
PARENT_CHECK_S = 1.0


def _ready() -> bool:
    return True


def _exit_with_parent(parent: int) -> None:
    """In the worker: leave when the server is gone. A server killed outright (SIGKILL, out
    of memory) cannot shut its pool down, and the worker would wait for jobs forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class PageWorkers:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
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
