"""Project pages as the proxy knows them: loaded from every upstream that may serve the
project (through the page cache, `proxy.upstreams.page_loader`), merged in priority order
(`proxy.upstreams.merged`); and the root project list, built from every upstream's list.

Holds the in-memory memo that makes a warm request cost a dict lookup, and single-flights
concurrent fetches of one page. Parsing of large bodies runs in a worker thread; a JSON
client of a big cold page gets it made straight in the worker process first
(`proxy.upstreams.straight_pages`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import cachetools

from proxy.pages.cache import CachedPage, PageCache, cache_key
from proxy.pages.shared import SharedPages
from proxy.simple.api import (
    PageFormatError,
    parse_project_page,
)
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.root_index import BuiltIndex, build_index
from proxy.upstreams.memo import remember, weighted_lru
from proxy.upstreams.merged import (
    PARSED_WEIGHT_PER_BYTE,
    Located,
    MergedProject,
    merge_pages,
    version_of,
)
from proxy.upstreams.offline import NotInMirror
from proxy.upstreams.page_loader import (
    LoadedPage,
    PageLoader,
    UpstreamCounters,
    Validate,
    maybe_in_thread,
)
from proxy.upstreams.single_flight import SingleFlight
from proxy.upstreams.source import UpstreamError, UpstreamSource
from proxy.upstreams.straight_pages import (
    StraightBuilder,
    StraightPage,
    StraightPages,
    merge_in_steps,
)

__all__ = ["Located", "MergedIndex", "MergedProject", "ProjectNotFound", "ProjectPages"]

# Memory bounds of the in-memory memos, in "weight" (about the bytes the parsed objects take,
# PARSED_WEIGHT_PER_BYTE). Evicted entries are rebuilt from the page cache.
MEMO_WEIGHT = 64 * 1024 * 1024
PARSED_WEIGHT = 24 * 1024 * 1024


class ProjectNotFound(Exception):
    """No upstream knows the project."""


@dataclass(frozen=True)
class MergedIndex:
    """The root project list, rendered in both formats."""

    html: bytes
    json: bytes
    project_count: int
    version: str
    stale: bool
    fresh_until: float
    warnings: tuple[str, ...] = ()


class ProjectPages:
    def __init__(
        self,
        upstreams: Sequence[UpstreamSource],
        page_cache: PageCache,
        pins: Mapping[str, str],
        *,
        serve_stale: bool = True,
        index_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        counters: UpstreamCounters | None = None,
        index_builder: IndexBuilder | None = None,
        shared: SharedPages | None = None,
        offline: bool = False,
        straight_builder: StraightBuilder | None = None,
        checked_since: float = -math.inf,
    ) -> None:
        self._offline = offline
        self._upstreams = tuple(upstreams)
        self._by_name = {u.name: u for u in upstreams}
        self._cache = page_cache
        self.counters = counters if counters is not None else UpstreamCounters()
        self._loader = PageLoader(
            page_cache,
            self.counters,
            serve_stale=serve_stale,
            clock=clock,
            shared=shared,
            offline=offline,
            checked_since=checked_since,
        )
        self._pins = dict(pins)
        self._serve_stale = serve_stale
        self._index_ttl = index_ttl
        self._clock = clock
        self._memo: cachetools.LRUCache[str, MergedProject] = weighted_lru(MEMO_WEIGHT)
        self._index_memo: MergedIndex | None = None
        self._parsed: cachetools.LRUCache[tuple[str, str], _Parsed] = weighted_lru(PARSED_WEIGHT)
        self._flight: SingleFlight[MergedProject] = SingleFlight()
        self._index_flight: SingleFlight[MergedIndex] = SingleFlight()
        self._index_builder = index_builder or _build_index_in_thread
        # Big cold JSON pages made in the worker process (none: always the general path).
        self._straight = (
            None if offline or straight_builder is None else StraightPages(straight_builder)
        )

    def upstreams_for(self, project: NormalizedName) -> tuple[UpstreamSource, ...]:
        pinned = self._pins.get(project)
        return (self._by_name[pinned],) if pinned else self._upstreams

    # -- project pages ---------------------------------------------------------------

    async def get(self, project: NormalizedName) -> MergedProject:
        """The merged page of a normalised project name (raises ProjectNotFound/UpstreamError)."""
        memo = self._memo.get(project)
        if memo is not None and self._clock() < memo.fresh_until:
            self.counters.page_hits += 1
            return memo
        return await self._flight.run(f"project:{project}", lambda: self._refresh(project))

    async def get_straight(self, project: NormalizedName, root: str) -> StraightPage | None:
        """For a JSON client: when the merged page must be made, the served JSON straight from
        the upstream page as soon as it is made (`proxy.upstreams.straight_pages`); None when
        the page is to be made the general way (`get`, then done or its error raised here)."""
        memo = self._memo.get(project)
        if self._straight is None or (memo is not None and self._clock() < memo.fresh_until):
            return None
        key = f"project:{project}"
        return await self._straight.wait(
            project, root, lambda: self._flight.start(key, lambda: self._refresh(project))
        )

    def peek_index(self) -> MergedIndex | None:
        """The memoised root list, fresh or not, without any I/O."""
        return self._index_memo

    def peek(self, project: NormalizedName) -> MergedProject | None:
        """The memoised page, fresh or not, without any I/O."""
        return self._memo.get(project)

    async def _refresh(self, project: NormalizedName) -> MergedProject:
        try:
            return await self._refreshed(project)
        finally:
            if self._straight is not None:
                self._straight.finish(project)  # a request not answered takes the general path

    async def _refreshed(self, project: NormalizedName) -> MergedProject:
        upstreams = self.upstreams_for(project)
        validate = self._validator(project, single=len(upstreams) == 1)
        results = await asyncio.gather(
            *(
                self._loader.load(
                    u,
                    "project",
                    project,
                    u.project_url(project),
                    u.ttl,
                    validate,
                )
                for u in upstreams
            ),
            return_exceptions=True,
        )
        loaded, errors = _split_results(results)
        if not loaded:
            if errors:
                raise errors[0]
            self._memo.pop(project, None)
            if self._offline:
                raise NotInMirror(f"project {project}")
            raise ProjectNotFound(project)
        warnings = _warnings(loaded, errors)
        previous = self._memo.get(project)
        if previous is not None and previous.version == version_of(loaded):
            # Revalidated (304) or unchanged: the merged page is still right, only its times
            # moved. Nothing is parsed or merged again.
            merged = replace(
                previous,
                stale=any(item.stale for item in loaded),
                fresh_until=min(item.fresh_until for item in loaded),
                warnings=warnings,
            )
        else:
            merged = await self._merged(project, loaded, warnings)
        remember(self._memo, project, merged)
        return merged

    async def _merged(
        self, project: NormalizedName, loaded: Sequence[LoadedPage], warnings: tuple[str, ...]
    ) -> MergedProject:
        """The merged page of these loaded pages (a waiting JSON client answered first)."""
        split = None
        if self._straight is not None:
            split = await self._straight.pieces(project, loaded, warnings)
        if split is not None:
            item = loaded[0]
            page, merged = await merge_in_steps(project, item, split, warnings)
            weight = len(item.cached.body) * PARSED_WEIGHT_PER_BYTE
            remember(self._parsed, (item.upstream.name, item.cached.digest), _Parsed(page, weight))
            return merged
        pages = [(item, await self._parse_cached(item.upstream, item.cached)) for item in loaded]
        size = sum(len(item.cached.body) for item, _ in pages)
        return await maybe_in_thread(size, merge_pages, project, pages, warnings)

    def _validator(self, project: NormalizedName, *, single: bool) -> Validate:
        """How a fetched page of `project` is checked before it is kept: parsed, or for a
        waiting JSON client of a one-upstream project, made straight (in the worker)."""

        async def validate(upstream: UpstreamSource, cached: CachedPage) -> None:
            if single and self._straight is not None:
                # Fetched now: fresh for the upstream's TTL from the time it was fetched.
                item = LoadedPage(upstream, cached, False, cached.fetched_at + upstream.ttl)
                if await self._straight.make(project, item):
                    return  # made straight from it (and answered), so it is well-formed
            await self._parse_cached(upstream, cached)

        return validate

    async def _parse_cached(self, upstream: UpstreamSource, cached: CachedPage) -> ProjectPage:
        memo_key = (upstream.name, cached.digest)
        parsed = self._parsed.get(memo_key)
        if parsed is None:
            page = await maybe_in_thread(
                len(cached.body), parse_project_page, cached.body, cached.content_type, cached.url
            )
            parsed = _Parsed(page, len(cached.body) * PARSED_WEIGHT_PER_BYTE)
            remember(self._parsed, memo_key, parsed)
        return parsed.page

    def invalidate(self, project: NormalizedName, only: str | None = None) -> None:
        """Forget a project so the next request goes upstream; with `only`, just that
        upstream's copy is dropped (and its project list, which may now name the project)."""
        self._memo.pop(project, None)
        for upstream in self._upstreams:
            if only is None or upstream.name == only:
                self._cache.delete(cache_key("project", upstream.name, project))
        if only is not None:
            self._cache.delete(cache_key("index", only, ""))
            self._index_memo = None

    # -- the root project list ---------------------------------------------------------

    async def index(self) -> MergedIndex:
        memo = self._index_memo
        if memo is not None and self._clock() < memo.fresh_until:
            return memo
        return await self._index_flight.run("index", self._refresh_index)

    async def _refresh_index(self) -> MergedIndex:
        results = await asyncio.gather(
            *(
                self._loader.load(u, "index", "", u.index_url, self._index_ttl, _accept_as_is)
                for u in self._upstreams
            ),
            return_exceptions=True,
        )
        loaded, errors = _split_results(results)
        if not loaded:
            if errors:
                raise errors[0]
            if self._offline:
                raise NotInMirror("the project list")
            raise ProjectNotFound("/")
        version = version_of(loaded)
        previous = self._index_memo
        fresh_until = min(item.fresh_until for item in loaded)
        built = await self._built_index(loaded, version, previous)
        if built is None:  # a malformed list: the previous one is served, stale
            assert previous is not None
            merged = replace(previous, stale=True, fresh_until=fresh_until)
        else:
            merged = MergedIndex(
                html=built.html,
                json=built.json,
                project_count=built.project_count,
                version=version,
                stale=any(item.stale for item in loaded),
                fresh_until=fresh_until,
                warnings=_warnings(loaded, errors),
            )
        self._index_memo = merged
        return merged

    async def _built_index(
        self, loaded: Sequence[LoadedPage], version: str, previous: MergedIndex | None
    ) -> BuiltIndex | None:
        """The root list of these pages (reused when unchanged); None when one is malformed
        and the previous list may be served instead (else UpstreamError)."""
        if previous is not None and previous.version == version:
            return BuiltIndex(previous.project_count, previous.html, previous.json)
        try:
            return await self._index_builder(
                [(item.cached.body, item.cached.content_type) for item in loaded]
            )
        except PageFormatError as exc:
            if previous is None or not self._serve_stale:
                raise UpstreamError(f"an upstream sent a malformed project list: {exc}") from None
            return None


