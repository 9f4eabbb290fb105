"""What the rest of the proxy needs of an upstream index: the `UpstreamSource` Protocol.

Every kind of upstream (the HTTP client in `proxy.upstreams.http` first; a directory of
wheels, a local index that takes uploads, a backend index later) implements this Protocol,
and everything above it (merged project views, variant metadata, remote wheel reads, the
store's downloads, the routes) is written against it, never against one implementation.

Also the neutral types of its answers and errors, and `redact`, so that a consumer never
imports a concrete client to name them.

URLs: a source answers for the URLs it hands out itself (`index_url`, `project_url`) and
for the URLs its pages list. It fetches nothing else (the proxy fetches only what a page
listed), and it may refuse any other URL with `UpstreamError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from proxy.simple.names import NormalizedName


class UpstreamError(Exception):
    """The upstream failed (unreachable, 5xx, bad redirect); `timed_out` picks 504 over 502."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class UpstreamNotFound(Exception):
    """The upstream has no such page or file (HTTP 404 or 410)."""


@dataclass(frozen=True)
class PageResponse:
    """One answer to a page request: 200 with a body, or 304 (body empty)."""

    status: int
    body: bytes
    content_type: str
    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class FileResponse:
    """An open file stream (the store's `UpstreamBody`): its announced length, if any, and
    its chunks. When `chunks` has an `aclose()` the reader calls it once it stops reading."""

    length: int | None
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class RangeAnswer:
    """What a source sent for one range request.

    `start` is where `data` lies in the file and `total_size` the file's size (None when it
    is not known). `whole_file` is True when the source ignored the range and sent the whole
    file; `data` is then the file.
    """

    data: bytes
    start: int
    total_size: int | None
    whole_file: bool


class UpstreamSource(Protocol):
    """One configured upstream index, as the rest of the proxy uses it."""

    @property
    def name(self) -> str:
        """The configured name: in logs, metrics, cache keys and `[pins]`."""
        ...

    @property
    def ttl(self) -> float:
        """Seconds a fetched page (or unhashed variants.json) stays fresh."""
        ...

    @property
    def index_url(self) -> str:
        """The URL of the root project list, as given to `fetch_page`."""
        ...

    def project_url(self, project: NormalizedName) -> str:
        """The URL of a project's page, as given to `fetch_page`."""
        ...

    async def fetch_page(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> PageResponse:
        """A simple-API page; with validators, a 304 answer when it has not changed.

        Raises `UpstreamNotFound` when there is no such page, `UpstreamError` on failure.
        """
        ...

    async def fetch_bytes(self, url: str) -> bytes:
        """A small listed resource (a variants.json), whole."""
        ...

    async def fetch_range(self, url: str, start: int | None, length: int) -> RangeAnswer:
        """`length` bytes of a listed file from `start`; start None means its last `length`."""
        ...

    async def open_file(self, url: str) -> FileResponse:
        """Open a listed file for streaming; the caller drains (or closes) `chunks`."""
        ...


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`https://user:secret@host/simple/` -> (`https://host/simple/`, (user, secret))."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


def redact(url: str) -> str:
    """The URL without any user:password part, fit for logs, errors and served pages."""
    return split_credentials(url)[0]
