"""Files across replicas: one upstream download per file for the whole cluster.

A replica that misses a file locally asks, in this order, until one answers:
1. the bucket (the object named by the file's sha256): stream it, keep a local copy;
2. the download lock in Redis: the replica that takes it downloads from the upstream,
   keeps the lock alive while it runs, stores the verified file in the bucket, and only
   then releases the lock;
3. the lock's holder, at the advertise URL in the lock: stream its download in progress
   (`GET /_cluster/files/<key>?offset=N`, served by `proxy.server.cluster_routes`).
Nothing answers (the holder is gone, its lock not yet expired): poll again shortly.

Whatever the source, the bytes go through the local store's `Download` (hashed, written
to the local disk, held back by one byte until verified), so every waiting client of a
replica shares one stream. When a source breaks off mid-file (the holder died) the stream
goes on from the byte where it stopped, from whichever source answers next: the bucket,
another holder, or this replica itself taking over the lock (one more upstream download;
the bytes it already has are skipped). A dead holder's lock expires within
`LOCK_TTL_S` (5 s), so a waiting client never waits long without a byte.

While Redis is down every replica downloads for itself (still storing into the bucket,
write-once): service degrades, it does not stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from proxy.cluster.coordination import CoordinationError, Coordinator, Lock
from proxy.store.download import Download
from proxy.store.errors import DownloadFailed
from proxy.store.file_store import FileStore
from proxy.store.s3 import STORE_ERRORS, S3Blobs
from proxy.store.upstream_body import Source, SourceResponse
from proxy.store.verify import ExpectedFile

log = logging.getLogger("variant_proxy.cluster")

POLL_S = 0.25
PEER_CHUNK_BYTES = 256 * 1024
PEER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=10.0)
PEER_ROUTE = "/_cluster/files/"
# How long a stopping replica lets its uploads to the bucket run before aborting them.
CLOSE_GRACE_S = 10.0

SourceKind = Literal["bucket", "upstream", "peer"]
_BROKEN_STREAM: tuple[type[Exception], ...] = (*STORE_ERRORS, aiohttp.ClientError, TimeoutError)


@dataclass
class ClusterCounters:
    """Running totals of one replica's cluster fetches, for metrics."""

    # Sources opened, by kind ("bucket", "upstream", "peer").
    sources: dict[str, int] = field(default_factory=dict)
    # Streams that broke off mid-file and went on from another source.
    resumed: int = 0
    # Writes to the bucket, by outcome ("stored", "present", "failed").
    bucket_writes: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], name: str) -> None:
        table[name] = table.get(name, 0) + 1


@dataclass
class _Job:
    """One replica's fetch of one file: its download, and whether it went upstream."""

    key: str
    download: Download | None = None
    lock: Lock | None = None
    from_upstream: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class ClusterFiles:
    """The cluster's file fetches of one replica: the `download` of `FileStore`, shared."""

    store: FileStore
    blobs: S3Blobs
    coordinator: Coordinator | None
    session: aiohttp.ClientSession
    counters: ClusterCounters = field(default_factory=ClusterCounters, init=False)
    _jobs: dict[str, _Job] = field(default_factory=dict, init=False)
    _finishing: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    @property
    def advertise_url(self) -> str:
        return self.coordinator.advertise_url if self.coordinator is not None else ""

    def download(self, key: str, upstream: Source, expected: ExpectedFile) -> Download:
        """The replica's running fetch of `key`, or a new one (see the module text)."""
        job = self._jobs.get(key)
        if job is not None and job.download is not None:
            return job.download
        job = _Job(key)
        fetch = _ClusterFetch(self, job, upstream, expected)
        job.download = self.store.download(key, fetch.open, expected)
        self._jobs[key] = job
        task = asyncio.get_running_loop().create_task(self._finish(job), name=f"cluster-{key}")
        self._finishing.add(task)
        task.add_done_callback(lambda _: self._jobs.pop(key, None))
        task.add_done_callback(self._finishing.discard)
        return job.download

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Let uploads to the bucket finish for `grace_s`, then abort what is left."""
        if not self._finishing:
            return
        _, late = await asyncio.wait(set(self._finishing), timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    def in_flight(self, key: str) -> Download | None:
        """This replica's download of `key` while it runs or is being stored (for peers)."""
        job = self._jobs.get(key)
        return None if job is None else job.download

    async def _finish(self, job: _Job) -> None:
        """After the download: store it in the bucket if it came from upstream, unlock."""
        assert job.download is not None
        try:
            stored = await job.download.result()
            if job.from_upstream:
                size = stored.size if stored is not None else await job.download.ready()
                if size is None:
                    log.warning("%s is not stored in the bucket: its size is unknown", job.key)
                else:
                    await self._store_in_bucket(job, size)
        except DownloadFailed:
            pass  # the download logged it; nothing is stored
        except Exception:
            self.counters.count(self.counters.bucket_writes, "failed")
            log.exception("storing %s in the bucket failed", job.key)
        finally:
            if job.lock is not None and self.coordinator is not None:
                await self.coordinator.release(job.lock)

    async def _store_in_bucket(self, job: _Job, size: int) -> None:
        assert job.download is not None
        created = await self.blobs.put_stream(job.key, size, job.download.stream())
        self.counters.count(self.counters.bucket_writes, "stored" if created else "present")
        log.info("%s %s the bucket", job.key, "stored in" if created else "already in")


