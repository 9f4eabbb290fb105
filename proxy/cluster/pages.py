"""The page cache shared through Redis: raw upstream answers with their validators.

A page is stored as `<namespace>page:<cache key>` = one JSON line (url, content type, ETag,
Last-Modified, fetch time, missing, digest), a newline, then the body bytes. Pages larger
than `MAX_SHARED_PAGE_BYTES` stay local (the root project list can be tens of MB). Keys
expire after `SHARED_PAGE_EXPIRY_S`, so Redis never fills with pages nobody asks for.
While Redis is down every call is a miss: each replica keeps its own pages.
"""

from __future__ import annotations

import json
import logging

from proxy.cluster.coordination import CoordinationError, Coordinator
from proxy.pages.cache import CachedPage, cache_key

log = logging.getLogger("variant_proxy.cluster")

MAX_SHARED_PAGE_BYTES = 8 * 1024 * 1024
SHARED_PAGE_EXPIRY_S = 7 * 24 * 3600
FORMAT = 1


def encode_page(page: CachedPage) -> bytes:
    header = {
        "format": FORMAT,
        "url": page.url,
        "content_type": page.content_type,
        "etag": page.etag,
        "last_modified": page.last_modified,
        "fetched_at": page.fetched_at,
        "missing": page.missing,
        "digest": page.digest,
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + page.body


def decode_page(data: bytes) -> CachedPage | None:
    """The page, or None when the bytes are not a page of this format."""
    line, newline, body = data.partition(b"\n")
    try:
        header = json.loads(line)
        if not newline or header.get("format") != FORMAT:
            return None
        return CachedPage(
            body=body,
            content_type=str(header["content_type"]),
            url=str(header["url"]),
            etag=header["etag"],
            last_modified=header["last_modified"],
            fetched_at=float(header["fetched_at"]),
            missing=bool(header["missing"]),
            digest=str(header["digest"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


class RedisPages:
    """`SharedPages` over the cluster's Redis."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def get(self, key: str) -> CachedPage | None:
        redis = self._coordinator.redis
        try:
            data = await self._coordinator.call(
                lambda: redis.get(self._coordinator.key("page", key))
            )
        except CoordinationError:
            return None
        return None if data is None else decode_page(bytes(data))

    async def put(self, key: str, page: CachedPage) -> None:
        if len(page.body) > MAX_SHARED_PAGE_BYTES:
            return
        redis = self._coordinator.redis
        data = encode_page(page)
        try:
            await self._coordinator.call(
                lambda: redis.set(self._coordinator.key("page", key), data, ex=SHARED_PAGE_EXPIRY_S)
            )
        except CoordinationError as exc:
            log.warning("sharing a page failed: %s", exc)

    async def invalidate(self, project: str, upstream_names: list[str]) -> None:
        """Drop the project's shared pages and tell every replica to forget it."""
        redis = self._coordinator.redis
        keys = [
            self._coordinator.key("page", cache_key("project", name, project))
            for name in upstream_names
        ]
        await self._coordinator.call(lambda: redis.delete(*keys))
        await self._coordinator.publish_invalidation(project)
