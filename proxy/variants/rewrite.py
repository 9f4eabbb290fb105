"""Page rewriting (pure): (project page, variants metadata, fingerprint) -> the page to serve.

`legacy_view` (proxy/variants/legacy.py) applies CONTRACT.md "What a legacy client is shown".
`native_view` keeps PEP 825 names and lists only compatible variants plus the variants.json,
subset to exactly the labels listed. Each decision is recorded so `variant-proxy explain`
shows the same reasoning the server used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.legacy import legacy_view
from proxy.variants.properties import VariantProperty
from proxy.variants.views import (
    Classified,
    ClassifiedFiles,
    FileDecision,
    RankedWheel,
    VersionDecision,
    VersionVariants,
    View,
    classify_files,
    compatible_labels,
    group_by_version,
    variant_versions,
)

__all__ = [
    "ClassifiedFiles",
    "FileDecision",
    "RankedWheel",
    "VersionDecision",
    "VersionVariants",
    "View",
    "classify_files",
    "legacy_view",
    "native_view",
    "variant_versions",
]


def _labels_without_fingerprint(
    info: VersionVariants | None, labels: set[str]
) -> tuple[tuple[str, ...], dict[str, str], str | None]:
    """Nothing known about the client: every described label is listed."""
    if info is None or info.doc is None:
        problem = info.problem if info is not None and info.problem else "no variants.json"
        return (), {}, problem
    known = set(info.doc.variants)
    reasons = {label: "label not in variants.json" for label in labels - known}
    return tuple(sorted(labels & known)), reasons, None


def _native_version(
    items: Sequence[tuple[int, Classified]],
    info: VersionVariants | None,
    fingerprint: Sequence[VariantProperty] | None,
) -> tuple[set[int], set[str], VersionDecision]:
    """One version of the native view: kept page positions, listed labels, the decision."""
    labels = {
        item.wheel.variant_label
        for _, item in items
        if item.wheel is not None and item.wheel.variant_label is not None
    }
    if fingerprint is None:
        ordered, reasons, problem = _labels_without_fingerprint(info, labels)
    else:
        ordered, reasons, problem = compatible_labels(info, fingerprint, labels)
    keep: set[int] = set()
    listed_labels: set[str] = set()
    decisions: list[FileDecision] = []
    for position, item in items:
        wheel = item.wheel
        if item.variants_json:
            continue
        if wheel is None or wheel.variant_label is None:
            keep.add(position)
        elif wheel.variant_label in ordered:
            keep.add(position)
            listed_labels.add(wheel.variant_label)
            filename = item.dist.filename
            decisions.append(FileDecision(filename, filename, "compatible variant"))
        else:
            reason = reasons.get(wheel.variant_label, "not compatible")
            decisions.append(FileDecision(item.dist.filename, None, reason))
    version = items[0][1].version_key or ""
    winner = ordered[0] if ordered else None
    return keep, listed_labels, VersionDecision(version, ordered, winner, tuple(decisions), problem)


def _variants_json_of(
    items: Sequence[tuple[int, Classified]], info: VersionVariants | None
) -> tuple[int | None, DistFile | None]:
    """A version's variants.json: the listed one (with its page position), else one the
    proxy built from the wheels' own metadata (no position), else none."""
    for position, item in items:
        if item.variants_json:
            return position, item.dist
    return None, (info.source if info else None)


def native_view(
    page: ProjectPage,
    variants: Mapping[str, VersionVariants],
    fingerprint: Sequence[VariantProperty] | None,
    classified: ClassifiedFiles | None = None,
) -> View:
    """The PEP 825 view: incompatible variants left out when a fingerprint is known."""
    keep: set[int] = set()
    decisions: list[VersionDecision] = []
    kept_labels: dict[str, tuple[str, ...]] = {}
    extra_files: list[DistFile] = []
    for version_key, items in group_by_version(page, classified).items():
        has_variants = any(item.wheel is not None and item.wheel.is_variant for _, item in items)
        if version_key is None or not has_variants:
            keep.update(position for position, item in items if not item.variants_json)
            continue
        info = variants.get(version_key)
        version_keep, listed_labels, decision = _native_version(items, info, fingerprint)
        keep.update(version_keep)
        decisions.append(decision)
        listed, source = _variants_json_of(items, info)
        if source is not None and listed_labels:
            kept_labels[source.filename] = tuple(sorted(listed_labels))
            if listed is not None:
                keep.add(listed)
            else:
                extra_files.append(source)
    files = tuple(d for position, d in enumerate(page.files) if position in keep)
    return View(replace(page, files=files + tuple(extra_files)), tuple(decisions), kept_labels)
