"""What the page views share (pure): the per-version variant metadata the proxy obtained, the
recorded decisions, and the grouping of a page's files by version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from proxy.simple.filenames import (
    FilenameError,
    SdistName,
    WheelName,
    normalize_version,
    parse_dist_filename,
    parse_variants_json_filename,
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
class RankedWheel:
    """A candidate of the legacy view: an upstream wheel a PEP 825 installer may pick."""

    filename: str
    rank: int  # 0 is the best
    rank_name: str
    listed: bool


@dataclass(frozen=True)
class VersionDecision:
    version: str
    ranking: tuple[str, ...]  # compatible labels, best first
    winner: str | None
    files: tuple[FileDecision, ...]
    problem: str | None = None
    candidates: tuple[RankedWheel, ...] = ()  # legacy view: best rank first


@dataclass(frozen=True)
class View:
    page: ProjectPage
    decisions: tuple[VersionDecision, ...]
    # For the native view: the labels kept per variants.json file (by its filename).
    kept_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Classified:
    dist: DistFile
    wheel: WheelName | None
    version_key: str | None  # normalised version, None for files of no known kind
    variants_json: bool = False


def classify(dist: DistFile) -> Classified:
    try:
        parsed = parse_dist_filename(dist.filename)
    except FilenameError:
        return Classified(dist, None, None)
    if isinstance(parsed, WheelName):
        return Classified(dist, parsed, normalize_version(parsed.version))
    if isinstance(parsed, SdistName):
        return Classified(dist, None, normalize_version(parsed.version))
    named = parse_variants_json_filename(dist.filename)
    if named is not None:
        return Classified(dist, None, normalize_version(named[1]), variants_json=True)
    return Classified(dist, None, None)


@dataclass(frozen=True)
class ClassifiedFiles:
    """Every file of a page classified once (one filename parse each), for every later step:
    the variant data's versions and each view's grouping. Valid for that very `files` tuple."""

    files: tuple[DistFile, ...]
    items: tuple[Classified, ...]


def classify_files(files: tuple[DistFile, ...]) -> ClassifiedFiles:
    return ClassifiedFiles(files, tuple(classify(dist) for dist in files))


def _items(page: ProjectPage, classified: ClassifiedFiles | None) -> tuple[Classified, ...]:
    """The page's classified files: the given ones when made for this page's files."""
    if classified is not None and classified.files is page.files:
        return classified.items
    return classify_files(page.files).items


def variant_versions(
    page: ProjectPage, classified: ClassifiedFiles | None = None
) -> dict[str, DistFile | None]:
    """Versions that have variant wheels, each with its listed variants.json (or None)."""
    items = _items(page, classified)
    versions: dict[str, DistFile | None] = {}
    for item in items:
        if item.wheel is not None and item.wheel.is_variant and item.version_key:
            versions.setdefault(item.version_key, None)
    for item in items:
        if item.variants_json and item.version_key in versions:
            versions[item.version_key] = item.dist
    return versions


def group_by_version(
    page: ProjectPage, classified: ClassifiedFiles | None = None
) -> dict[str | None, list[tuple[int, Classified]]]:
    """The page's files by normalised version, each with its position in the page."""
    groups: dict[str | None, list[tuple[int, Classified]]] = {}
    for position, item in enumerate(_items(page, classified)):
        groups.setdefault(item.version_key, []).append((position, item))
    return groups


def compatible_labels(
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
