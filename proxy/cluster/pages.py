"""The page cache shared through Redis: raw upstream answers with their validators.

A page is stored as `<namespace>page:<cache key>` = the bytes of `proxy.pages.format` (one
JSON line with url, content type, validators, fetch time; a newline; the body bytes), as
on disk. Pages larger
than `MAX_SHARED_PAGE_BYTES` stay local (the root project list can be tens of MB). Keys
expire after `SHARED_PAGE_EXPIRY_S`, so Redis never fills with pages nobody asks for.
While Redis is down every call is a miss: each replica keeps its own pages.
"""

from __future__ import annotations

import logging

from proxy.cluster.coordination import CoordinationError, Coordinator
from proxy.pages.cache import CachedPage, cache_key
from proxy.pages.format import decode_page, encode_page

log = logging.getLogger("variant_proxy.cluster")

MAX_SHARED_PAGE_BYTES = 8 * 1024 * 1024
SHARED_PAGE_EXPIRY_S = 7 * 24 * 3600


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
