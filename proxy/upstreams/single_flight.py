"""One running coroutine per key, shared by every concurrent caller of that key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs one coroutine per key at a time; concurrent callers share its result."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return await asyncio.shield(self.start(key, factory))

    def start(self, key: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The running task of `key`, started if none runs (await it shielded)."""
        task = self._running.get(key)
        if task is None:
            # A task of its own: a caller that is cancelled does not cancel the others.
            task = asyncio.get_running_loop().create_task(factory())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved, so an error nobody awaited is not reported twice
