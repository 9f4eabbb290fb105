"""How a project page or project list is answered, for every route that serves one (the
simple API's pages and the backend indexes' own): the headers besides the bytes (Vary,
X-Cache, the fingerprint's source, freshness, a stale answer's warning and reason) and the
rendering of a page in the negotiated format."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from proxy.server.http_cache import PageBody, cache_control, page_answer
from proxy.simple.api import PageFormat, render_project_html, render_project_json
from proxy.simple.model import ProjectPage
from proxy.variants.sources import ResolvedFingerprint

STALE_WARNING = '110 variant-proxy "Response is Stale"'
PAGE_VARY = "Accept, Variant-Properties, Variant-Hardware"
# The answer of a page that no fingerprint decided (a backend index's own pages).
NO_FINGERPRINT = ResolvedFingerprint(None, "none")


@dataclass(frozen=True)
class PageAnswer:
    """What decides a page's headers besides its bytes."""

    fmt: PageFormat
    cache: str  # X-Cache: hit | miss
    fresh_until: float
    stale: bool
    warnings: tuple[str, ...] = ()


def render_page(page: ProjectPage, fmt: PageFormat) -> bytes:
    """A project page in the negotiated format (PEP 691 JSON or PEP 503 HTML)."""
    return render_project_json(page) if fmt is PageFormat.JSON else render_project_html(page)


async def page_response(
    request: web.Request, page: PageBody, answer: PageAnswer, resolved: ResolvedFingerprint
) -> web.Response:
    """The answer to `request` with `page`: ETag/304, gzip and the page headers."""
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
