"""Page rewriting (pure): (project page, variants metadata, fingerprint) -> the page to serve.

`legacy_view` applies CONTRACT.md "What a legacy client is shown": per version, the best
compatible variant's wheels under their legacy names, the sdists, and the non-variant wheels
that no shown variant wheel replaces. `native_view` keeps PEP 825 names and lists only
compatible variants plus the variants.json, subset to exactly the labels listed.
Each decision is recorded so `variant-proxy explain` shows the same reasoning the server used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from proxy.simple.filenames import (
    FilenameError,
    SdistName,
    WheelName,
    normalize_version,
    parse_dist_filename,
    parse_variants_json_filename,
    wheel_tags_key,
)
from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.metadata import VariantsDoc, rank_variants
from proxy.variants.properties import VariantProperty


@dataclass(frozen=True)
class VersionVariants:
    """A version's variants.json as the proxy obtained it: a doc, or why there is none."""

    doc: VariantsDoc | None
    problem: str | None = None
    source: DistFile | None = None  # the listed variants.json file, when there is one


@dataclass(frozen=True)
class FileDecision:
    filename: str
    shown_as: str | None  # the name on the served page, None when left out
    reason: str


@dataclass(frozen=True)
class VersionDecision:
    version: str
    ranking: tuple[str, ...]  # compatible labels, best first
    winner: str | None
    files: tuple[FileDecision, ...]
    problem: str | None = None


@dataclass(frozen=True)
class View:
    page: ProjectPage
    decisions: tuple[VersionDecision, ...]
    # For the native view: the labels kept per variants.json file (by its filename).
    kept_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Classified:
    dist: DistFile
    wheel: WheelName | None
    version_key: str | None  # normalised version, None for files of no known kind
    variants_json: bool = False


def _classify(dist: DistFile) -> _Classified:
    try:
        parsed = parse_dist_filename(dist.filename)
    except FilenameError:
        return _Classified(dist, None, None)
    if isinstance(parsed, WheelName):
        return _Classified(dist, parsed, normalize_version(parsed.version))
    if isinstance(parsed, SdistName):
        return _Classified(dist, None, normalize_version(parsed.version))
    named = parse_variants_json_filename(dist.filename)
    if named is not None:
        return _Classified(dist, None, normalize_version(named[1]), variants_json=True)
    return _Classified(dist, None, None)


def variant_versions(page: ProjectPage) -> dict[str, DistFile | None]:
    """Versions that have variant wheels, each with its listed variants.json (or None)."""
    classified = [_classify(d) for d in page.files]
    versions: dict[str, DistFile | None] = {}
    for item in classified:
        if item.wheel is not None and item.wheel.is_variant and item.version_key:
            versions.setdefault(item.version_key, None)
    for item in classified:
        if item.variants_json and item.version_key in versions:
            versions[item.version_key] = item.dist
    return versions


def _group(page: ProjectPage) -> dict[str | None, list[_Classified]]:
    groups: dict[str | None, list[_Classified]] = {}
    for dist in page.files:
        item = _classify(dist)
        groups.setdefault(item.version_key, []).append(item)
    return groups


def _ranking(
    info: VersionVariants | None, supported: Sequence[VariantProperty], labels_present: set[str]
) -> tuple[tuple[str, ...], dict[str, str], str | None]:
    """Compatible labels (best first) among those present, reasons for the rest, a problem."""
    if info is None or info.doc is None:
        problem = (
            info.problem
            if info is not None and info.problem
            else "no variants.json for this version"
        )
        return (), {label: problem for label in labels_present}, problem
    ranking = rank_variants(info.doc, supported)
    reasons = dict(ranking.incompatible)
    for label in labels_present:
        if label not in info.doc.variants:
            reasons[label] = "label not in variants.json"
    ordered = tuple(label for label in ranking.ordered if label in labels_present)
    return ordered, reasons, None


