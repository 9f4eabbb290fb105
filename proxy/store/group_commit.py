"""Records of kept files reach the index in groups: one durable commit for every file that
finished while the previous commit ran (group commit).

A commit with `synchronous=FULL` costs an fsync of the log, a few milliseconds; one per file,
on the store's single index thread, capped a mirror of many small files at a few hundred
files a second. Grouping adds no wait: the first file commits at once, and the files that
finish meanwhile go together in the next commit. Each caller returns only once its own
record is durable, so the store's order (record, then blob into place) is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from proxy.store.index import IndexEntry

# Runs `StoreIndex.add_many(entries, accesses)` on the index thread.
CommitGroup = Callable[[list[IndexEntry], Mapping[str, int]], Awaitable[None]]


class GroupCommit:
    def __init__(self, commit: CommitGroup) -> None:
        self._commit = commit
        self._entries: list[IndexEntry] = []
        self._accesses: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._running: asyncio.Task[None] | None = None

    async def add(self, entry: IndexEntry, accesses: Mapping[str, int]) -> None:
        """Record `entry` (and access stamps noted meanwhile); returns once it is durable."""
        waiter = asyncio.get_running_loop().create_future()
        self._entries.append(entry)
        self._accesses.update(accesses)
        self._waiters.append(waiter)
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._commit_groups())
        await waiter

    async def _commit_groups(self) -> None:
        try:
            while self._entries:
                entries, self._entries = self._entries, []
                accesses, self._accesses = self._accesses, {}
                waiters, self._waiters = self._waiters, []
                try:
                    await self._commit(entries, accesses)
                except BaseException as exc:
                    _settle(waiters, exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    _settle(waiters, None)
        finally:
            self._running = None
            waiters, self._waiters = self._waiters, []
            _settle(waiters, asyncio.CancelledError())  # only left when this task was cancelled


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue  # its caller was cancelled
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
