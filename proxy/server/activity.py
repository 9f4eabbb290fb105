"""What the running proxy is doing, for people: downloads in flight (named, with progress and
rate; a progress line in the log every `PROGRESS_EVERY_S` for a long one) and the recent
errors (every warning or error logged, and every 5xx answer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.server.logs import CLOCK, LOGGER_NAME, one_line
from proxy.store.download import Download

log = logging.getLogger(LOGGER_NAME + ".downloads")

PROGRESS_EVERY_S = 10.0
RECENT_ERRORS = 50


@dataclass(frozen=True)
class DownloadProgress:
    key: str
    name: str  # the file name as listed (or the key when unknown)
    project: str
    received: int
    total: int | None
    seconds: float

    @property
    def rate(self) -> float:
        """Bytes per second since the download started."""
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        return self.received / self.total if self.total else None


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class DownloadWatch:
    """Names the store's downloads and logs the progress of long ones."""

    def __init__(self, running: Callable[[], Sequence[Download]]) -> None:
        self._running = running
        self._names: dict[str, tuple[str, str]] = {}
        self._logged_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def name(self, key: str, project: str, filename: str) -> None:
        """Remember which listed file a store key is (called when a download starts)."""
        self._names[key] = (project, filename)

    def snapshot(self, now: float | None = None) -> list[DownloadProgress]:
        now = time.time() if now is None else now
        result = []
        for download in self._running():
            project, name = self._names.get(download.key, ("", download.key))
            result.append(
                DownloadProgress(
                    download.key,
                    name,
                    project,
                    download.received,
                    download.total,
                    max(0.0, now - download.started_at),
                )
            )
        return sorted(result, key=lambda item: -item.seconds)

    def log_progress(self, now: float | None = None) -> None:
        """One line per download that has run `PROGRESS_EVERY_S` since its last line."""
        now = time.time() if now is None else now
        current = self.snapshot(now)
        keys = {item.key for item in current}
        for key in [k for k in self._logged_at if k not in keys]:
            del self._logged_at[key]
        for key in [k for k in self._names if k not in keys]:
            del self._names[key]
        for item in current:
            last = self._logged_at.get(item.key, now - item.seconds)
            if now - last < PROGRESS_EVERY_S:
                continue
            self._logged_at[item.key] = now
            of_total = f" of {human_bytes(item.total)}" if item.total else ""
            log.info(
                "downloading %s: %s%s in %.0f s (%s/s)",
                item.name,
                human_bytes(item.received),
                of_total,
                item.seconds,
                human_bytes(item.rate),
                extra={
                    "fields": {
                        "file": item.name,
                        "bytes": item.received,
                        "total": item.total,
                        "seconds": round(item.seconds, 1),
                        "bytes_per_s": round(item.rate),
                    }
                },
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.log_progress()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="progress-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass(frozen=True)
class RecentError:
    at: str  # timestamp, as in the log
    where: str
    message: str


class RecentErrors(logging.Handler):
    """The last `RECENT_ERRORS` warnings and errors, as a logging handler plus 5xx answers."""

    def __init__(self, size: int = RECENT_ERRORS) -> None:
        super().__init__(level=logging.WARNING)
        self.items: collections.deque[RecentError] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        where = record.name.removeprefix(LOGGER_NAME + ".")
        self.items.append(
            RecentError(CLOCK.now(record.created), where, one_line(record.getMessage()))
        )

    def answer(self, status: int, path: str, reason: str | None) -> None:
        text = f"{status} for {path[:200]}" + (f": {reason}" if reason else "")
        self.items.append(RecentError(CLOCK.now(), "answer", one_line(text, 400)))

    def newest_first(self) -> list[RecentError]:
        return list(reversed(self.items))
