"""`variant-proxy explain`: the server's own page decisions, told per version (the formatting
is pure, in proxy/variants/explanation.py; this runs the same code path as a page request)."""

from __future__ import annotations

from proxy.cli.explain_backends import format_backend_section
from proxy.server.state import ProxyState
from proxy.simple.names import normalize_name
from proxy.upstreams.backend_view import backend_view
from proxy.variants.explanation import format_view
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.rewrite import legacy_view

__all__ = ["explain", "format_view"]


async def explain(
    state: ProxyState,
    project: str,
    fingerprint: Fingerprint | None,
    source: str,
    *,
    show_all: bool = False,
) -> str:
    name = normalize_name(project)
    backends = state.backends
    if fingerprint is not None and backends is not None and backends.serves(name):
        result = await backend_view(
            backends, state.page_service, state.variant_metadata, name, fingerprint
        )
        shown = format_view(name, result.view, fingerprint, source, show_all=show_all)
        return shown + format_backend_section(result.selection)
    merged = await state.page_service.get(name)
    variants = await state.variant_metadata.for_project(merged)
    view = legacy_view(
        merged.page,
        variants.by_version,
        fingerprint.properties if fingerprint is not None else None,
    )
    return format_view(name, view, fingerprint, source, upstream=merged.page, show_all=show_all)
