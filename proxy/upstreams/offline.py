"""The upstream of an offline proxy: it keeps the identity of the configured source (name,
URLs), which names the cache entries a mirror made, and never opens a connection.

Every fetch raises `NotInMirror`, answered 404 `not in the offline mirror: ...`; the page
cache and the file store are the only sources of an offline proxy.
"""

from __future__ import annotations

from proxy.simple.names import NormalizedName
from proxy.upstreams.source import (
    FileResponse,
    PageResponse,
    RangeAnswer,
    UpstreamError,
    UpstreamSource,
    redact,
)


class NotInMirror(UpstreamError):
    """What an offline proxy was asked for and does not hold."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not in the offline mirror: {what}")


class OfflineSource:
    """An `UpstreamSource` with the identity of `configured` whose every fetch raises
    `NotInMirror`."""

    def __init__(self, configured: UpstreamSource) -> None:
        self._configured = configured

    @property
    def name(self) -> str:
        return self._configured.name

    @property
    def ttl(self) -> float:
        return self._configured.ttl

    @property
    def index_url(self) -> str:
        return self._configured.index_url

    def project_url(self, project: NormalizedName) -> str:
        return self._configured.project_url(project)

    async def fetch_page(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> PageResponse:
        raise NotInMirror(redact(url))

    async def fetch_bytes(self, url: str) -> bytes:
        raise NotInMirror(redact(url))

    async def fetch_range(self, url: str, start: int | None, length: int) -> RangeAnswer:
        raise NotInMirror(redact(url))

    async def open_file(self, url: str) -> FileResponse:
        raise NotInMirror(redact(url))
