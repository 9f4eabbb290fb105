"""Fetching what the resolver chose through the proxy, so every page, variants.json, file and
PEP 658 metadata file lands in the cache (shell). Files are fetched in parallel, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin

import aiohttp

from proxy.mirror.progress import MirrorProgress
from proxy.mirror.resolve import Resolution
from proxy.simple.api import normalize_name

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
CHUNK = 256 * 1024
DEFAULT_JOBS = 8


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
    items: dict[str, FetchItem] = {}
    pages: dict[str, dict[str, Mapping[str, Any]]] = {}
    for resolution in resolutions:
        index_url = base_url.rstrip("/") + resolution.target.fingerprint.index_path
        for pinned in resolution.files:
            page_url = f"{index_url}{normalize_name(pinned.project)}/"
            if page_url not in pages:
                pages[page_url] = _listed_files(await _get_json(session, page_url), page_url)
            url = urldefrag(pinned.url).url
            entry = pages[page_url].get(url, {})
            name = url.rsplit("/", 1)[-1]
            size = entry.get("size")
            items.setdefault(url, FetchItem(url, size if isinstance(size, int) else None, name))
            if entry.get("core-metadata") or entry.get("dist-info-metadata"):
                items.setdefault(url + ".metadata", FetchItem(url + ".metadata", None, name))
    return list(items.values())


async def fetch_all(
    session: aiohttp.ClientSession,
    items: list[FetchItem],
    progress: MirrorProgress,
    jobs: int = DEFAULT_JOBS,
) -> list[str]:
    """Fetch every item (at most `jobs` at once); the errors, one line each."""
    limit = asyncio.Semaphore(jobs)
    errors: list[str] = []

    async def one(item: FetchItem) -> None:
        async with limit:
            try:
                async with session.get(item.url) as response:
                    if response.status != 200:
                        reason = (await response.text()).strip()[:200]
                        errors.append(f"{item.what}: {response.status} {reason}")
                        return
                    async for chunk in response.content.iter_chunked(CHUNK):
                        progress.advance(len(chunk))
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{item.what}: {type(exc).__name__} {exc}"[:300])
            finally:
                progress.file_done()

    progress.start(len(items), sum(item.size or 0 for item in items))
    await asyncio.gather(*(one(item) for item in items))
    return errors
