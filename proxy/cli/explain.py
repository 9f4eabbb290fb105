"""`variant-proxy explain`: the server's own page decisions, told per version (pure formatting
plus one async function that runs the same code path as a page request)."""

from __future__ import annotations

from proxy.server.state import ProxyState
from proxy.simple.names import normalize_name
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.rewrite import View, legacy_view


def format_view(project: str, view: View, fingerprint: Fingerprint | None, source: str) -> str:
    lines = [f"project {project}: fingerprint from {source}"]
    if fingerprint is None:
        lines.append("  no fingerprint: legacy clients see the upstream page minus variants")
    else:
        lines.append(f"  Variant-Properties: {fingerprint.header_value() or '(empty)'}")
    if not view.decisions:
        lines.append("  no version has variant wheels: the page is served as upstream lists it")
    for decision in view.decisions:
        lines.append(f"version {decision.version}:")
        if decision.problem:
            lines.append(f"  variants unusable: {decision.problem}")
        ranking = ", ".join(f"{i + 1}. {label}" for i, label in enumerate(decision.ranking))
        lines.append(f"  ranking: {ranking or '(no compatible variant)'}")
        lines.append(f"  winner: {decision.winner or '(none)'}")
        for item in decision.files:
            mark = "+" if item.shown_as else "-"
            shown = (
                f" -> {item.shown_as}" if item.shown_as and item.shown_as != item.filename else ""
            )
            lines.append(f"  {mark} {item.filename}{shown}: {item.reason}")
    shown_files = [d.filename for d in view.page.files]
    lines.append("a legacy client is shown:")
    lines.extend(f"  {name}" for name in shown_files)
    return "\n".join(lines) + "\n"


async def explain(
    state: ProxyState, project: str, fingerprint: Fingerprint | None, source: str
) -> str:
    name = normalize_name(project)
    merged = await state.page_service.get(name)
    variants = await state.variant_metadata.for_project(merged)
    view = legacy_view(
        merged.page,
        variants.by_version,
        fingerprint.properties if fingerprint is not None else None,
    )
    return format_view(name, view, fingerprint, source)
