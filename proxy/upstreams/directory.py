"""A directory of wheels and sdists as an `UpstreamSource` (`[[upstreams]] path = "DIR"`).

Pages are built from the files (`proxy.local.page`) each time the page is fetched, which is
cheap: the scan stats the files and hashes only new or changed ones. A page is sent as PEP 691
JSON with an ETag (its digest), so an unchanged directory answers 304. Its URLs are `file:`
URLs under the directory; only paths inside it that the scan lists are ever read. A wheel's
PEP 658 metadata (`{url}.metadata`) is its own METADATA, and a variants.json the page lists
but the directory lacks is the one built from the wheels.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

import cachetools

from proxy.config import DirectorySettings
from proxy.local.page import LocalFile, build_directory_page
from proxy.local.publish import LocalIndex, remove_partials
from proxy.local.scan import DirectoryScanner
from proxy.local.wheel_contents import WheelError, read_wheel
from proxy.simple.api import render_index_json, render_project_json
from proxy.simple.names import NormalizedName, normalize_name
from proxy.upstreams.source import (
    FileResponse,
    PageResponse,
    RangeAnswer,
    UpstreamError,
    UpstreamNotFound,
    UpstreamSource,
)

log = logging.getLogger("variant_proxy")

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
CHUNK_SIZE = 256 * 1024
METADATA_SUFFIX = ".metadata"
PAGE_MEMO_ENTRIES = 256


class FileChunks:
    """A local file as an async iterator of chunks, each read in a worker thread."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def __aiter__(self) -> FileChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await asyncio.to_thread(self._handle.read, CHUNK_SIZE)
        if not chunk:
            self._handle.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._handle.close()


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


class DirectorySource:
    """One configured directory upstream."""

    def __init__(
        self, settings: DirectorySettings, scanner: DirectoryScanner | None = None
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.ttl = settings.ttl
        self.index_url = self._base = settings.path.as_uri().rstrip("/") + "/"
        self.scanner = scanner or DirectoryScanner(settings.path)
        # variants.json files built from wheels (no file on disk), per project: relative path
        # -> bytes. Written by page builds in worker threads, read on the loop: under a lock.
        self._built: dict[NormalizedName, dict[str, bytes]] = {}
        self._built_lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()
        # The last page of each project and the files it was built from.
        self._pages: cachetools.LRUCache[str, tuple[tuple[LocalFile, ...], bytes]] = (
            cachetools.LRUCache(PAGE_MEMO_ENTRIES)
        )

    def project_url(self, project: NormalizedName) -> str:
        return f"{self._base}{project}/"

    def url_for(self, relative: str) -> str:
        return self._base + quote(relative)

    def _relative(self, url: str) -> str:
        if not url.startswith(self._base):
            raise UpstreamNotFound(url)
        return unquote(url[len(self._base) :])

    # -- pages -------------------------------------------------------------------------------

    async def fetch_page(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> PageResponse:
        if url == self._base:
            body = await asyncio.to_thread(self._index_body)
        else:
            project = self._relative(url).rstrip("/")
            if not project or "/" in project or normalize_name(project) != project:
                raise UpstreamNotFound(url)
            body = await asyncio.to_thread(self._project_body, normalize_name(project))
        digest = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        if etag == digest:
            return PageResponse(304, b"", JSON_TYPE, url, etag, None)
        return PageResponse(200, body, JSON_TYPE, url, digest, None)

    def _index_body(self) -> bytes:
        try:
            return render_index_json(self.scanner.projects())
        except OSError as exc:
            raise UpstreamError(f"directory upstream {self.name} unreadable: {exc}") from None

    def _project_body(self, project: NormalizedName) -> bytes:
        try:
            files = self.scanner.project_files(project)
        except OSError as exc:
            raise UpstreamError(f"directory upstream {self.name} unreadable: {exc}") from None
        key = tuple(files)
        with self._built_lock:
            known = self._pages.get(project)
        if known is not None and known[0] == key:
            return known[1]  # nothing changed since the last scan
        built = build_directory_page(project, files, self.url_for) if files else None
        with self._built_lock:
            self._built[project] = dict(built.built) if built is not None else {}
        if built is None or not built.page.files:
            raise UpstreamNotFound(project)
        for problem in built.problems:
            if (project, problem) not in self._logged:  # once, not at every re-scan
                self._logged.add((project, problem))
                log.warning("local index %s: %s: %s", self.name, project, problem)
        body = render_project_json(built.page)
        with self._built_lock:
            self._pages[project] = (key, body)
        return body

    # -- files -------------------------------------------------------------------------------

    def _built_file(self, relative: str) -> bytes | None:
        with self._built_lock:
            for files in self._built.values():
                if relative in files:
                    return files[relative]
        return None

    def _path(self, relative: str) -> Path:
        try:
            path = self.scanner.resolve(relative)
        except FileNotFoundError:
            raise UpstreamNotFound(relative) from None
        if not path.is_file():
            raise UpstreamNotFound(relative)
        return path

    async def read_whole(self, url: str) -> bytes:
        """A listed file (or a wheel's `.metadata`) read whole."""
        relative = self._relative(url)
        built = self._built_file(relative)
        if built is not None:
            return built
        if relative.endswith(".whl" + METADATA_SUFFIX):
            wheel = self._path(relative.removesuffix(METADATA_SUFFIX))
            try:
                return (await asyncio.to_thread(read_wheel, str(wheel))).metadata
            except WheelError as exc:
                raise UpstreamError(f"{relative}: {exc}") from None
        return await asyncio.to_thread(self._path(relative).read_bytes)

    async def fetch_bytes(self, url: str) -> bytes:
        return await self.read_whole(url)

    async def fetch_range(self, url: str, start: int | None, length: int) -> RangeAnswer:
        relative = self._relative(url)
        built = self._built_file(relative)
        if built is not None:
            return RangeAnswer(built, 0, len(built), whole_file=True)
        path = self._path(relative)

        def read() -> RangeAnswer:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                begin = max(size - length, 0) if start is None else min(start, size)
                handle.seek(begin)
                return RangeAnswer(handle.read(length), begin, size, whole_file=False)

        return await asyncio.to_thread(read)

    async def open_file(self, url: str) -> FileResponse:
        relative = self._relative(url)
        if self._built_file(relative) is not None or relative.endswith(METADATA_SUFFIX):
            data = await self.read_whole(url)
            return FileResponse(len(data), _single(data))
        path = self._path(relative)
        handle = await asyncio.to_thread(path.open, "rb")
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        return FileResponse(size, FileChunks(handle))


def _changed(on_change: Callable[[str, str], None], upstream: str, project: str) -> None:
    on_change(project, upstream)


def open_local_index(
    sources: Sequence[UpstreamSource], on_change: Callable[[str, str], None]
) -> LocalIndex | None:
    """The local index of the directory upstream with `upload = true`, if there is one;
    `on_change(project, upstream name)` is told of every change. Interrupted uploads'
    temporary files are removed first."""
    for source in sources:
        if isinstance(source, DirectorySource) and source.settings.upload:
            removed = remove_partials(source.settings.path)
            if removed:
                log.info("local index %s: removed %d unfinished uploads", source.name, removed)
            return LocalIndex(
                source.scanner,
                source.settings.max_upload_size,
                source.settings.upload_token_env,
                on_change=functools.partial(_changed, on_change, source.name),
            )
    return None
