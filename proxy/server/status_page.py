"""The status page at `/`, for a person: upstreams and whether they answer, the cache, the
downloads in flight, recent errors, profiles and client rules with ready install lines.

`render_status` is pure (a `StatusView` in, HTML out); the handler gathers the view from
the running proxy. The template and its CSS live in `status_assets/` beside this module
and are inlined, so the page needs nothing from anywhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from string import Template

from aiohttp import web

from proxy import __version__
from proxy.config import Settings
from proxy.server.activity import DownloadProgress, RecentError, human_bytes
from proxy.server.upstream_status import UpstreamStatus

SHOWN_ERRORS = 20


@dataclass(frozen=True)
class CacheFigures:
    directory: str
    size: int
    limit: int  # 0 = unbounded
    files: int
    page_hits: int
    page_misses: int
    file_hits: int
    file_misses: int


@dataclass(frozen=True)
class StatusView:
    base_url: str
    started_at: float
    upstreams: list[UpstreamStatus]
    cache: CacheFigures
    downloads: list[DownloadProgress]
    errors: list[RecentError]
    settings: Settings


@cache
def _template() -> tuple[Template, str]:
    folder = resources.files("proxy.server") / "status_assets"
    page = Template((folder / "status.html").read_text(encoding="utf-8"))
    return page, (folder / "status.css").read_text(encoding="utf-8")


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    return f"{_duration(now - at)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _badge(answering: bool | None, offline: bool) -> str:
    if offline:
        return '<span class="badge unknown">offline: never contacted</span>'
    if answering is None:
        return '<span class="badge unknown">not asked yet</span>'
    if answering:
        return '<span class="badge ok">answering</span>'
    return '<span class="badge bad">failing</span>'


def _upstreams(items: list[UpstreamStatus], now: float, offline: bool) -> str:
    if not items:
        return '<p class="empty">No upstream is configured.</p>'
    rows = []
    for item in items:
        reason = f'<div class="reason">{escape(item.reason)}</div>' if item.reason else ""
        rows.append(
            f'<tr data-upstream="{escape(item.name)}"><td><strong>{escape(item.name)}</strong>'
            f"</td><td><code>{escape(item.where)}</code></td>"
            f'<td class="state">{_badge(item.answering, offline)}{reason}</td>'
            f'<td class="when">{_ago(item.seen_at, now)}</td>'
            f'<td class="num">{item.requests}</td><td class="num">{item.errors}</td></tr>'
        )
    return (
        "<table><thead><tr><th>name</th><th>where</th><th>state</th><th>checked</th>"
        '<th class="num">requests</th><th class="num">errors</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _ratio(hits: int, misses: int) -> str:
    total = hits + misses
    return f"{100 * hits / total:.1f}%" if total else "none yet"


def _figure(label: str, value: str, ident: str) -> str:
    return (
        f'<div class="figure" id="{ident}"><div class="value">{escape(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
    )


def _cache(figures: CacheFigures) -> str:
    limit = human_bytes(figures.limit) if figures.limit else "unbounded"
    used = f" ({100 * figures.size / figures.limit:.0f}% used)" if figures.limit else ""
    hits = figures.page_hits + figures.file_hits
    misses = figures.page_misses + figures.file_misses
    return (
        '<div class="figures">'
        + _figure("stored", human_bytes(figures.size), "cache-size")
        + _figure("limit", limit, "cache-limit")
        + _figure("files", f"{figures.files:,}", "cache-files")
        + _figure("hit ratio", _ratio(hits, misses), "cache-hit-ratio")
        + "</div><table><tbody>"
        f"<tr><td>directory</td><td><code>{escape(figures.directory)}</code>{used}</td></tr>"
        f"<tr><td>pages</td><td>{figures.page_hits:,} hits, {figures.page_misses:,} misses "
        f"({_ratio(figures.page_hits, figures.page_misses)})</td></tr>"
        f"<tr><td>files</td><td>{figures.file_hits:,} hits, {figures.file_misses:,} misses "
        f"({_ratio(figures.file_hits, figures.file_misses)})</td></tr>"
        "</tbody></table>"
    )


def _downloads(items: list[DownloadProgress]) -> str:
    if not items:
        return '<p class="empty">No download is running.</p>'
    rows = []
    for item in items:
        fraction = item.fraction
        if fraction is None:
            bar = '<div class="bar indeterminate"><span></span></div>'
            amount = human_bytes(item.received)
        else:
            bar = f'<div class="bar"><span style="width:{100 * fraction:.1f}%"></span></div>'
            total = human_bytes(item.total or 0)
            amount = f"{human_bytes(item.received)} of {total} ({100 * fraction:.0f}%)"
        rows.append(
            f'<tr class="download" data-key="{escape(item.key)}">'
            f'<td><code>{escape(item.name)}</code><div class="muted">{escape(item.project)}</div>'
            f'</td><td>{bar}<div class="progress">{amount}</div></td>'
            f'<td class="num rate">{human_bytes(item.rate)}/s</td>'
            f'<td class="num">{_duration(item.seconds)}</td></tr>'
        )
    return (
        "<table><thead><tr><th>file</th><th>progress</th>"
        '<th class="num">rate</th><th class="num">for</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _errors(items: list[RecentError]) -> str:
    if not items:
        return '<p class="empty">Nothing went wrong lately.</p>'
    return (
        '<ul class="errors">'
        + "".join(
            f"<li><time>{escape(item.at)}</time><strong>{escape(item.where)}</strong> "
            f"{escape(item.message)}</li>"
            for item in items[:SHOWN_ERRORS]
        )
        + "</ul>"
    )


def _install_lines(index_url: str) -> str:
    return (
        f"<pre>pip install --index-url {escape(index_url)} PACKAGE</pre>"
        f"<pre>uv pip install --index-url {escape(index_url)} PACKAGE</pre>"
    )


def _profiles(settings: Settings, base_url: str) -> str:
    default = settings.default_profile
    rows = [
        '<tr data-profile=""><td><strong>(none)</strong><div class="muted">'
        + ("default profile: " + escape(default) if default else "the request decides")
        + "</div></td><td>headers, client rules, the default</td>"
        f"<td>{_install_lines(base_url + '/simple/')}</td></tr>"
    ]
    for name, profile in sorted(settings.profiles.items()):
        if profile.hw is not None:
            what = f"<code>hw = {escape(profile.hw)}</code>"
        else:
            what = "".join(f"<code>{escape(p)}</code> " for p in profile.properties or ())
        rows.append(
            f'<tr data-profile="{escape(name)}"><td><strong>{escape(name)}</strong></td>'
            f"<td>{what}</td><td>{_install_lines(f'{base_url}/p/{name}/simple/')}</td></tr>"
        )
    return (
        "<table><thead><tr><th>profile</th><th>fingerprint</th><th>install with</th></tr>"
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _clients(settings: Settings) -> str:
    if not settings.clients:
        return '<p class="empty">No client rules: clients are known by their requests only.</p>'
    rows = "".join(
        f"<tr><td><code>{escape(str(rule.network))}</code></td><td>{escape(rule.profile)}</td></tr>"
        for rule in settings.clients
    )
    return (
        "<table><thead><tr><th>network</th><th>profile</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def render_status(view: StatusView, now: float | None = None) -> str:
    now = time.time() if now is None else now
    page, css = _template()
    failing = [u for u in view.upstreams if u.answering is False]
    offline = view.settings.offline
    health = "degraded" if failing else "ok"
    return page.substitute(
        css=css,
        version=escape(__version__),
        uptime=_duration(now - view.started_at),
        cache_dir=escape(view.cache.directory),
        health=f"{health}, offline: serving the cache only" if offline else health,
        health_class="bad" if failing else "ok",
        upstreams=_upstreams(view.upstreams, now, offline),
        cache=_cache(view.cache),
        downloads=_downloads(view.downloads),
        profiles=_profiles(view.settings, view.base_url),
        clients=_clients(view.settings),
        errors=_errors(view.errors),
    )


async def status_handler(request: web.Request) -> web.Response:
    from proxy.server.state import STATE

    state = request.app[STATE]
    counters = state.upstream_counters
    stats = state.store.stats
    view = StatusView(
        base_url=f"{request.scheme}://{request.host}",
        started_at=state.started_at,
        upstreams=await state.upstream_watch.statuses(),
        cache=CacheFigures(
            directory=str(state.settings.cache_dir),
            size=stats.total_bytes,
            limit=state.settings.max_size,
            files=stats.file_count,
            page_hits=counters.page_hits,
            page_misses=counters.page_misses,
            file_hits=state.metrics.file_hits,
            file_misses=state.metrics.file_misses,
        ),
        downloads=state.download_watch.snapshot(),
        errors=state.recent_errors.newest_first(),
        settings=state.settings,
    )
    return web.Response(
        text=render_status(view),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )
