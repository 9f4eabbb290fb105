"""Backend indexes (shell): each `[[backends]]` entry's pages through the page cache, the
build pins read from its members' PEP 658 metadata, and the choice of one backend per
public version that the pure `proxy.variants.backend_variants` makes from them.

Every backend is an ordinary upstream source with a merged-page service of its own, so
its pages get the page cache, revalidation, single flight and stale answers of any
upstream. Core metadata files are fetched only when their page lists them, checked
against the listed hash and kept in the page cache by that hash (they never change).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser

import aiohttp
import cachetools

from proxy.backend_config import BackendSettings
from proxy.pages.cache import CachedPage, PageCache, cache_key
from proxy.simple.filenames import FilenameError
from proxy.simple.integrity import ContentCheck, ContentMismatch, ExpectedFile
from proxy.simple.model import DistFile
from proxy.simple.names import NormalizedName
from proxy.upstreams.factory import make_upstream
from proxy.upstreams.offline import OfflineSource
from proxy.upstreams.page_loader import NOT_FOUND_TTL, UpstreamCounters
from proxy.upstreams.projects import Located, MergedProject, ProjectNotFound, ProjectPages
from proxy.upstreams.source import UpstreamError, UpstreamNotFound, UpstreamSource
from proxy.urls.links import file_id, metadata_url
from proxy.variants.backend_variants import (
    Backend,
    BackendChoice,
    BackendRanking,
    Catalogue,
    Release,
    choose_backend,
    file_release,
    make_catalogue,
    rank_backends,
    releases_of,
)
from proxy.variants.properties import VariantProperty

log = logging.getLogger("variant_proxy")

FETCH_CONCURRENCY = 16
MAX_METADATA_BYTES = 4 * 1024 * 1024
SELECTION_MEMO_ENTRIES = 1024


@dataclass(frozen=True)
class Selection:
    """One project's backend choice for one client: every release's choice, the chosen
    files, and the version of the backend data it was made from (for page caches)."""

    project: NormalizedName
    ranking: BackendRanking
    choices: Mapping[Release, BackendChoice]
    chosen: Mapping[Release, tuple[Backend, tuple[DistFile, ...]]]
    version: str
    stale: bool


@dataclass(frozen=True)
class _Family:
    key: tuple[tuple[str, str, str], ...]
    catalogues: Mapping[str, Catalogue]


class BackendIndexes:
    """The configured backends, their pages, and the choice of a backend per release."""

    def __init__(
        self,
        settings: Sequence[BackendSettings],
        make_pages: Callable[[UpstreamSource], ProjectPages],
        session: aiohttp.ClientSession,
        page_cache: PageCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backends = tuple(
            Backend(
                b.name,
                tuple(VariantProperty.parse(p) for p in b.properties),
                frozenset(b.projects),
            )
            for b in settings
        )
        self._pages = {b.name: make_pages(make_upstream(b.index, session)) for b in settings}
        self._cache = page_cache
        self._family: _Family | None = None
        self._missing: dict[tuple[str, str], float] = {}
        self._clock = clock
        self._selections: cachetools.LRUCache[tuple[object, ...], Selection] = cachetools.LRUCache(
            SELECTION_MEMO_ENTRIES
        )
        self._limit = asyncio.Semaphore(FETCH_CONCURRENCY)

    @classmethod
    def configure(
        cls,
        settings: Sequence[BackendSettings],
        session: aiohttp.ClientSession,
        page_cache: PageCache,
        counters: UpstreamCounters,
        *,
        serve_stale: bool,
        index_ttl: float,
        offline: bool = False,
        checked_since: float = -math.inf,
    ) -> BackendIndexes:
        def make_pages(upstream: UpstreamSource) -> ProjectPages:
            return ProjectPages(
                # Offline: the source only names the cache entries; it never connects.
                [OfflineSource(upstream) if offline else upstream],
                page_cache,
                {},
                serve_stale=serve_stale,
                index_ttl=index_ttl,
                counters=counters,
                offline=offline,
                checked_since=checked_since,
            )

        return cls(settings, make_pages, session, page_cache)

    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)

    def serves(self, project: str) -> bool:
        """Whether some backend stands for variants of `project`."""
        return any(project in b.projects for b in self.backends)

    def pages(self, name: str) -> ProjectPages | None:
        """One backend's own page service (for `/backend/{name}/simple/`)."""
        return self._pages.get(name)

    async def page(self, name: str, project: NormalizedName) -> MergedProject | None:
        """One backend's page of `project`, None when it has none (remembered in memory as
        long as the page cache remembers the 404, so a warm page costs no disk read)."""
        key = (name, project)
        if self._missing.get(key, 0.0) > self._clock():
            return None
        try:
            return await self._pages[name].get(project)
        except ProjectNotFound:
            self._missing[key] = self._clock() + NOT_FOUND_TTL
            return None

    async def locate(self, project: NormalizedName, ident: str) -> Located | None:
        """A file some backend page of `project` lists (the proxy fetches nothing else)."""
        for name in self._pages:
            try:
                merged = await self.page(name, project)
            except UpstreamError:
                continue
            if merged is not None and ident in merged.files:
                return merged.files[ident]
        return None

    def invalidate(self, project: NormalizedName) -> None:
        self._missing = {key: until for key, until in self._missing.items() if key[1] != project}
        for pages in self._pages.values():
            pages.invalidate(project)
        self._family = None

    # -- the choice ----------------------------------------------------------------------

    async def select(
        self, project: NormalizedName, supported: Sequence[VariantProperty]
    ) -> Selection:
        """Which backend each public version of `project` is shown from, for this client
        (memoised per project, ranking and backend data)."""
        serving = [b for b in self.backends if project in b.projects]
        ranking = rank_backends(serving, supported)
        catalogues, family_version, stale = await self._catalogues()
        pages = dict(
            zip(
                (b.name for b in serving),
                await asyncio.gather(*(self._page_or_none(b.name, project) for b in serving)),
                strict=True,
            )
        )
        version = _selection_version(family_version, pages)
        stale = stale or any(m is not None and m.stale for m in pages.values())
        memo_key = (project, ranking.ordered, version)
        memo = self._selections.get(memo_key)
        if memo is not None:
            return Selection(project, ranking, memo.choices, memo.chosen, version, stale)
        choices, chosen = _choose(project, serving, ranking, catalogues, pages)
        selection = Selection(project, ranking, choices, chosen, version, stale)
        self._selections[memo_key] = selection
        return selection

    async def _page_or_none(self, name: str, project: NormalizedName) -> MergedProject | None:
        try:
            return await self.page(name, project)
        except UpstreamError as exc:
            log.warning("backend %s: page of %s unavailable: %s", name, project, exc)
            return None

    async def _catalogues(self) -> tuple[Mapping[str, Catalogue], str, bool]:
        """Every backend's releases of its projects and the build pins between them."""
        wanted = [(b, project) for b in self.backends for project in sorted(b.projects)]
        merged = await asyncio.gather(*(self._page_or_none(b.name, p) for b, p in wanted))
        key = tuple(
            (b.name, project, m.version if m is not None else "-")
            for (b, project), m in zip(wanted, merged, strict=True)
        )
        stale = any(m is not None and m.stale for m in merged)
        version = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        family = self._family
        if family is not None and family.key == key:
            return family.catalogues, version, stale
        catalogues: dict[str, Catalogue] = {}
        for backend in self.backends:
            pages = {
                project: m
                for (b, project), m in zip(wanted, merged, strict=True)
                if b is backend and m is not None
            }
            catalogues[backend.name] = await self._catalogue(backend, pages)
        self._family = _Family(key, catalogues)
        return catalogues, version, stale

    async def _catalogue(
        self, backend: Backend, pages: Mapping[NormalizedName, MergedProject]
    ) -> Catalogue:
        releases: dict[Release, bool] = {}
        first_wheel: dict[Release, Located] = {}
        for project, merged in pages.items():
            for dist in merged.page.files:
                try:
                    release, local, wheel = file_release(project, dist)
                except FilenameError:
                    continue
                if wheel is None:
                    continue
                releases[release] = releases.get(release, False) or local is not None
                located = merged.files.get(file_id(dist))
                if dist.core_metadata and release not in first_wheel and located is not None:
                    first_wheel[release] = located
        bodies = await asyncio.gather(
            *(self._metadata(located) for located in first_wheel.values())
        )
        requires = {
            release: _requires_dist(body)
            for release, body in zip(first_wheel, bodies, strict=True)
            if body is not None
        }
        return make_catalogue(backend.name, releases, requires, backend.projects)

    async def _metadata(self, located: Located) -> bytes | None:
        """A wheel's listed PEP 658 metadata, checked against the listed hash; None when it
        cannot be had (the release then ties nothing)."""
        dist = located.dist
        hashes = dict(dist.core_metadata) if not isinstance(dist.core_metadata, bool) else {}
        url = metadata_url(dist)
        sha256 = hashes.get("sha256")
        key = cache_key("core-metadata", located.upstream.name, f"{url}#{sha256}")
        cached = self._cache.get(key) if sha256 else None
        if cached is not None:
            return cached.body
        try:
            async with self._limit:
                body = await located.upstream.fetch_bytes(url)
            if len(body) > MAX_METADATA_BYTES:
                raise UpstreamError(f"{url} is too large for core metadata")
            check = ContentCheck(dist.filename + ".metadata", ExpectedFile(hashes, None))
            check.update(body)
            check.verify()
        except (UpstreamError, UpstreamNotFound, ContentMismatch) as exc:
            log.warning("backend metadata of %s unusable: %s", dist.filename, exc)
            return None
        if sha256:
            self._cache.put(key, CachedPage.of(body, "text/plain", url, 0.0))
        return body


