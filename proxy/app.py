"""The aiohttp application: routes, the one place errors become HTTP answers, access logs.

A page request: parse the path -> resolve the view -> the project's merged page (cached)
-> rewrite for the view -> render HTML or JSON (cached per page version and view).
A file request: the store (hit: sendfile; miss: one shared download streamed to everyone).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import cachetools
from aiohttp import web

from proxy import __version__
from proxy.config import ConfigError, Settings
from proxy.fingerprint import Fingerprint, FingerprintError, profile_fingerprint
from proxy.fingerprint_sources import ResolvedFingerprint, resolve_fingerprint
from proxy.index_builder import BuiltIndex, build_index
from proxy.links import (
    FILE_ID_RE,
    FILENAME_RE,
    LABELS_RE,
    file_href,
    metadata_id,
    metadata_url,
    variants_json_href,
)
from proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.metrics import Metrics, ScrapeSource
from proxy.page_cache import PageCache
from proxy.page_model import ProjectPage
from proxy.page_paths import BadPath, PagePath, parse_page_path
from proxy.project_pages import (
    Located,
    MergedProject,
    ProjectNotFound,
    ProjectPages,
    UpstreamCounters,
)
from proxy.properties import PropertyError
from proxy.remote_wheel_reader import read_variant_member
from proxy.rewrite import legacy_view, native_view
from proxy.simple_api import (
    PageFormat,
    choose_format,
    normalize_name,
    render_project_html,
    render_project_json,
)
from proxy.store import DownloadFailed, ExpectedFile, FileStore, InvalidKeyError
from proxy.upstream import Upstream, UpstreamError, UpstreamNotFound, redact
from proxy.variant_metadata import ProjectVariants, VariantMetadata
from proxy.variants import subset_variants_json

log = logging.getLogger("variant_proxy")
access_log = logging.getLogger("variant_proxy.access")

STALE_WARNING = '110 variant-proxy "Response is Stale"'
PAGE_VARY = "Accept, Variant-Properties, Variant-Hardware"
RENDER_CACHE_ENTRIES = 2048
CHUNK = 256 * 1024


class BadRequest(Exception):
    """Malformed client input; answered 400 with the message."""


# Malformed client input of every kind: answered 400 with the one-line reason.
CLIENT_ERRORS = (BadRequest, BadPath, FingerprintError, PropertyError, InvalidKeyError)


@dataclass(frozen=True)
class RenderedPage:
    body: bytes
    content_type: str
    version: str


class ProxyState:
    """Everything one running proxy owns; created at start-up, closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self.page_cache = PageCache(settings.cache_dir / "pages-v1")
        self.store = FileStore(
            settings.cache_dir / "store", settings.max_size if settings.max_size > 0 else None
        )
        self.upstreams: tuple[Upstream, ...] = ()
        self.pages: ProjectPages | None = None
        self.profiles = build_profiles(settings)
        self.variant_metadata = VariantMetadata(
            self.page_cache,
            build_missing=settings.build_missing_variants_json,
            member_reader=read_variant_member,
        )
        self._detected: Fingerprint | None = None
        self._store_open = False
        self._index_pool: ProcessPoolExecutor | None = None
        self.rendered: cachetools.LRUCache[tuple[Any, ...], RenderedPage] = cachetools.LRUCache(
            RENDER_CACHE_ENTRIES
        )
        counters = self.upstream_counters = UpstreamCounters()
        self.metrics = Metrics(
            ScrapeSource(
                upstream_requests=lambda: counters.requests,
                upstream_errors=lambda: counters.errors,
                page_hits=lambda: counters.page_hits,
                page_misses=lambda: counters.page_misses,
                store_figures=self.store.figures,
            )
        )

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

    async def start(self, *, open_store: bool = True) -> None:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, trust_env=False
        )
        self.upstreams = tuple(Upstream(u, self.session) for u in self.settings.upstreams)
        self.pages = ProjectPages(
            self.upstreams,
            self.page_cache,
            self.settings.pins,
            serve_stale=self.settings.serve_stale,
            index_ttl=self.settings.index_ttl,
            counters=self.upstream_counters,
            index_builder=self._build_index,
        )
        if self.settings.detect_local:
            # py-cpuinfo can take a second: never on the event loop of a serving request.
            await asyncio.to_thread(self.detected_fingerprint)
        if open_store:
            await self.store.open()
        self._store_open = open_store

    async def _build_index(self, sources: list[tuple[bytes, str]]) -> BuiltIndex:
        """Build the root list in a worker process, so its CPU time never holds the loop."""
        if self._index_pool is None:
            self._index_pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_pool, build_index, sources)

    async def close(self) -> None:
        if self._index_pool is not None:
            self._index_pool.shutdown(wait=False, cancel_futures=True)
        if self._store_open:
            await self.store.close()
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


