"""The state one running proxy owns: settings, HTTP session, caches, store, metrics.

Created at start-up, reached by every handler through `request.app[STATE]`, closed at
shutdown. The errors handlers raise become HTTP answers in `proxy.server.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import cachetools
from aiohttp import web

from proxy.config import ConfigError, Settings
from proxy.local.publish import LocalIndex
from proxy.pages.cache import PAGE_CACHE_DIR, PageCache
from proxy.pages.straight_jobs import StraightJobs
from proxy.pages.workers import PageWorkers
from proxy.pipeline import Pipeline
from proxy.server.activity import DownloadWatch, RecentErrors
from proxy.server.gc_tuning import tune_for_serving
from proxy.server.http_cache import PageBody
from proxy.server.logs import LOGGER_NAME
from proxy.server.metrics import Metrics, ScrapeSource
from proxy.server.upstream_status import UpstreamWatch
from proxy.simple.api import PageFormat
from proxy.simple.names import normalize_name
from proxy.simple.root_index import BuiltIndex, build_index
from proxy.store.factory import make_file_store
from proxy.store.file_store import FileStore
from proxy.upstreams.backends import BackendIndexes
from proxy.upstreams.directory import open_local_index
from proxy.upstreams.factory import make_upstream
from proxy.upstreams.memo import weighted_lru
from proxy.upstreams.offline import OfflineSource
from proxy.upstreams.page_loader import UpstreamCounters
from proxy.upstreams.projects import MergedProject, ProjectPages
from proxy.upstreams.remote_wheel_reader import read_variant_member
from proxy.upstreams.source import UpstreamSource
from proxy.upstreams.variant_metadata import VariantMetadata
from proxy.urls.links import file_id, metadata_id
from proxy.variants.fingerprint import Fingerprint, FingerprintError, profile_fingerprint
from proxy.variants.sources import FingerprintResolver

if TYPE_CHECKING:
    from proxy.cluster.files import ClusterFiles
    from proxy.cluster.replica import Replica

# Rendered pages kept in memory (bytes of page bodies, all views and fingerprints together).
RENDER_CACHE_BYTES = 24 * 1024 * 1024
# At shutdown: how long running requests, then running downloads, may take to finish.
SHUTDOWN_GRACE_S = 10.0


@dataclass(frozen=True)
class RenderedPage:
    """A page as sent (bytes, ETag, gzip form), and the version of the upstream data it was
    made from."""

    page: PageBody
    version: str

    @property
    def weight(self) -> int:
        # The bytes, and room for the gzip form a client may ask for later (about a fifth).
        body = len(self.page.body)
        return body + body // 5


class ProxyState:
    """Everything one running proxy owns; created at start-up, closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self.page_cache = PageCache(settings.cache_dir / PAGE_CACHE_DIR)
        self.store = make_file_store(settings)
        self.upstreams: tuple[UpstreamSource, ...] = ()
        self.pages: ProjectPages | None = None
        self.backends: BackendIndexes | None = None
        self.local_index: LocalIndex | None = None
        self.profiles = build_profiles(settings)
        self.fingerprints = FingerprintResolver.configure(
            settings, self.profiles, self.detected_fingerprint
        )
        self._pipeline: Pipeline | None = None
        self.variant_metadata = VariantMetadata(
            self.page_cache,
            build_missing=settings.build_missing_variants_json,
            member_reader=read_variant_member,
        )
        self._detected: Fingerprint | None = None
        self._store_open = False
        # The worker process of big pages' CPU work (root lists, straight JSON pages).
        self.workers = PageWorkers()
        self.rendered: cachetools.LRUCache[tuple[Any, ...], RenderedPage] = weighted_lru(
            RENDER_CACHE_BYTES
        )
        # The root list's bodies (with their gzip forms) for its current version only.
        self.index_bodies: dict[tuple[str, PageFormat], PageBody] = {}
        counters = self.upstream_counters = UpstreamCounters()
        self.started_at = time.time()
        self.upstream_watch = UpstreamWatch(settings.upstreams, counters, offline=settings.offline)
        self.download_watch = DownloadWatch(self.store.downloads_in_flight)
        self.recent_errors = RecentErrors()
        self.metrics = Metrics(
            ScrapeSource(
                upstream_requests=lambda: counters.requests,
                upstream_errors=lambda: counters.errors,
                page_hits=lambda: counters.page_hits,
                page_misses=lambda: counters.page_misses,
                store_figures=self.store.figures,
            )
        )

        self.cluster: Replica | None = None
        if settings.s3 or settings.cluster:
            # Imported only here: S3 and Redis clients cost a noticeable part of start-up.
            from proxy.cluster.metrics import ClusterCollector
            from proxy.cluster.replica import Replica

            self.cluster = Replica(settings.s3, settings.cluster)
            self.metrics.registry.register(ClusterCollector(self.cluster))

    def detected_fingerprint(self) -> Fingerprint:
        """This machine's own fingerprint, detected once (for loopback clients, opt-in)."""
        if self._detected is None:
            from proxy.detect import detect_hardware, detected_fingerprint

            self._detected = detected_fingerprint(detect_hardware())
        return self._detected

    @property
    def page_service(self) -> ProjectPages:
        assert self.pages is not None, "the proxy has not started"
        return self.pages

    @property
    def pipeline(self) -> Pipeline:
        """Fingerprint -> project view -> variants -> view, for routes, explain and mirror."""
        assert self._pipeline is not None, "the proxy has not started"
        return self._pipeline

    async def start(self, *, open_store: bool = True) -> None:
        if open_store:
            # First: a store another process holds stops the start before anything is opened.
            await self.store.open()
        self._store_open = open_store
        if open_store:
            self.download_watch.start()
            logging.getLogger(LOGGER_NAME).addHandler(self.recent_errors)
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, trust_env=False
        )
        upstreams = tuple(make_upstream(u, self.session) for u in self.settings.upstreams)
        # Offline: the upstreams only name the cache entries; they never open a connection.
        self.upstreams = (
            tuple(OfflineSource(u) for u in upstreams) if self.settings.offline else upstreams
        )
        # An offline proxy serves only its cache, so it takes no uploads either.
        if not self.settings.offline:
            self.local_index = open_local_index(upstreams, self._local_index_changed)
        self.pages = ProjectPages(
            self.upstreams,
            self.page_cache,
            self.settings.pins,
            serve_stale=self.settings.serve_stale,
            index_ttl=self.settings.index_ttl,
            counters=self.upstream_counters,
            index_builder=self._build_index,
            straight_builder=StraightJobs(self.workers),
            shared=self.cluster.pages if self.cluster is not None else None,
            offline=self.settings.offline,
            checked_since=self.settings.pages_checked_since,
        )
        if self.settings.backends:
            self.backends = BackendIndexes.configure(
                self.settings.backends,
                self.session,
                self.page_cache,
                self.upstream_counters,
                serve_stale=self.settings.serve_stale,
                index_ttl=self.settings.index_ttl,
                offline=self.settings.offline,
                checked_since=self.settings.pages_checked_since,
            )
        self._pipeline = Pipeline(
            self.pages,
            self.variant_metadata,
            self.fingerprints,
            backends=self.backends,
            # Offline, pages list only what the cache holds (known only with the store open).
            held_only=self.held_only if self.settings.offline and open_store else None,
        )
        if self.settings.detect_local:
            # py-cpuinfo can take a second: never on the event loop of a serving request.
            await asyncio.to_thread(self.detected_fingerprint)
        if self.cluster is not None:
            await self.cluster.start(self.store, self.session, self._forget_project)

    def listening(self, url: str) -> None:
        """The URL this proxy answers on (a replica advertises it to the others)."""
        self.workers.warm_up()  # now, not on the first big page
        tune_for_serving()
        if self.cluster is not None:
            self.cluster.listening(url)

    def _forget_project(self, project: str) -> None:
        """Forget one project's cached page (here: another replica invalidated it)."""
        name = normalize_name(project)
        self.page_service.invalidate(name)
        self.variant_metadata.forget(name)

    def file_fetcher(self) -> FileStore | ClusterFiles:
        """Who starts a file download: the cluster (one for all replicas) or the store."""
        if self.cluster is not None and self.cluster.files is not None:
            return self.cluster.files
        return self.store

    async def held_only(self, merged: MergedProject) -> MergedProject:
        """Offline: the page less every file the cache does not hold."""
        from proxy.mirror.held import held_only

        held: set[str] = set()
        for ident, located in merged.files.items():
            dist = located.dist
            if dist.filename.endswith("-variants.json"):
                if self.variant_metadata.holds_listed(located.upstream, dist):
                    held.add(ident)
            elif await self.store.lookup(ident) is not None:
                held.add(ident)
                if dist.core_metadata and await self.store.lookup(metadata_id(dist)) is not None:
                    held.add(metadata_id(dist))
        return held_only(
            merged,
            lambda located: file_id(located.dist) in held,
            lambda dist: metadata_id(dist) in held,
        )

    def _local_index_changed(self, project: str, upstream: str) -> None:
        """An upload, yank or removal changed a project: its pages change at once."""
        name = normalize_name(project)
        self.page_service.invalidate(name, only=upstream)
        self.variant_metadata.forget(name)

    async def _build_index(self, sources: list[tuple[bytes, str]]) -> BuiltIndex:
        """Build the root list in the worker process, so its CPU time never holds the loop."""
        return await self.workers.run(build_index, sources)

    async def close(self) -> None:
        await self.download_watch.close()
        logging.getLogger(LOGGER_NAME).removeHandler(self.recent_errors)
        self.workers.close()
        if self._store_open:
            await self.store.drain(SHUTDOWN_GRACE_S)
            await self.store.close()
        if self.cluster is not None:
            await self.cluster.close()  # after the store: uploads of finished files go on
        if self.session is not None:
            await self.session.close()
        self.page_cache.close()


def build_profiles(settings: Settings) -> dict[str, Fingerprint]:
    """Every `[profiles.X]` as a fingerprint; a bad one is a config error naming it."""
    profiles = {}
    for name, profile in settings.profiles.items():
        try:
            profiles[name] = profile_fingerprint(profile.hw, profile.properties)
        except FingerprintError as exc:
            raise ConfigError(f"profiles.{name}: {exc}") from None
    return profiles


STATE: web.AppKey[ProxyState] = web.AppKey("state", ProxyState)
