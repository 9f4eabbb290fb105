"""A cached upstream answer and the pure rules about it: its key and its freshness."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


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