def _requires_dist(metadata: bytes) -> tuple[str, ...]:
    message = BytesHeaderParser().parsebytes(metadata)
    return tuple(str(value) for value in message.get_all("Requires-Dist") or ())


def _selection_version(family_version: str, pages: Mapping[str, MergedProject | None]) -> str:
    """Changes whenever the backends' data or any of their pages of the project changes."""
    listed = [(name, merged.version if merged else "-") for name, merged in pages.items()]
    return hashlib.sha256(repr((family_version, listed)).encode()).hexdigest()[:16]


def _choose(
    project: NormalizedName,
    serving: Sequence[Backend],
    ranking: BackendRanking,
    catalogues: Mapping[str, Catalogue],
    pages: Mapping[str, MergedProject | None],
) -> tuple[dict[Release, BackendChoice], dict[Release, tuple[Backend, tuple[DistFile, ...]]]]:
    """Each public release's backend (and why), and the files it is shown with."""
    files: dict[str, dict[Release, list[DistFile]]] = {
        name: releases_of(project, merged.page) if merged is not None else {}
        for name, merged in pages.items()
    }
    releases = sorted({r for grouped in files.values() for r in grouped})
    by_name = {b.name: b for b in serving}
    choices: dict[Release, BackendChoice] = {}
    chosen: dict[Release, tuple[Backend, tuple[DistFile, ...]]] = {}
    for release in releases:
        choice = choose_backend(release, ranking, catalogues)
        choices[release] = choice
        if choice.backend is not None:
            chosen[release] = (by_name[choice.backend], tuple(files[choice.backend][release]))
    return choices, chosen