# -- middleware: errors and access logs ------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message.splitlines()[0] + "\n")


def _route_name(request: web.Request) -> str:
    return request.match_info.route.name or "unmatched"


@web.middleware
async def error_and_log_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    state = request.app[STATE]
    status = 500
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except CLIENT_ERRORS as exc:
        response = _error(400, str(exc))
    except ProjectNotFound as exc:
        response = _error(404, f"no upstream has project {exc}")
    except UpstreamNotFound:
        response = _error(404, "not found upstream")
    except UpstreamError as exc:
        response = _error(504 if exc.timed_out else 502, str(exc))
    except DownloadFailed as exc:
        response = _error(502, str(exc))
    finally:
        if response is not None:
            status = response.status
        route = _route_name(request)
        state.metrics.requests.labels(route, str(status)).inc()
        _log_access(request, status, route, response, time.perf_counter() - started)
    return response


def _log_access(
    request: web.Request,
    status: int,
    route: str,
    response: web.StreamResponse | None,
    seconds: float,
) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    record = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "route": route,
        "client": request.remote,
        "ms": round(seconds * 1000, 2),
        "bytes": (response.content_length or response.body_length) if response is not None else 0,
        "cache": response.headers.get("X-Cache", "") if response is not None else "",
        "fingerprint": response.headers.get("Variant-Fingerprint-Source", "")
        if response is not None
        else "",
    }
    access_log.info(json.dumps(record, separators=(",", ":")))


# -- pages -------------------------------------------------------------------------------


def _relative_root(path: PagePath) -> str:
    return "../" * path.depth


def _with_proxy_links(
    page: ProjectPage,
    root: str,
    variants: ProjectVariants,
    kept_labels: Mapping[str, tuple[str, ...]],
) -> ProjectPage:
    """Point every file at the proxy; provenance URLs lose any credentials.

    A variants.json of the native view is served subset to the labels the page lists, so it
    gets its own URL (the labels are in it) and the hash of the bytes actually served.
    """
    files = []
    for dist in page.files:
        provenance = redact(dist.provenance) if dist.provenance else dist.provenance
        labels = kept_labels.get(dist.filename)
        raw = variants.raw.get(dist.filename)
        if labels is not None and raw is not None:
            body = subset_variants_json(raw, labels)
            files.append(
                replace(
                    dist,
                    url=root + variants_json_href(page.name, dist, labels).lstrip("/"),
                    hashes={"sha256": hashlib.sha256(body).hexdigest()},
                    size=len(body),
                    core_metadata=False,
                    provenance=None,
                )
            )
        else:
            files.append(
                replace(
                    dist, url=root + file_href(page.name, dist).lstrip("/"), provenance=provenance
                )
            )
    return replace(page, files=tuple(files))


def _render(page: ProjectPage, fmt: PageFormat) -> bytes:
    return render_project_json(page) if fmt is PageFormat.JSON else render_project_html(page)


def _page_response(body: bytes, fmt: PageFormat, stale: bool, cache: str) -> web.Response:
    response = web.Response(body=body, content_type=fmt.content_type.split(";")[0])
    if fmt is not PageFormat.JSON:
        response.charset = "utf-8"
    response.headers["Vary"] = PAGE_VARY
    response.headers["X-Cache"] = cache
    if stale:
        response.headers["Warning"] = STALE_WARNING
    return response


def _fingerprint_for(
    request: web.Request, state: ProxyState, path: PagePath
) -> ResolvedFingerprint:
    settings = state.settings
    return resolve_fingerprint(
        request.headers,
        profile=path.profile,
        spec=path.spec,
        remote=request.remote,
        profiles=state.profiles,
        clients=settings.clients,
        default_profile=settings.default_profile,
        detected=state.detected_fingerprint if settings.detect_local else None,
    )


