"""The chunk writer: a download's chunks hashed and written in order on a shared pool.

Real files under tmp_path and a real event loop; the downloads in the last test go through
a real `FileStore`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from proxy.store.chunk_writer import POOL_THREADS, ChunkWriter
from proxy.store.errors import SizeMismatch
from proxy.store.file_store import ExpectedFile, FileStore, SourceResponse
from proxy.store.verify import ContentCheck

CHUNKS = [bytes([n]) * (1000 + n) for n in range(40)]
DATA = b"".join(CHUNKS)


def expect(data: bytes) -> ExpectedFile:
    return ExpectedFile({"sha256": hashlib.sha256(data).hexdigest()}, len(data))


class Recorder:
    """What the writer reported on the loop."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.stopped = 0

    def on_written(self, size: int) -> None:
        self.written.append(size)

    def on_stopped(self) -> None:
        self.stopped += 1


def open_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)


async def test_chunks_land_in_order_across_drains_and_stop_is_reported_once(
    tmp_path: Path,
) -> None:
    fd = open_file(tmp_path / "file")
    check = ContentCheck("key-in-order", expect(DATA))
    recorder = Recorder()
    writer = ChunkWriter("key-in-order", fd, check, recorder.on_written, recorder.on_stopped)
    for index, chunk in enumerate(CHUNKS):
        await writer.write(chunk)
        if index % 7 == 0:  # let the drain run dry, so the next chunk starts a new one
            while len(recorder.written) <= index:
                await asyncio.sleep(0.001)
    await asyncio.wait_for(writer.finish(), 20)
    os.close(fd)
    assert (tmp_path / "file").read_bytes() == DATA
    assert check.verify() == hashlib.sha256(DATA).hexdigest()
    assert recorder.written == [len(chunk) for chunk in CHUNKS]
    await asyncio.sleep(0.01)
    assert recorder.stopped == 1


async def test_finish_with_nothing_queued_stops_at_once(tmp_path: Path) -> None:
    fd = open_file(tmp_path / "file")
    recorder = Recorder()
    writer = ChunkWriter(
        "key-empty", fd, ContentCheck("key-empty", expect(b"")), recorder.on_written
    )
    await asyncio.wait_for(writer.finish(), 20)
    os.close(fd)
    assert writer.stopped.is_set()
    assert recorder.written == []


async def test_a_check_failure_is_raised_and_both_lanes_stop(tmp_path: Path) -> None:
    fd = open_file(tmp_path / "file")
    recorder = Recorder()
    short = ExpectedFile({}, len(CHUNKS[0]))  # the second chunk is one too many
    writer = ChunkWriter(
        "key-short", fd, ContentCheck("key-short", short), recorder.on_written, recorder.on_stopped
    )
    failure: SizeMismatch | None = None
    try:
        for chunk in CHUNKS:
            await writer.write(chunk)
        await asyncio.wait_for(writer.finish(), 20)
    except SizeMismatch as exc:
        failure = exc
    writer.abandon()
    await asyncio.wait_for(writer.stopped.wait(), 20)
    await asyncio.sleep(0.01)
    os.close(fd)
    assert failure is not None
    assert recorder.stopped == 1
    assert DATA.startswith((tmp_path / "file").read_bytes())  # the write lane ran ahead at most


async def test_abandon_drops_the_queue_and_reports_stopped(tmp_path: Path) -> None:
    fd = open_file(tmp_path / "file")
    recorder = Recorder()
    writer = ChunkWriter(
        "key-abandoned", fd, ContentCheck("key-abandoned", expect(DATA)), recorder.on_written
    )
    for chunk in CHUNKS[:10]:
        await writer.write(chunk)
    writer.abandon()
    await asyncio.wait_for(writer.stopped.wait(), 20)
    written = len(recorder.written)
    await asyncio.sleep(0.05)
    os.close(fd)
    assert len(recorder.written) == written <= 10
    assert (tmp_path / "file").read_bytes() == b"".join(CHUNKS[:written])


async def test_many_downloads_share_the_pool_threads(tmp_path: Path) -> None:
    """Three times as many downloads as pool threads, all in the middle of their bytes at
    once: no more new threads than the pool's, and every file stored intact."""
    downloads = 3 * POOL_THREADS
    halfway = asyncio.Barrier(downloads + 1)
    go_on = asyncio.Event()
    payloads = [bytes([n]) * 300_000 + os.urandom(1000) for n in range(downloads)]

    def source(data: bytes) -> SourceResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield data[:100_000]
            await halfway.wait()
            await go_on.wait()
            for start in range(100_000, len(data), 50_000):
                yield data[start : start + 50_000]

        return SourceResponse(len(data), chunks())

    async with FileStore(tmp_path / "cache", None) as store:
        threads_before = threading.active_count()
        running = [
            store.download(
                f"sha256-{hashlib.sha256(data).hexdigest()}",
                lambda data=data: asyncio.sleep(0, source(data)),
                expect(data),
            )
            for data in payloads
        ]
        await asyncio.wait_for(halfway.wait(), 20)
        threads_now = threading.active_count()
        go_on.set()
        stored = await asyncio.wait_for(asyncio.gather(*(d.result() for d in running)), 20)
    assert threads_now <= threads_before + POOL_THREADS  # not one or two per download
    for data, kept in zip(payloads, stored, strict=True):
        assert kept is not None and kept.size == len(data)
        path = kept.blob.local_file
        assert path is not None and path.read_bytes() == data


async def test_lanes_that_never_run_dry_take_turns_on_the_pool(tmp_path: Path) -> None:
    """More downloads than pool threads (here one thread, so the order is certain), each
    with a full queue at once: every download has a chunk written before any has all of
    its chunks written (a lane hands its thread on after a few chunks instead of keeping
    it until its queue is empty)."""
    writers = 8
    chunks_each = 16
    order: list[int] = []
    running = []
    hold = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        # The thread is held while the queues fill, so all lanes are full when they start.
        holder = pool.submit(hold.wait, 20)
        for number in range(writers):
            fd = open_file(tmp_path / f"file-{number}")
            check = ContentCheck(f"key-{number}", ExpectedFile())
            writer = ChunkWriter(
                f"key-{number}",
                fd,
                check,
                lambda _size, number=number: order.append(number),
                pool=pool,
            )
            running.append((writer, fd))
            for chunk in CHUNKS[:chunks_each]:
                await writer.write(chunk)
        hold.set()
        holder.result(20)
        await asyncio.wait_for(asyncio.gather(*(w.finish() for w, _fd in running)), 20)
    for _writer, fd in running:
        os.close(fd)
    first_done = min(
        max(index for index, number in enumerate(order) if number == writer)
        for writer in range(writers)
    )
    assert set(order[: first_done + 1]) == set(range(writers))