class _ClusterFetch:
    """The `Source` of one cluster fetch: the first answering source, resumed on breaks."""

    def __init__(
        self, files: ClusterFiles, job: _Job, upstream: Source, expected: ExpectedFile
    ) -> None:
        self._files = files
        self._job = job
        self._upstream = upstream
        self._length = expected.size

    async def open(self) -> SourceResponse:
        kind, length, chunks = await self._opened(0)
        if length is not None:
            self._length = length
        return SourceResponse(length, self._follow(kind, chunks))

    async def _follow(self, kind: SourceKind, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        delivered = 0
        while True:
            try:
                async for chunk in chunks:
                    delivered += len(chunk)
                    yield chunk
                if self._length is None or delivered >= self._length:
                    return
                log.warning("%s: %s source ended at byte %d", self._job.key, kind, delivered)
            except _BROKEN_STREAM as exc:
                if kind == "upstream":
                    raise
                log.warning(
                    "%s: %s source broke at byte %d: %r", self._job.key, kind, delivered, exc
                )
            finally:
                await _close(chunks)
            self._files.counters.resumed += 1
            kind, _, chunks = await self._opened(delivered)

    async def _opened(self, offset: int) -> tuple[SourceKind, int | None, AsyncIterator[bytes]]:
        opened = await self._next_source(offset)
        self._files.counters.count(self._files.counters.sources, opened[0])
        return opened

    async def _next_source(
        self, offset: int
    ) -> tuple[SourceKind, int | None, AsyncIterator[bytes]]:
        """The first source that answers, streaming from byte `offset`."""
        while True:
            from_bucket = await self._from_bucket(offset)
            if from_bucket is not None:
                return "bucket", from_bucket[0], from_bucket[1]
            taken, holder = await self._take_lock()
            if taken:
                response = await self._upstream()
                self._job.from_upstream = True
                return "upstream", response.length, skip_bytes(response.chunks, offset)
            if holder is not None and holder != self._files.advertise_url:
                from_peer = await self._from_peer(holder, offset)
                if from_peer is not None:
                    return "peer", from_peer[0], from_peer[1]
            await asyncio.sleep(POLL_S)

    async def _from_bucket(self, offset: int) -> tuple[int, AsyncIterator[bytes]] | None:
        try:
            following, chunks = await self._files.blobs.read(self._job.key, offset)
        except FileNotFoundError:
            return None
        except STORE_ERRORS as exc:
            log.warning("%s: the bucket did not answer: %s", self._job.key, exc)
            return None
        return offset + following, chunks

    async def _take_lock(self) -> tuple[bool, str | None]:
        """(this replica downloads, else the holder's URL if known)."""
        coordinator = self._files.coordinator
        if self._job.lock is not None or coordinator is None:
            return True, None
        try:
            lock = await coordinator.try_lock(self._job.key)
            if lock is None:
                return False, await coordinator.holder(self._job.key)
        except CoordinationError as exc:
            log.warning("%s: no coordination (%s); downloading here", self._job.key, exc)
            return True, None
        self._job.lock = lock
        if await self._from_bucket_exists():
            # Stored between our look and our lock: no download needed.
            await coordinator.release(lock)
            self._job.lock = None
            return False, None
        return True, None

    async def _from_bucket_exists(self) -> bool:
        try:
            return await self._files.blobs.stat(self._job.key) is not None
        except STORE_ERRORS:
            return False

    async def _from_peer(
        self, holder: str, offset: int
    ) -> tuple[int | None, AsyncIterator[bytes]] | None:
        url = f"{holder}{PEER_ROUTE}{self._job.key}"
        try:
            response = await self._files.session.get(
                url, params={"offset": str(offset)}, timeout=PEER_TIMEOUT
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("%s: holder %s did not answer: %r", self._job.key, holder, exc)
            return None
        if response.status != 200:
            response.release()
            return None
        following = response.content_length
        return (None if following is None else offset + following), _peer_chunks(response)


async def _peer_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(PEER_CHUNK_BYTES):
            yield chunk
    finally:
        response.release()


async def skip_bytes(chunks: AsyncIterator[bytes], count: int) -> AsyncIterator[bytes]:
    """The stream without its first `count` bytes."""
    try:
        async for chunk in chunks:
            if count >= len(chunk):
                count -= len(chunk)
                continue
            yield chunk[count:] if count else chunk
            count = 0
    finally:
        await _close(chunks)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with suppress(Exception):
            await aclose()