async def page_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    path = parse_page_path(request.path)
    if path is None:
        raise web.HTTPNotFound(text="not found\n")
    fmt = choose_format(request.headers.get("Accept"), request.query.get("format"))
    if fmt is None:
        return _error(
            406,
            "none of the Accept header's types can be served; ask for "
            "application/vnd.pypi.simple.v1+json or text/html",
        )
    resolved = _fingerprint_for(request, state, path)
    if path.project is None:
        if not path.trailing_slash:
            raise web.HTTPMovedPermanently(path.prefix())
        return _decorate(await _index_page(state, fmt), resolved)
    project = normalize_name(path.project)
    if project != path.project or not path.trailing_slash:
        target = path.with_project(project)
        if request.query_string:
            target += "?" + request.query_string
        raise web.HTTPMovedPermanently(target)
    merged = await state.page_service.get(project)
    variants = await state.variant_metadata.for_project(merged)
    fingerprint = resolved.fingerprint
    # A page without variant wheels is the same for every fingerprint: one cache entry.
    fingerprint_key = (
        (fingerprint.cache_key if fingerprint is not None else None) if variants.by_version else "-"
    )
    cache_key = (project, path.native, path.depth, fingerprint_key, fmt)
    version = f"{merged.version}/{variants.digest}"
    rendered = state.rendered.get(cache_key)
    if rendered is not None and rendered.version == version:
        return _decorate(_page_response(rendered.body, fmt, merged.stale, "hit"), resolved)
    properties = fingerprint.properties if fingerprint is not None else None
    view = (native_view if path.native else legacy_view)(
        merged.page, variants.by_version, properties
    )
    page = _with_proxy_links(view.page, _relative_root(path), variants, view.kept_labels)
    body = _render(page, fmt)
    state.rendered[cache_key] = RenderedPage(body, fmt.content_type, version)
    return _decorate(_page_response(body, fmt, merged.stale, "miss"), resolved)


def _decorate(response: web.Response, resolved: ResolvedFingerprint) -> web.Response:
    response.headers["Variant-Fingerprint-Source"] = resolved.source
    if resolved.private:
        response.headers["Cache-Control"] = "private"
    return response


async def _index_page(state: ProxyState, fmt: PageFormat) -> web.Response:
    index = await state.page_service.index()
    body = index.json if fmt is PageFormat.JSON else index.html
    return _page_response(body, fmt, index.stale, "hit")


# -- files -------------------------------------------------------------------------------


async def file_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    project = request.match_info["project"]
    ident = request.match_info["file_id"]
    filename = request.match_info["filename"]
    if not FILE_ID_RE.fullmatch(ident):
        raise BadRequest(f"bad file id {ident[:80]!r}")
    if not FILENAME_RE.fullmatch(filename) or len(filename) > 512:
        raise BadRequest(f"bad file name {filename[:80]!r}")
    if normalize_name(project) != project:
        raise BadRequest(f"bad project name {project[:80]!r}")
    wants_metadata = filename.endswith(".metadata")

    if not wants_metadata:
        stored = state.store.lookup(ident)
        if stored is not None:
            return _serve_stored(state, stored.path, stored.size, "hit")
    located = await _locate(state, project, ident)
    dist = located.dist
    if wants_metadata:
        if not dist.core_metadata:
            raise web.HTTPNotFound(text="this file has no metadata file upstream\n")
        key = metadata_id(dist)
        stored = state.store.lookup(key)
        if stored is not None:
            return _serve_stored(state, stored.path, stored.size, "hit", metadata=True)
        hashes = dict(dist.core_metadata) if not isinstance(dist.core_metadata, bool) else {}
        return await _stream_download(
            request,
            state,
            located,
            key,
            metadata_url(dist),
            ExpectedFile(hashes, None),
            metadata=True,
        )
    return await _stream_download(
        request, state, located, ident, dist.url, ExpectedFile(dict(dist.hashes), dist.size)
    )


async def _locate(state: ProxyState, project: str, ident: str) -> Located:
    """Find a file on the project's page: the proxy fetches only what a page listed."""
    merged: MergedProject = await state.page_service.get(project)
    located = merged.files.get(ident)
    if located is None:
        raise web.HTTPNotFound(text=f"no file {ident} is listed for project {project}\n")
    return located