def legacy_view(
    page: ProjectPage,
    variants: Mapping[str, VersionVariants],
    fingerprint: Sequence[VariantProperty] | None,
) -> View:
    """What an unmodified installer is shown; `fingerprint` None means nothing is known."""
    shown: list[DistFile] = []
    decisions: list[VersionDecision] = []
    kept_names: dict[int, str] = {}  # index in page.files -> shown name
    index_of = {id(dist): position for position, dist in enumerate(page.files)}
    for version_key, items in _group(page).items():
        variant_items = [i for i in items if i.wheel is not None and i.wheel.is_variant]
        if version_key is None or not variant_items:
            for item in items:
                if not item.variants_json:
                    kept_names[index_of[id(item.dist)]] = item.dist.filename
            continue
        file_decisions: list[FileDecision] = []
        labels = {i.wheel.variant_label for i in variant_items if i.wheel and i.wheel.variant_label}
        if fingerprint is None:
            ordered: tuple[str, ...] = ()
            reasons = {
                label: "no fingerprint: the page is the upstream page minus variants"
                for label in labels
            }
            problem = None
        else:
            ordered, reasons, problem = _ranking(variants.get(version_key), fingerprint, labels)
        winner = ordered[0] if ordered else None
        winners = [i for i in variant_items if i.wheel and i.wheel.variant_label == winner]
        replaced_keys = {wheel_tags_key(i.wheel) for i in winners if i.wheel}
        for item in items:
            wheel = item.wheel
            position = index_of[id(item.dist)]
            if item.variants_json:
                file_decisions.append(
                    FileDecision(
                        item.dist.filename, None, "variants.json is not shown to legacy clients"
                    )
                )
            elif wheel is not None and wheel.is_variant:
                label = wheel.variant_label or ""
                if label == winner:
                    kept_names[position] = wheel.legacy_filename
                    file_decisions.append(
                        FileDecision(
                            item.dist.filename,
                            wheel.legacy_filename,
                            f"best variant (rank 1 of {len(ordered)})",
                        )
                    )
                else:
                    why = reasons.get(label) or (
                        f"compatible, ranked {ordered.index(label) + 1} of {len(ordered)}"
                        if label in ordered
                        else "not compatible"
                    )
                    file_decisions.append(FileDecision(item.dist.filename, None, why))
            elif wheel is not None and wheel_tags_key(wheel) in replaced_keys:
                file_decisions.append(
                    FileDecision(item.dist.filename, None, f"replaced by variant {winner!r}")
                )
            else:
                kept_names[position] = item.dist.filename
                file_decisions.append(
                    FileDecision(
                        item.dist.filename, item.dist.filename, "not replaced by a shown variant"
                    )
                )
        decisions.append(
            VersionDecision(version_key, ordered, winner, tuple(file_decisions), problem)
        )
    for position, dist in enumerate(page.files):
        name = kept_names.get(position)
        if name is not None:
            shown.append(dist if name == dist.filename else replace(dist, filename=name))
    return View(replace(page, files=tuple(shown)), tuple(decisions))


def native_view(
    page: ProjectPage,
    variants: Mapping[str, VersionVariants],
    fingerprint: Sequence[VariantProperty] | None,
) -> View:
    """The PEP 825 view: incompatible variants left out when a fingerprint is known."""
    keep: set[int] = set()
    decisions: list[VersionDecision] = []
    kept_labels: dict[str, tuple[str, ...]] = {}
    extra_files: list[DistFile] = []
    for version_key, items in _group(page).items():
        variant_items = [i for i in items if i.wheel is not None and i.wheel.is_variant]
        info = variants.get(version_key) if version_key is not None else None
        if version_key is None or not variant_items:
            keep.update(id(i.dist) for i in items if not i.variants_json)
            continue
        labels = {i.wheel.variant_label for i in variant_items if i.wheel and i.wheel.variant_label}
        if fingerprint is None:
            known = set(info.doc.variants) if info is not None and info.doc is not None else set()
            ordered = tuple(sorted(labels & known))
            reasons = {label: "label not in variants.json" for label in labels - known}
            problem = (
                None
                if info is not None and info.doc is not None
                else (info.problem if info is not None and info.problem else "no variants.json")
            )
        else:
            ordered, reasons, problem = _ranking(info, fingerprint, labels)
        file_decisions: list[FileDecision] = []
        listed_labels: set[str] = set()
        for item in items:
            if item.variants_json:
                continue
            wheel = item.wheel
            if wheel is not None and wheel.is_variant:
                label = wheel.variant_label or ""
                if label in ordered:
                    keep.add(id(item.dist))
                    listed_labels.add(label)
                    file_decisions.append(
                        FileDecision(item.dist.filename, item.dist.filename, "compatible variant")
                    )
                else:
                    file_decisions.append(
                        FileDecision(item.dist.filename, None, reasons.get(label, "not compatible"))
                    )
            else:
                keep.add(id(item.dist))
        # The listed variants.json, or one the proxy built from the wheels' own metadata.
        listed_source = next((i.dist for i in items if i.variants_json), None)
        source = listed_source or (info.source if info is not None else None)
        if source is not None and listed_labels:
            keep.add(id(source))
            kept_labels[source.filename] = tuple(sorted(listed_labels))
            if listed_source is None:
                extra_files.append(source)
        decisions.append(
            VersionDecision(
                version_key,
                ordered,
                ordered[0] if ordered else None,
                tuple(file_decisions),
                problem,
            )
        )
    files = tuple(d for d in page.files if id(d) in keep) + tuple(extra_files)
    return View(replace(page, files=files), tuple(decisions), kept_labels)
