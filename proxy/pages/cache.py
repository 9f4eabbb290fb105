"""Persistent cache of raw upstream pages (project pages, root lists, variants.json files).

Entries keep the upstream's bytes and validators so a restart can revalidate instead of
refetching; freshness is decided by the pure `is_fresh`. Backed by diskcache (SQLite + files).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import diskcache

PAGE_CACHE_VERSION = "v1"


@dataclass(frozen=True)
class CachedPage:
    """An upstream answer as stored: a body, or `missing` for a remembered 404.

    `digest` (of the body) names the page's version; it is computed once, when the page is
    made (`CachedPage.of`), since hashing a 40 MB project list is not free.
    """

    body: bytes
    content_type: str
    url: str
    etag: str | None
    last_modified: str | None
    fetched_at: float
    missing: bool = False
    digest: str = "missing"

    @classmethod
    def of(
        cls,
        body: bytes,
        content_type: str,
        url: str,
        fetched_at: float,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> CachedPage:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, content_type, url, etag, last_modified, fetched_at, False, digest)


def is_fresh(page: CachedPage, ttl: float, now: float) -> bool:
    return now - page.fetched_at < ttl


def cache_key(kind: str, upstream: str, name: str) -> str:
    return f"{kind}\x00{upstream}\x00{name}"


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
        value = self._disk.get(key)
        return value if isinstance(value, CachedPage) else None

    def put(self, key: str, page: CachedPage) -> None:
        self._disk.set(key, page)

    def all_keys(self) -> list[str]:
        """Every key held (for export)."""
        return [key for key in self._disk.iterkeys() if isinstance(key, str)]

    def put_many(self, entries: Iterable[tuple[str, CachedPage]]) -> None:
        """Store every entry, or none of them (one transaction: an import killed half-way
        leaves no page of its own behind)."""
        with self._disk.transact():
            for key, page in entries:
                self._disk.set(key, page)

    def delete(self, key: str) -> bool:
        return bool(self._disk.delete(key))

    def close(self) -> None:
        self._disk.close()
