"""Mirror progress: a rich progress bar on a terminal (files, bytes, rate, ETA), plain lines
otherwise (about twenty over a run, and at least every few seconds), then a one-line summary.

The bar counts files, whose number is always known; bytes are shown beside it, with their
total only when every file's size is (an HTML upstream lists no sizes), so the bar and the
time left never wait on a total that is not there.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_INTERVAL_S = 5.0


class MirrorProgress(Protocol):
    def start(self, files: int, total_bytes: int | None) -> None:
        """`total_bytes`: None when some file's size is not known in advance."""
        ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def finish(self) -> str: ...


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError  # pragma: no cover


class _Counts:
    def __init__(self) -> None:
        self.files = 0
        self.done = 0
        self.total_bytes: int | None = None
        self.bytes = 0
        self.started = time.monotonic()

    def rate(self) -> float:
        return self.bytes / max(time.monotonic() - self.started, 1e-6)

    def summary(self) -> str:
        return (
            f"{self.done}/{self.files} files, {human_bytes(self.bytes)} in "
            f"{time.monotonic() - self.started:.2f} s ({human_bytes(self.rate())}/s)"
        )


class PlainProgress:
    """Lines like `mirror: 40/200 files, 12.3 MB of 61.0 MB, 5.1 MB/s`."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._counts = _Counts()
        self._last_line = 0.0
        self._every = 1

    def start(self, files: int, total_bytes: int | None) -> None:
        self._counts = _Counts()
        self._counts.files, self._counts.total_bytes = files, total_bytes
        self._every = max(1, files // 20)
        self._line()

    def advance(self, nbytes: int) -> None:
        self._counts.bytes += nbytes

    def file_done(self) -> None:
        counts = self._counts
        counts.done += 1
        due = time.monotonic() - self._last_line >= PLAIN_INTERVAL_S
        if counts.done % self._every == 0 or counts.done == counts.files or due:
            self._line()

    def _line(self) -> None:
        counts = self._counts
        of = f" of {human_bytes(counts.total_bytes)}" if counts.total_bytes is not None else ""
        print(
            f"mirror: {counts.done}/{counts.files} files, {human_bytes(counts.bytes)}{of}, "
            f"{human_bytes(counts.rate())}/s",
            file=self._out,
            flush=True,
        )
        self._last_line = time.monotonic()

    def finish(self) -> str:
        return self._counts.summary()


class _BytesColumn(ProgressColumn):
    """`12.3 MB` (`12.3 MB of 61.0 MB` when the total is known) from the task's fields."""

    def render(self, task: Task) -> Text:
        done, total = task.fields["bytes"], task.fields["total_bytes"]
        of = f" of {human_bytes(total)}" if total is not None else ""
        return Text(f"{human_bytes(done)}{of}", style="progress.download")


class _ByteRateColumn(ProgressColumn):
    """Bytes a second since the start, e.g. `5.1 MB/s`."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("?", style="progress.data.speed")
        return Text(f"{human_bytes(task.fields['bytes'] / elapsed)}/s", style="progress.data.speed")


class BarProgress:
    """A rich progress bar over the files: done of all, bytes, rate and time left."""

    def __init__(self, out: TextIO) -> None:
        self._progress = Progress(
            TextColumn("[bold]mirror[/] {task.completed:.0f}/{task.total:.0f} files"),
            BarColumn(),
            _BytesColumn(),
            _ByteRateColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
            transient=False,
        )
        self._counts = _Counts()
        self._task: TaskID | None = None

    def start(self, files: int, total_bytes: int | None) -> None:
        self._counts = _Counts()
        self._counts.files, self._counts.total_bytes = files, total_bytes
        self._progress.start()
        self._task = self._progress.add_task(
            "mirror", total=files, bytes=0, total_bytes=total_bytes
        )

    def advance(self, nbytes: int) -> None:
        self._counts.bytes += nbytes
        if self._task is not None:
            self._progress.update(self._task, bytes=self._counts.bytes)

    def file_done(self) -> None:
        self._counts.done += 1
        if self._task is not None:
            self._progress.advance(self._task, 1)

    def finish(self) -> str:
        self._progress.stop()
        return self._counts.summary()


def progress_for(out: TextIO = sys.stderr) -> MirrorProgress:
    return BarProgress(out) if out.isatty() else PlainProgress(out)
