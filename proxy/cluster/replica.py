"""One replica's part in a cluster: its bucket, its Redis connection, what they share.

Built from `[cache.s3]` and `[cluster]` (either may be absent): `files` (cluster-wide
single flight over the bucket) needs the bucket; `pages` (the shared page cache) and
invalidations need Redis. `problems()` gives `/health` the reasons the replica is degraded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from proxy.cluster.coordination import CoordinationError, Coordinator
from proxy.cluster.files import ClusterFiles
from proxy.cluster.pages import RedisPages
from proxy.cluster.settings import ClusterSettings, S3Settings
from proxy.store.file_store import FileStore
from proxy.store.s3 import S3Blobs

# A load balancer's health check must get its answer in time, even when a store hangs.
HEALTH_CHECK_TIMEOUT_S = 2.0


class Replica:
    """The cluster services of one replica; `start()` after the HTTP session exists."""

    def __init__(self, s3: S3Settings | None, cluster: ClusterSettings | None) -> None:
        self.blobs = S3Blobs(s3) if s3 is not None else None
        namespace = f"vp:{s3.bucket}/{s3.prefix}:" if s3 is not None else "vp:"
        self.coordinator = (
            Coordinator(cluster.redis_url, namespace=namespace) if cluster is not None else None
        )
        self.pages = RedisPages(self.coordinator) if self.coordinator is not None else None
        self.files: ClusterFiles | None = None
        self._advertise = cluster.advertise_url if cluster is not None else None

    async def start(
        self, store: FileStore, session: aiohttp.ClientSession, forget: Callable[[str], None]
    ) -> None:
        if self.blobs is not None:
            await self.blobs.connect()
            self.files = ClusterFiles(store, self.blobs, self.coordinator, session)
        if self.coordinator is not None:
            self.coordinator.listen_for_invalidations(forget)
            if self._advertise is not None:
                self.coordinator.advertise_url = self._advertise

    def listening(self, url: str) -> None:
        """The replica's own URL, the advertised one unless `advertise_url` is set."""
        if self.coordinator is not None and self._advertise is None:
            self.coordinator.advertise_url = reachable_url(url)

    async def close(self) -> None:
        if self.files is not None:
            await self.files.close()
        if self.coordinator is not None:
            await self.coordinator.close()
        if self.blobs is not None:
            await self.blobs.close()

    async def invalidate(self, project: str, upstream_names: list[str]) -> str | None:
        """Tell every replica to forget `project`; the reason when that failed."""
        if self.pages is None:
            return None
        try:
            await self.pages.invalidate(project, upstream_names)
        except CoordinationError as exc:
            return str(exc)
        return None

    async def problems(self) -> list[str]:
        """Why this replica is degraded (empty: all well); answers within about 2 s."""
        checks = []
        if self.blobs is not None:
            checks.append(("object store", self.blobs.problem()))
        if self.coordinator is not None:
            checks.append(("redis", self.coordinator.problem()))
        reasons = []
        for name, check in checks:
            try:
                async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S):
                    reason = await check
            except TimeoutError:
                reason = f"{name}: no answer within {HEALTH_CHECK_TIMEOUT_S:g} s"
            if reason is not None:
                reasons.append(reason)
        return reasons


def reachable_url(listening_url: str) -> str:
    """The listening URL, with a wildcard address (0.0.0.0, ::) replaced by this host's own
    address: what its hostname resolves to, as in a container or a Kubernetes pod."""
    parts = urlsplit(listening_url.rstrip("/"))
    if parts.hostname not in ("0.0.0.0", "::"):
        return parts.geturl()
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = "127.0.0.1"
    return f"{parts.scheme}://{address}:{parts.port}"
