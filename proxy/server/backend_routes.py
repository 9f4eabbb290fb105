"""Backend pages: the project pages backends serve, for a client with a fingerprint (one
build per public version, chosen for the client), and `/backend/{name}/simple/...`: one
backend index's own pages through the cache, for explicit pins and lock files.
"""

from __future__ import annotations

import time

from aiohttp import web

from proxy.server.http_cache import PageBody
from proxy.server.page_routes import _Answer, _page_response
from proxy.server.page_routes import _render as render_page
from proxy.server.page_routes import _with_proxy_links as with_proxy_links
from proxy.server.state import STATE, BadRequest, ProxyState, RenderedPage
from proxy.simple.api import PageFormat, choose_format
from proxy.simple.names import NormalizedName, normalize_name
from proxy.upstreams.backend_view import EMPTY_VARIANTS, backend_inputs, build_backend_view
from proxy.upstreams.projects import ProjectNotFound
from proxy.urls.paths import PROJECT_RE, PagePath
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.sources import ResolvedFingerprint

# /backend/{name}/simple/{project}/ -> the root is four segments up.
_BACKEND_PAGE_ROOT = "../../../../"


def _answer(fmt: PageFormat, cache: str, fresh_until: float, stale: bool) -> _Answer:
    return _Answer(fmt, cache, fresh_until, stale, ())


NO_FINGERPRINT = ResolvedFingerprint(None, "none")


async def fingerprinted_backend_page(
    request: web.Request,
    resolved: ResolvedFingerprint,
    state: ProxyState,
    project: NormalizedName,
    path: PagePath,
    fmt: PageFormat,
    fingerprint: Fingerprint,
) -> web.Response:
    """The legacy page of a project backends serve, for a client with a fingerprint."""
    backends = state.backends
    assert backends is not None
    inputs = await backend_inputs(
        backends, state.page_service, state.variant_metadata, project, fingerprint
    )
    cache_key = ("backends", project, path.depth, fingerprint.cache_key, fmt)
    rendered = state.rendered.get(cache_key)
    fresh_until = inputs.merged.fresh_until if inputs.merged is not None else time.time() + 60
    if rendered is not None and rendered.version == inputs.version:
        answer = _answer(fmt, "hit", fresh_until, inputs.stale)
        return await _page_response(request, rendered.page, answer, resolved)
    view = build_backend_view(inputs, fingerprint)
    page = with_proxy_links(view.page, "../" * path.depth, inputs.variants, {})
    body = render_page(page, fmt)
    state.rendered[cache_key] = RenderedPage(PageBody(body), inputs.version)
    answer = _answer(fmt, "miss", fresh_until, inputs.stale)
    return await _page_response(request, PageBody(body), answer, resolved)


def choose_page_format(request: web.Request) -> PageFormat:
    fmt = choose_format(request.headers.get("Accept"), request.query.get("format"))
    if fmt is None:
        raise web.HTTPNotAcceptable(
            text="ask for application/vnd.pypi.simple.v1+json or text/html\n"
        )
    return fmt


def _backend_pages(request: web.Request) -> tuple[ProxyState, str]:
    state = request.app[STATE]
    name = request.match_info["name"]
    if state.backends is None or state.backends.pages(name) is None:
        raise web.HTTPNotFound(text=f"no backend named {name[:80]!r}\n")
    return state, name


async def backend_index_handler(request: web.Request) -> web.StreamResponse:
    """`/backend/{name}/simple/`: that backend's own project list."""
    state, name = _backend_pages(request)
    fmt = choose_page_format(request)
    pages = state.backends.pages(name) if state.backends is not None else None
    assert pages is not None
    index = await pages.index()
    body = index.json if fmt is PageFormat.JSON else index.html
    answer = _answer(fmt, "hit", index.fresh_until, index.stale)
    return await _page_response(request, PageBody(body), answer, NO_FINGERPRINT)


async def backend_project_handler(request: web.Request) -> web.StreamResponse:
    """`/backend/{name}/simple/{project}/`: that backend's own page of one project."""
    state, name = _backend_pages(request)
    raw = request.match_info["project"]
    if len(raw) > 512 or not PROJECT_RE.fullmatch(raw):
        raise BadRequest(f"bad project name {raw[:80]!r}")
    project = normalize_name(raw)
    if project != raw or not request.path.endswith("/"):
        raise web.HTTPMovedPermanently(f"/backend/{name}/simple/{project}/")
    fmt = choose_page_format(request)
    assert state.backends is not None
    merged = await state.backends.page(name, project)
    if merged is None:
        raise ProjectNotFound(f"{project} (backend {name})")
    cache_key = ("backend-index", name, project, fmt)
    rendered = state.rendered.get(cache_key)
    if rendered is not None and rendered.version == merged.version:
        answer = _answer(fmt, "hit", merged.fresh_until, merged.stale)
        return await _page_response(request, rendered.page, answer, NO_FINGERPRINT)
    page = with_proxy_links(merged.page, _BACKEND_PAGE_ROOT, EMPTY_VARIANTS, {})
    body = render_page(page, fmt)
    state.rendered[cache_key] = RenderedPage(PageBody(body), merged.version)
    answer = _answer(fmt, "miss", merged.fresh_until, merged.stale)
    return await _page_response(request, PageBody(body), answer, NO_FINGERPRINT)


def add_backend_routes(app: web.Application) -> None:
    app.router.add_get("/backend/{name}/simple/", backend_index_handler, name="backend-index")
    app.router.add_get(
        "/backend/{name}/simple/{project}/", backend_project_handler, name="backend-page"
    )
    app.router.add_get(
        "/backend/{name}/simple/{project}", backend_project_handler, name="backend-page-noslash"
    )
