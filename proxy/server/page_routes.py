"""Page routes: the simple API (`/simple/`, `/p/`, `/hw/`, `/native/`) and the native
view's variants.json.

Parse the path -> resolve the fingerprint -> the project's merged page (cached) -> rewrite
for the view -> render HTML or JSON, cached per (upstream page version, view, fingerprint).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from aiohttp import web

from proxy import __version__
from proxy.server.file_routes import locate
from proxy.server.http_cache import PageBody, cache_control, make_etag, page_answer
from proxy.server.state import STATE, BadRequest, ProxyState, RenderedPage
from proxy.simple.api import (
    PageFormat,
    choose_format,
    normalize_name,
    render_project_html,
    render_project_json,
)
from proxy.simple.filenames import parse_variants_json_filename
from proxy.simple.model import ProjectPage
from proxy.upstreams.memo import remember
from proxy.upstreams.source import redact
from proxy.upstreams.variant_metadata import NO_VARIANTS, ProjectVariants
from proxy.urls.links import FILE_ID_RE, file_href, parse_labels_segment, variants_json_href
from proxy.urls.paths import PagePath, parse_page_path
from proxy.variants.metadata import subset_variants_json
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import legacy_view, native_view
from proxy.variants.sources import ResolvedFingerprint, resolve_fingerprint

# Pages with more files than this are rewritten and rendered in a worker thread.
THREAD_BUILD_FILES = 2000
STALE_WARNING = '110 variant-proxy "Response is Stale"'
PAGE_VARY = "Accept, Variant-Properties, Variant-Hardware"


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
            files.append(dist.with_url(root + file_href(page.name, dist)[1:], provenance))
    return replace(page, files=tuple(files))


def _build_body(
    page: ProjectPage,
    variants: ProjectVariants,
    path: PagePath,
    properties: tuple[VariantProperty, ...] | None,
    fmt: PageFormat,
) -> PageBody:
    """The page as sent (with its ETag): the view for the fingerprint, links to the proxy,
    rendered."""
    if variants is NO_VARIANTS:
        # No file can be a variant wheel or a variants.json: every view is the page itself.
        shown, kept_labels = page, {}
    else:
        view = (native_view if path.native else legacy_view)(page, variants.by_version, properties)
        shown, kept_labels = view.page, dict(view.kept_labels)
    return PageBody(
        _render(_with_proxy_links(shown, _relative_root(path), variants, kept_labels), fmt)
    )


def _render(page: ProjectPage, fmt: PageFormat) -> bytes:
    return render_project_json(page) if fmt is PageFormat.JSON else render_project_html(page)


@dataclass(frozen=True)
class _Answer:
    """What decides a page's headers besides its bytes."""

    fmt: PageFormat
    cache: str  # X-Cache: hit | miss
    fresh_until: float
    stale: bool
    warnings: tuple[str, ...]


async def _page_response(
    request: web.Request, page: PageBody, answer: _Answer, resolved: ResolvedFingerprint
) -> web.Response:
    fmt = answer.fmt
    headers = {
        "Vary": PAGE_VARY,
        "X-Cache": answer.cache,
        "Variant-Fingerprint-Source": resolved.source,
        "Cache-Control": cache_control(
            answer.fresh_until, private=resolved.private, stale=answer.stale
        ),
    }
    if answer.stale:
        headers["Warning"] = STALE_WARNING
    content_type = (
        fmt.content_type if fmt is PageFormat.JSON else f"{fmt.content_type}; charset=utf-8"
    )
    response = await page_answer(request, page, content_type, headers)
    if answer.stale:
        response["reason"] = "stale: " + ("; ".join(answer.warnings) or "upstream failed")
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
    resolved = _fingerprint_for(request, state, path)
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
    fingerprint = resolved.fingerprint
    if fingerprint is not None and state.backends is not None and state.backends.serves(project):
        from proxy.server.backend_routes import fingerprinted_backend_page

        return await fingerprinted_backend_page(
            request, resolved, state, project, path, fmt, fingerprint
        )
    merged = await state.page_service.get(project)
    if state.settings.offline:
        merged = await state.held_only(merged)
    variants = await state.variant_metadata.for_project(merged)
    # A page without variant wheels is the same for every fingerprint: one cache entry.
    fingerprint_key = (
        (fingerprint.cache_key if fingerprint is not None else None) if variants.by_version else "-"
    )
    cache_key = (project, path.native, path.depth, fingerprint_key, fmt)
    version = f"{merged.version}/{variants.digest}"
    rendered = state.rendered.get(cache_key)
    answer = _Answer(fmt, "hit", merged.fresh_until, merged.stale, merged.warnings)
    if rendered is not None and rendered.version == version:
        return await _page_response(request, rendered.page, answer, resolved)
    properties = fingerprint.properties if fingerprint is not None else None
    build = functools.partial(_build_body, merged.page, variants, path, properties, fmt)
    # A big page's pure-Python work in a thread lets the loop run every few ms (the GIL's
    # switch interval); on the loop it would hold every other request until done.
    body = (
        await asyncio.to_thread(build) if len(merged.page.files) > THREAD_BUILD_FILES else build()
    )
    remember(state.rendered, cache_key, RenderedPage(body, version))
    return await _page_response(request, body, replace(answer, cache="miss"), resolved)


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
    answer = _Answer(fmt, cache, index.fresh_until, index.stale, index.warnings)
    return await _page_response(request, body, answer, resolved)


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
    merged = await state.page_service.get(project)
    built = (await state.variant_metadata.for_project(merged)).built.get(ident)
    if built is not None:
        raw = built
    else:
        located = await locate(state, project, ident)
        # Only a listed variants.json is read through this route: any other file (a wheel,
        # say) is the file route's, which downloads it once into the store.
        if parse_variants_json_filename(located.dist.filename) is None:
            raise web.HTTPNotFound(text=f"file {ident} of {project} is not a variants.json\n")
        raw = await state.variant_metadata.fetch_listed(located.upstream, located.dist)
    body = subset_variants_json(raw, labels)
    return web.Response(body=body, content_type="application/json")
