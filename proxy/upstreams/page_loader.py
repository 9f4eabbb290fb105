"""One upstream's page through the page cache: fresh from the cache, else fetched or
revalidated, kept (also for the other replicas), or the stale copy when the upstream fails.

Used for project pages and root lists alike (`proxy.upstreams.projects`). Offline, a page is
what the mirror holds, never refreshed. Work that grows with a page's size (hashing,
storing, parsing) runs in a worker thread above `THREAD_PARSE_BYTES`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, replace
from typing import TypeVar

from proxy.pages.cache import CachedPage, PageCache, cache_key, is_fresh
from proxy.pages.shared import SharedPages
from proxy.simple.api import PageFormatError
from proxy.upstreams.source import (
    PageResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamSource,
    redact,
)

# Upstream 404s are remembered for at most this long, so a newly published project shows up.
NOT_FOUND_TTL = 60.0
# How long an offline proxy answers a page from memory before reading its cache again.
OFFLINE_RECHECK_S = 10.0
# Bodies above this size are parsed in a worker thread so the event loop keeps serving.
THREAD_PARSE_BYTES = 256 * 1024

T = TypeVar("T")
log = logging.getLogger("variant_proxy.upstreams")

# Checks a freshly fetched page (raises PageFormatError when it is malformed).
Validate = Callable[[UpstreamSource, CachedPage], Awaitable[object]]


@dataclass(frozen=True)
class LoadedPage:
    """One upstream's page as loaded: the cached answer, and whether and how long it holds."""

    upstream: UpstreamSource
    cached: CachedPage
    stale: bool
    fresh_until: float
    failure: str | None = None  # why a stale page is served


