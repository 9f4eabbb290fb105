"""Persistent cache of raw upstream pages (project pages, root lists, variants.json files).

Entries keep the upstream's bytes and validators so a restart can revalidate instead of
refetching; freshness is decided by the pure `is_fresh`. Backed by diskcache (SQLite + files)
in `<cache dir>/pages-v2/`: string keys (`cache_key`), values the bytes of
`proxy.pages.format` (a JSON header line, then the body), never pickles. Anything else
found under a key is a miss.
"""

from __future__ import annotations

from collections.abc import Iterable
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
        return decode_page(self._disk.get(key))

    def put(self, key: str, page: CachedPage) -> None:
        self._disk.set(key, encode_page(page))

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
        return bool(self._disk.delete(key))

    def close(self) -> None:
        self._disk.close()
