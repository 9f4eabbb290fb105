"""Page routes: the simple API (`/simple/`, `/p/`, `/hw/`, `/native/`) and the native
view's variants.json.

Parse the path -> the `Pipeline` (fingerprint -> merged page and variant metadata, with the
backend builds for a backend project -> view -> proxy links) -> render HTML or JSON, cached
per (upstream page version, view, fingerprint).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace

from aiohttp import web

from proxy import __version__
from proxy.pipeline import Pipeline, ProjectData
from proxy.server.errors import BadRequest
from proxy.server.http_cache import PageBody, make_etag
from proxy.server.page_answers import PageAnswer, page_response, render_page
from proxy.server.state import STATE, ProxyState, RenderedPage
from proxy.simple.api import PageFormat, choose_format, normalize_name
from proxy.simple.filenames import parse_variants_json_filename
from proxy.simple.names import NormalizedName
from proxy.upstreams.memo import remember
from proxy.upstreams.straight_pages import StraightPage
from proxy.upstreams.variant_metadata import NO_VARIANTS
from proxy.urls.links import FILE_ID_RE, parse_labels_segment
from proxy.urls.paths import PagePath, parse_page_path
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.sources import ResolvedFingerprint

# Pages with more files than this are rewritten and rendered in a worker thread.
THREAD_BUILD_FILES = 2000


def _build_body(
    pipeline: Pipeline,
    data: ProjectData,
    path: PagePath,
    fingerprint: Fingerprint | None,
    fmt: PageFormat,
) -> PageBody:
    """The page as sent (with its ETag): the view for the fingerprint, links to the proxy,
    rendered."""
    root = "../" * path.depth
    return PageBody(
        render_page(pipeline.served_page(data, fingerprint, native=path.native, root=root), fmt)
    )


async def page_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    path = parse_page_path(request.path)
    if path is None:
        raise web.HTTPNotFound(text="not found\n")
    fmt = choose_format(request.headers.get("Accept"), request.query.get("format"))
    resolved = state.pipeline.fingerprints.resolve(
        request.headers, profile=path.profile, spec=path.spec, remote=request.remote
    )
    if path.project is None:
        if not path.trailing_slash:
            raise web.HTTPMovedPermanently(path.prefix())
        return await _index_page(request, state, fmt, resolved)
    project = normalize_name(path.project)
    if project != path.project or not path.trailing_slash:
        target = path.with_project(project)
        if request.query_string:
            target += "?" + request.query_string
        raise web.HTTPMovedPermanently(target)
    return await _project_page(request, state, project, path, fmt, resolved)


async def _project_page(
    request: web.Request,
    state: ProxyState,
    project: NormalizedName,
    path: PagePath,
    fmt: PageFormat,
    resolved: ResolvedFingerprint,
) -> web.Response:
    """A project's page for the client: the legacy or native view (with backend builds for
    a project backends serve), from the rendered-page cache while its inputs are unchanged."""
    pipeline = state.pipeline
    fingerprint = resolved.fingerprint
    if fmt is PageFormat.JSON and not pipeline.backends_serve(project, fingerprint):
        straight = await state.page_service.get_straight(project, "../" * path.depth)
        if straight is not None:
            return await _straight_answer(request, state, straight, (project, path), resolved)
    data = await pipeline.project(project, fingerprint)
    # A page without variant wheels is the same for every fingerprint: one cache entry.
    fingerprint_key = (
        (fingerprint.cache_key if fingerprint is not None else None) if data.has_variants else "-"
    )
    cache_key = (data.name, path.native, path.depth, fingerprint_key, fmt)
    rendered = state.rendered.get(cache_key)
    answer = PageAnswer(fmt, "hit", data.fresh_until, data.stale, data.warnings)
    if rendered is not None and rendered.version == data.version:
        return await page_response(request, rendered.page, answer, resolved)
    build = functools.partial(_build_body, pipeline, data, path, fingerprint, fmt)
    # A big page's pure-Python work in a thread lets the loop run every few ms (the GIL's
    # switch interval); on the loop it would hold every other request until done.
    big = len(data.page.files) > THREAD_BUILD_FILES
    body = await asyncio.to_thread(build) if big else build()
    remember(state.rendered, cache_key, RenderedPage(body, data.version))
    return await page_response(request, body, replace(answer, cache="miss"), resolved)


async def _straight_answer(
    request: web.Request,
    state: ProxyState,
    straight: StraightPage,
    page: tuple[NormalizedName, PagePath],
    resolved: ResolvedFingerprint,
) -> web.Response:
    """A big cold page's JSON made straight from its upstream page (no variant files): kept
    as the rendered page of every fingerprint, as the general path would keep it."""
    project, path = page
    body = await asyncio.to_thread(PageBody, straight.body)  # its ETag: a 7 MB hash
    version = f"{straight.version}/{NO_VARIANTS.digest}"
    cache_key = (project, path.native, path.depth, "-", PageFormat.JSON)
    remember(state.rendered, cache_key, RenderedPage(body, version))
    fmt = PageFormat.JSON
    answer = PageAnswer(fmt, "miss", straight.fresh_until, straight.stale, straight.warnings)
    return await page_response(request, body, answer, resolved)


async def _index_page(
    request: web.Request, state: ProxyState, fmt: PageFormat, resolved: ResolvedFingerprint
) -> web.Response:
    pages = state.page_service
    before = pages.peek_index()
    index = await pages.index()
    key = (index.version, fmt)
    body = state.index_bodies.get(key)
    if body is None:
        # The ETag comes from the upstream versions, so a 50 MB list is never hashed again.
        raw = index.json if fmt is PageFormat.JSON else index.html
        body = PageBody(raw, etag=make_etag(f"{__version__}/{index.version}/{fmt.name}".encode()))
        state.index_bodies = {k: v for k, v in state.index_bodies.items() if k[0] == index.version}
        state.index_bodies[key] = body
    cache = "hit" if index is before else "miss"
    answer = PageAnswer(fmt, cache, index.fresh_until, index.stale, index.warnings)
    return await page_response(request, body, answer, resolved)


async def variants_json_handler(request: web.Request) -> web.StreamResponse:
    """A variants.json of the native view, subset to the labels named in its URL."""
    state = request.app[STATE]
    project = normalize_name(request.match_info["project"])
    ident = request.match_info["file_id"]
    labels_text = request.match_info["labels"]
    if not FILE_ID_RE.fullmatch(ident) or project != request.match_info["project"]:
        raise BadRequest(f"bad variants.json path {request.path[:120]!r}")
    labels = parse_labels_segment(labels_text)
    if labels is None:
        raise BadRequest(f"bad label list {labels_text[:80]!r}")
    pipeline = state.pipeline
    raw = (await pipeline.listed(project)).variants.built.get(ident)
    if raw is None:
        located = await pipeline.locate(project, ident)
        # Only a listed variants.json is read through this route: any other file (a wheel,
        # say) is the file route's, which downloads it once into the store.
        if parse_variants_json_filename(located.dist.filename) is None:
            raise web.HTTPNotFound(text=f"file {ident} of {project} is not a variants.json\n")
        raw = await state.variant_metadata.fetch_listed(located.upstream, located.dist)
    body = pipeline.subsets.subset(ident, labels, raw)
    return web.Response(body=body, content_type="application/json")