@dataclass(frozen=True)
class _Parsed:
    page: ProjectPage
    weight: int


def _split_results(
    results: Sequence[LoadedPage | BaseException | None],
) -> tuple[list[LoadedPage], list[UpstreamError]]:
    """The pages that loaded and the upstreams that failed; anything else is raised."""
    loaded: list[LoadedPage] = []
    errors: list[UpstreamError] = []
    for result in results:
        if isinstance(result, UpstreamError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
        elif result is not None:
            loaded.append(result)
    return loaded, errors


def _warnings(loaded: Sequence[LoadedPage], errors: Sequence[UpstreamError]) -> tuple[str, ...]:
    """Why the answer may be incomplete or stale: failed upstreams, then stale copies."""
    return tuple(str(e) for e in errors) + tuple(i.failure for i in loaded if i.failure)


# Builds the root list from (body, content type) pairs; the app runs it in a worker process.
IndexBuilder = Callable[[list[tuple[bytes, str]]], Awaitable[BuiltIndex]]


async def _build_index_in_thread(sources: list[tuple[bytes, str]]) -> BuiltIndex:
    return await asyncio.to_thread(build_index, sources)


async def _accept_as_is(upstream: UpstreamSource, page: CachedPage) -> None:
    """Root lists are checked when they are built (in a worker), not when fetched."""
