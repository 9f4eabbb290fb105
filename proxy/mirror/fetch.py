"""Fetching what the resolver chose through the proxy, so every page, variants.json, file and
PEP 658 metadata file lands in the cache (shell). Files are fetched in parallel, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp

from proxy.mirror.progress import MirrorProgress
from proxy.mirror.resolve import Resolution
from proxy.simple.api import normalize_name
from proxy.store.errors import DownloadFailed

if TYPE_CHECKING:
    from proxy.server.state import ProxyState

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
CHUNK = 256 * 1024
DEFAULT_JOBS = 8
PAGE_JOBS = 8  # project pages the plan asks the proxy for at once
# Files in flight per download slot, counting those received and still being kept: keeping a
# file costs three waits on the disk (fsync, index commit, rename and folder fsync), and a
# slot that waited for them fetched at half the speed.
KEPT_PER_JOB = 4


@dataclass(frozen=True)
class FetchItem:
    url: str
    size: int | None
    what: str  # the file name, for messages


def _listed_files(page: Mapping[str, Any], page_url: str) -> dict[str, Mapping[str, Any]]:
    return {
        urldefrag(urljoin(page_url, str(entry["url"]))).url: entry
        for entry in page.get("files", [])
        if isinstance(entry, Mapping) and "url" in entry
    }


async def _get_json(session: aiohttp.ClientSession, url: str) -> Mapping[str, Any]:
    async with session.get(url, headers={"Accept": JSON_ACCEPT}) as response:
        if response.status != 200:
            reason = (await response.text()).strip()[:200]
            raise FetchError(f"{url}: {response.status} {reason}")
        data = await response.json(content_type=None)
        if not isinstance(data, Mapping):
            raise FetchError(f"{url}: not a JSON project page")
        return data


class FetchError(Exception):
    """A page or file could not be fetched through the proxy."""


async def plan_fetches(
    session: aiohttp.ClientSession, base_url: str, resolutions: Iterable[Resolution]
) -> list[FetchItem]:
    """Every file (and metadata file) the resolutions chose, once each, with sizes from the
    proxy's page for that target (fetching the page caches it, and its variants.json)."""
    chosen = [
        (_page_url(base_url, resolution, pinned.project), urldefrag(pinned.url).url)
        for resolution in resolutions
        for pinned in resolution.files
    ]
    pages = await _get_pages(session, list(dict.fromkeys(page for page, _ in chosen)))
    items: dict[str, FetchItem] = {}
    for page_url, url in chosen:
        entry = pages[page_url].get(url, {})
        name = url.rsplit("/", 1)[-1]
        size = entry.get("size")
        items.setdefault(url, FetchItem(url, size if isinstance(size, int) else None, name))
        if entry.get("core-metadata") or entry.get("dist-info-metadata"):
            items.setdefault(url + ".metadata", FetchItem(url + ".metadata", None, name))
    return list(items.values())


def _page_url(base_url: str, resolution: Resolution, project: str) -> str:
    index_url = base_url.rstrip("/") + resolution.target.fingerprint.index_path
    return f"{index_url}{normalize_name(project)}/"


async def _get_pages(
    session: aiohttp.ClientSession, page_urls: list[str]
) -> dict[str, dict[str, Mapping[str, Any]]]:
    """The files each page lists, `PAGE_JOBS` pages at once (one at a time, the plan of a
    200-project mirror took 0.6-1.2 s); the first failure in page order is raised."""
    limit = asyncio.Semaphore(PAGE_JOBS)

    async def one(page_url: str) -> dict[str, Mapping[str, Any]]:
        async with limit:
            return _listed_files(await _get_json(session, page_url), page_url)

    listed = await asyncio.gather(*(one(url) for url in page_urls), return_exceptions=True)
    pages: dict[str, dict[str, Mapping[str, Any]]] = {}
    for page_url, result in zip(page_urls, listed, strict=True):
        if isinstance(result, BaseException):
            raise result
        pages[page_url] = result
    return pages


# Fetches one item into the cache; returns how many bytes it holds (raises FetchError).
# It may call its second argument once the upstream has sent the last byte: the next
# download starts while this file is checked and made durable (fsyncs, index commit, rename).
FetchOne = Callable[[FetchItem, Callable[[], None]], Awaitable[int]]


def http_fetcher(session: aiohttp.ClientSession, progress: MirrorProgress) -> FetchOne:
    """GET through a proxy (its cache keeps the file), counting bytes as they arrive."""

    async def fetch(item: FetchItem, _: Callable[[], None]) -> int:
        async with session.get(item.url) as response:
            if response.status != 200:
                reason = (await response.text()).strip()[:200]
                raise FetchError(f"{item.what}: {response.status} {reason}")
            async for chunk in response.content.iter_chunked(CHUNK):
                progress.advance(len(chunk))
        return 0  # counted as they arrived

    return fetch


def in_process_fetcher(state: ProxyState, base_url: str) -> FetchOne:
    """Into the store of an in-process proxy, as a GET of the file would, without sending
    the bytes over loopback to ourselves (half the copying)."""
    from aiohttp import web

    from proxy.pipeline import FileNotListed
    from proxy.server.file_routes import cache_listed_file, project_from_path
    from proxy.upstreams.source import UpstreamError

    async def fetch(item: FetchItem, received: Callable[[], None]) -> int:
        parts = urlsplit(item.url).path.split("/")
        if not item.url.startswith(base_url) or len(parts) != 5 or parts[1] != "files":
            raise FetchError(f"{item.what}: not a file URL of this proxy")
        try:
            return await cache_listed_file(
                state,
                project_from_path(parts[2]),
                parts[3],
                metadata=parts[4].endswith(".metadata"),
                received=received,
            )
        except (web.HTTPException, FileNotListed, UpstreamError, DownloadFailed) as exc:
            raise FetchError(f"{item.what}: {exc}"[:300]) from None

    return fetch


class _Slot:
    """One of the `jobs` download slots, given back once: early, when the fetch says its
    last byte has arrived, or when the fetch is over."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        await self._slots.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


async def fetch_all(
    items: list[FetchItem], progress: MirrorProgress, fetch: FetchOne, jobs: int = DEFAULT_JOBS
) -> list[str]:
    """Fetch every item (at most `jobs` downloads at once, and up to `KEPT_PER_JOB` times
    as many files being made durable behind them); the errors, one line each."""
    downloads = asyncio.Semaphore(jobs)
    in_flight = asyncio.Semaphore(jobs * KEPT_PER_JOB)
    errors: list[str] = []

    async def one(item: FetchItem) -> None:
        async with in_flight:
            slot = _Slot(downloads)
            await slot.take()
            try:
                progress.advance(await fetch(item, slot.give_back))
            except FetchError as exc:
                errors.append(str(exc))
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{item.what}: {type(exc).__name__} {exc}"[:300])
            finally:
                slot.give_back()
                progress.file_done()

    sizes = [item.size for item in items]
    known = None if None in sizes else sum(size for size in sizes if size is not None)
    progress.start(len(items), known)
    await asyncio.gather(*(one(item) for item in items))
    return errors