class UpstreamCounters:
    """What /metrics reports about upstream traffic; plain integers owned by this service."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.errors: dict[str, int] = {}
        self.page_hits = 0
        self.page_misses = 0
        # upstream -> (time, reason) of its last failure / time of its last answer
        self.last_failure: dict[str, tuple[float, str]] = {}
        self.last_answer: dict[str, float] = {}

    def request(self, upstream: str, kind: str) -> None:
        key = (upstream, kind)
        self.requests[key] = self.requests.get(key, 0) + 1

    def error(self, upstream: str, reason: str = "") -> None:
        self.errors[upstream] = self.errors.get(upstream, 0) + 1
        self.last_failure[upstream] = (time.time(), reason)

    def answered(self, upstream: str) -> None:
        self.last_answer[upstream] = time.time()


@dataclass(eq=False)
class PageLoader:
    """Loads upstream pages through the local page cache (and the replicas' shared one)."""

    cache: PageCache
    counters: UpstreamCounters
    _: KW_ONLY
    serve_stale: bool
    clock: Callable[[], float] = time.time
    shared: SharedPages | None = None
    offline: bool = False
    # Pages last asked about before this time are stale whatever their TTL (see
    # `Settings.pages_checked_since`).
    checked_since: float = -math.inf

    async def load(
        self,
        upstream: UpstreamSource,
        kind: str,
        name: str,
        url: str,
        ttl: float,
        validate: Validate,
    ) -> LoadedPage | None:
        """This upstream's page: cached if fresh, else revalidated; None when it has none."""
        key = cache_key(kind, upstream.name, name)
        cached = self.cache.get(key)
        now = self.clock()
        if self.offline:  # what the mirror holds, as it is: never stale, never fetched
            self.counters.page_hits += cached is not None
            # Read from the cache again now and then: an import beside this proxy adds pages.
            return _held(upstream, cached, now + OFFLINE_RECHECK_S)
        if not self._fresh(cached, ttl, now) and kind == "project":
            cached = await self._from_other_replicas(key, cached)
        if cached is not None and self._fresh(cached, ttl, now):
            self.counters.page_hits += 1
            return _held(upstream, cached, cached.fetched_at + ttl)
        self.counters.page_misses += 1
        self.counters.request(upstream.name, kind)
        return await self._fetch(_Fetch(upstream, kind, key, url, ttl, now), cached, validate)

    def _fresh(self, page: CachedPage | None, ttl: float, now: float) -> bool:
        if page is None or page.fetched_at < self.checked_since:
            return False
        return is_fresh(page, NOT_FOUND_TTL if page.missing else ttl, now)

    async def _fetch(
        self, fetch: _Fetch, cached: CachedPage | None, validate: Validate
    ) -> LoadedPage | None:
        """The page from upstream (revalidating the cached one), kept; the stale copy when
        the upstream fails and one may be served."""
        upstream, now = fetch.upstream, fetch.now
        usable = cached if cached is not None and not cached.missing else None
        try:
            fetched = await upstream.fetch_page(
                fetch.url, *(() if usable is None else (usable.etag, usable.last_modified))
            )
        except UpstreamNotFound:
            missing = CachedPage(b"", "", fetch.url, None, None, now, missing=True)
            await self._keep(fetch.key, fetch.kind, missing)
            return None
        except UpstreamError as exc:
            stale = self._stale_copy(fetch, usable, str(exc))
            if stale is None:
                raise
            return stale
        self.counters.answered(upstream.name)
        fresh = await self._fresh_page(fetch, fetched, cached, validate)
        if isinstance(fresh, str):  # malformed: the last good copy, if any, is served
            stale = self._stale_copy(fetch, usable, fresh)
            if stale is None:
                raise UpstreamError(fresh) from None
            return stale
        await self._keep(
            fetch.key, fetch.kind, fresh, revalidated=fetched.status == 304 and cached is not None
        )
        return LoadedPage(upstream, fresh, False, now + fetch.ttl)

    async def _fresh_page(
        self,
        fetch: _Fetch,
        fetched: PageResponse,
        cached: CachedPage | None,
        validate: Validate,
    ) -> CachedPage | str:
        """The page as fetched (or revalidated), or why it is malformed."""
        if fetched.status == 304 and cached is not None:
            return replace(cached, fetched_at=fetch.now)
        fresh = await maybe_in_thread(
            len(fetched.body),
            CachedPage.of,
            fetched.body,
            fetched.content_type,
            fetched.url,
            fetch.now,
            fetched.etag,
            fetched.last_modified,
        )
        try:
            await validate(fetch.upstream, fresh)
        except PageFormatError as exc:
            # A malformed page is an upstream failure: keep (and serve) the last good one.
            name = fetch.upstream.name
            return f"upstream {name} sent a malformed page for {redact(fetch.url)}: {exc}"
        return fresh

    def _stale_copy(
        self, fetch: _Fetch, usable: CachedPage | None, reason: str
    ) -> LoadedPage | None:
        """The last good copy, served stale for a short while as the upstream fails; None
        (the failure logged) when there is none or stale pages are not served."""
        upstream = fetch.upstream.name
        self.counters.error(upstream, reason)
        if usable is None or not self.serve_stale:
            log.warning("upstream failure: %s", reason, extra={"fields": {"upstream": upstream}})
            return None
        log.warning(
            "upstream failure: %s; serving the cached page from %.0f s ago (stale)",
            reason,
            self.clock() - usable.fetched_at,
            extra={"fields": {"upstream": upstream, "stale": True}},
        )
        until = fetch.now + min(fetch.ttl, NOT_FOUND_TTL)
        return LoadedPage(fetch.upstream, usable, True, until, failure=reason)

    async def _from_other_replicas(self, key: str, cached: CachedPage | None) -> CachedPage | None:
        """The shared copy of a page when it is newer than ours (kept locally too)."""
        if self.shared is None:
            return cached
        shared = await self.shared.get(key)
        if shared is None or (cached is not None and shared.fetched_at <= cached.fetched_at):
            return cached
        await maybe_in_thread(len(shared.body), self.cache.put, key, shared)
        return shared

    async def _keep(
        self, key: str, kind: str, page: CachedPage, *, revalidated: bool = False
    ) -> None:
        """Store a fetched page locally, and for the other replicas (project pages); a
        revalidated one (304) only has its new time recorded, not its body written again."""
        if revalidated:
            self.cache.refresh(key, page)
        else:
            await maybe_in_thread(len(page.body), self.cache.put, key, page)
        if self.shared is not None and kind == "project":
            await self.shared.put(key, page)


@dataclass(frozen=True)
class _Fetch:
    """One page to fetch from an upstream, and where it is kept."""

    upstream: UpstreamSource
    kind: str
    key: str
    url: str
    ttl: float
    now: float


def _held(upstream: UpstreamSource, cached: CachedPage | None, until: float) -> LoadedPage | None:
    """The cached page as the answer (None when the upstream has no such page)."""
    if cached is None or cached.missing:
        return None
    return LoadedPage(upstream, cached, False, until)


async def maybe_in_thread(size: int, function: Callable[..., T], *args: object) -> T:
    """`function(*args)`, in a worker thread when `size` bytes make it slow."""
    if size > THREAD_PARSE_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)
