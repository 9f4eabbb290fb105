"""Backend index routes: `/backend/{name}/simple/...`, one backend index's own pages
through the cache, for explicit pins and lock files. (The page a client with a fingerprint
gets of a project backends serve, one build per public version, is the pipeline's, served
by the page routes.)
"""

from __future__ import annotations

from aiohttp import web

from proxy.server.errors import BadRequest
from proxy.server.http_cache import PageBody
from proxy.server.page_answers import NO_FINGERPRINT, PageAnswer, page_response, render_page
from proxy.server.state import STATE, ProxyState, RenderedPage
from proxy.simple.api import PageFormat, choose_format
from proxy.simple.names import normalize_name
from proxy.upstreams.projects import ProjectNotFound
from proxy.urls.paths import PROJECT_RE

# /backend/{name}/simple/{project}/ -> the root is four segments up.
_BACKEND_PAGE_ROOT = "../../../../"


def choose_page_format(request: web.Request) -> PageFormat:
    return choose_format(request.headers.get("Accept"), request.query.get("format"))


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
    answer = PageAnswer(fmt, "hit", index.fresh_until, index.stale)
    return await page_response(request, PageBody(body), answer, NO_FINGERPRINT)


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
        answer = PageAnswer(fmt, "hit", merged.fresh_until, merged.stale)
        return await page_response(request, rendered.page, answer, NO_FINGERPRINT)
    page = state.pipeline.proxy_links(merged.page, _BACKEND_PAGE_ROOT)
    body = render_page(page, fmt)
    state.rendered[cache_key] = RenderedPage(PageBody(body), merged.version)
    answer = PageAnswer(fmt, "miss", merged.fresh_until, merged.stale)
    return await page_response(request, PageBody(body), answer, NO_FINGERPRINT)


def add_backend_routes(app: web.Application) -> None:
    app.router.add_get("/backend/{name}/simple/", backend_index_handler, name="backend-index")
    app.router.add_get(
        "/backend/{name}/simple/{project}/", backend_project_handler, name="backend-page"
    )
    app.router.add_get(
        "/backend/{name}/simple/{project}", backend_project_handler, name="backend-page-noslash"
    )