def _serve_stored(
    state: ProxyState,
    path: os.PathLike[str] | str,
    size: int,
    cache: str,
    *,
    metadata: bool = False,
) -> web.StreamResponse:
    state.metrics.file_hits += 1
    state.metrics.bytes_served.labels("cache").inc(size)
    response = web.FileResponse(path, chunk_size=CHUNK)
    response.content_type = "text/plain" if metadata else "application/octet-stream"
    response.headers["X-Cache"] = cache
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


async def _stream_download(
    request: web.Request,
    state: ProxyState,
    located: Located,
    key: str,
    url: str,
    expected: ExpectedFile,
    *,
    metadata: bool = False,
) -> web.StreamResponse:
    state.metrics.file_misses += 1
    upstream = located.upstream
    download = state.store.download(key, lambda: upstream.open_file(url), expected)
    length = await download.ready()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/plain" if metadata else "application/octet-stream",
            "X-Cache": "miss",
        }
    )
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    sent = 0
    try:
        async for chunk in download.stream():
            await response.write(chunk)
            sent += len(chunk)
    except DownloadFailed as exc:
        log.warning("download of %s failed: %s", redact(url), exc)
        # Abort the connection: the client must never hold a complete, wrong file.
        if request.transport is not None:
            request.transport.close()
        return response
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        return response  # the client left; the download goes on for the store
    finally:
        state.metrics.bytes_served.labels("upstream").inc(sent)
    await response.write_eof()
    return response


async def variants_json_handler(request: web.Request) -> web.StreamResponse:
    """A variants.json of the native view, subset to the labels named in its URL."""
    state = request.app[STATE]
    project = request.match_info["project"]
    ident = request.match_info["file_id"]
    labels_text = request.match_info["labels"]
    if not FILE_ID_RE.fullmatch(ident) or normalize_name(project) != project:
        raise BadRequest(f"bad variants.json path {request.path[:120]!r}")
    if not LABELS_RE.fullmatch(labels_text):
        raise BadRequest(f"bad label list {labels_text[:80]!r}")
    merged = await state.page_service.get(project)
    built = (await state.variant_metadata.for_project(merged)).built.get(ident)
    if built is not None:
        raw = built
    else:
        located = await _locate(state, project, ident)
        raw = await state.variant_metadata.fetch_listed(located.upstream, located.dist)
    body = subset_variants_json(raw, tuple(labels_text.split("+")))
    return web.Response(body=body, content_type="application/json")


# -- admin, health, metrics ----------------------------------------------------------------


def _is_admin(request: web.Request, settings: Settings) -> bool:
    try:
        if request.remote and ipaddress.ip_address(request.remote).is_loopback:
            return True
    except ValueError:
        pass
    if settings.admin_token_env and os.environ.get(settings.admin_token_env):
        expected = f"Bearer {os.environ[settings.admin_token_env]}"
        return request.headers.get("Authorization", "") == expected
    return False


async def invalidate_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _is_admin(request, state.settings):
        return _error(403, "admin endpoints are for loopback clients or the admin token")
    project = request.match_info["project"]
    if not 0 < len(project) <= 512:
        raise BadRequest("bad project name")
    name = normalize_name(project)
    state.page_service.invalidate(name)
    state.variant_metadata.forget(name)
    return web.json_response({"invalidated": name})


async def health_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {"status": "ok", "version": __version__, "upstreams": [u.name for u in state.upstreams]}
    )


async def metrics_handler(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


def make_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_and_log_middleware],
        client_max_size=64 * 1024,
        handler_args={
            "max_line_size": settings.max_request_bytes,
            "max_field_size": settings.max_request_bytes,
        },
    )
    state = ProxyState(settings)
    app[STATE] = state

    async def lifecycle(app: web.Application) -> Any:
        await state.start()
        yield
        await state.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health_handler, name="health")
    app.router.add_get("/metrics", metrics_handler, name="metrics")
    app.router.add_post("/admin/invalidate/{project}", invalidate_handler, name="admin")
    app.router.add_get("/files/{project}/{file_id}/{filename}", file_handler, name="file")
    app.router.add_get(
        "/variants-json/{project}/{file_id}/{labels}/{filename}",
        variants_json_handler,
        name="variants-json",
    )
    app.router.add_get("/{tail:.*}", page_handler, name="page")
    return app
