"""Persistent cache of raw upstream pages (project pages, root lists, variants.json files).

Entries keep the upstream's bytes and validators so a restart can revalidate instead of
refetching; freshness is decided by the pure `is_fresh`. Backed by diskcache (SQLite + files)
in `<cache dir>/pages-v2/`: string keys (`cache_key`), values the bytes of
`proxy.pages.format` (a JSON header line, then the body), never pickles. Anything else
found under a key is a miss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import diskcache

from proxy.pages.format import PAGE_FORMAT, decode_page, encode_page
from proxy.pages.model import CachedPage, cache_key, is_fresh

__all__ = [
    "PAGE_CACHE_DIR",
    "CachedPage",
    "PageCache",
    "cache_key",
    "is_fresh",
    "split_cache_key",
]

# The folder under the cache directory, named by the format: a new format starts empty.
PAGE_CACHE_DIR = f"pages-v{PAGE_FORMAT}"


def split_cache_key(key: str) -> tuple[str, str, str] | None:
    """(kind, upstream, name) of a `cache_key`, or None for any other key."""
    parts = key.split("\x00", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


class PageCache:
    def __init__(self, directory: Path, size_limit: int = 4 * 1024**3) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._disk = diskcache.Cache(
            str(directory), size_limit=size_limit, eviction_policy="least-recently-stored"
        )

    def get(self, key: str) -> CachedPage | None:
        page = decode_page(self._disk.get(key))
        if page is None or page.missing:
            return page
        refreshed = _refreshed_at(self._disk.get(_refresh_key(key)), page.digest)
        if refreshed is not None and refreshed > page.fetched_at:
            return replace(page, fetched_at=refreshed)
        return page

    def put(self, key: str, page: CachedPage) -> None:
        self._disk.set(key, encode_page(page))

    def refresh(self, key: str, page: CachedPage) -> None:
        """Record that the page held under `key` was revalidated (a 304) at
        `page.fetched_at`: a few bytes, not the body again (6 MB for a big page).
        Tied to the body's digest, so it never freshens another body stored later."""
        self._disk.set(_refresh_key(key), f"{page.digest} {page.fetched_at!r}")

    def all_keys(self) -> list[str]:
        """Every key held (for export)."""
        return [key for key in self._disk.iterkeys() if isinstance(key, str)]

    def put_many(self, entries: Iterable[tuple[str, CachedPage]]) -> None:
        """Store every entry, or none of them (one transaction: an import killed half-way
        leaves no page of its own behind)."""
        with self._disk.transact():
            for key, page in entries:
                self._disk.set(key, encode_page(page))

    def delete(self, key: str) -> bool:
        self._disk.delete(_refresh_key(key))
        return bool(self._disk.delete(key))

    def close(self) -> None:
        self._disk.close()


def _refresh_key(key: str) -> bytes:
    """Where a page's revalidation time is kept: a bytes key, so `all_keys` (string keys,
    the pages themselves) never lists it."""
    return b"refreshed\x00" + key.encode()


def _refreshed_at(record: object, digest: str) -> float | None:
    """The time of a refresh record made for the body of `digest`, else None."""
    if not isinstance(record, str):
        return None
    recorded_digest, _, at = record.partition(" ")
    try:
        return float(at) if recorded_digest == digest else None
    except ValueError:
        return None
