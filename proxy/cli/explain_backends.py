"""`variant-proxy explain`'s section on backend indexes: which build each version of a
project is shown from for the fingerprint, and why the better-ranked builds were passed
over (driver or compute capability not supported, release or family member missing)."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.backend_config import BackendSettings
from proxy.upstreams.backends import Selection
from proxy.variants.backend_variants import Backend, rank_backends
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.properties import VariantProperty
from proxy.variants.pytorch_builds import BUILTIN_BACKENDS


def format_backend_section(selection: Selection) -> str:
    ranking = selection.ranking
    lines = [f"backend indexes for {selection.project}:"]
    order = ", ".join(f"{i + 1}. {name}" for i, name in enumerate(ranking.ordered))
    lines.append(f"  ranking: {order or '(no compatible build)'}")
    for name in ranking.ordered:
        lines.append(f"    {name}: {ranking.keys.get(name, '')}")
    for name, why in ranking.incompatible.items():
        lines.append(f"  not compatible: {name}: {why}")
    for release in sorted(selection.choices, reverse=True):
        choice = selection.choices[release]
        shown = choice.backend or "the upstreams' own files"
        lines.append(f"version {release.version}: {shown} ({choice.reason})")
        for name in ranking.ordered:
            if name == choice.backend:
                break
            if name in choice.passed_over:
                lines.append(f"  {name}: {choice.passed_over[name]}")
    return "\n".join(lines) + "\n"


def detect_backend_line(fingerprint: Fingerprint, backends: Sequence[BackendSettings]) -> str:
    """`variant-proxy detect`'s line naming the backend this machine would get: among the
    configured `[[backends]]`, or PyTorch's builds of the built-in table when none are."""
    if backends:
        candidates = [
            Backend(b.name, tuple(VariantProperty.parse(p) for p in b.properties)) for b in backends
        ]
        where = "of the config's [[backends]]"
    else:
        candidates = [
            Backend(name, tuple(VariantProperty.parse(p) for p in properties))
            for name, properties in BUILTIN_BACKENDS.items()
        ]
        where = "PyTorch build, built-in table"
    ranking = rank_backends(candidates, fingerprint.properties)
    best = ranking.ordered[0] if ranking.ordered else "(none fits: the upstreams' own files)"
    return f"Backend ({where}): {best}\n"
