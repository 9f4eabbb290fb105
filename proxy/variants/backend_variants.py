"""Backend indexes as variants (pure): which build each public version is shown from.

A backend is a per-build index (PyTorch's `whl/cu128/`) standing for one variant: its label
is the backend's name (the null variant when it has no properties) and its properties are
the backend's. Nothing here is a second selection engine:

- `rank_backends` orders the backends for a client with the PEP 825 ordering of
  `proxy.variants.metadata` over a synthesised variants.json (namespaces by first
  appearance in `[[backends]]`); only exact ties fall back to the entry order.
- `choose_backend` picks, for one release, the best-ranked backend that has every member
  of its release set (`release_set`: the releases tied to it by the build pins of the
  members' own `Requires-Dist`), so torch and torchvision always come from one build.
- `synthesize` turns the chosen backend's files into variant wheels of the public version
  (`torch-2.7.0+cu128-cp312-...whl` -> `torch-2.7.0-cp312-...-cu128.whl`) with a
  variants.json of their own, so the ordinary legacy view ranks them above the upstreams'
  own (non-variant) files and applies its tag coverage; `restore_names` then gives every
  listed backend file its real name back (pip checks the name against the metadata).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from proxy.simple.filenames import (
    NULL_VARIANT_LABEL,
    FilenameError,
    WheelName,
    normalize_version,
    parse_dist_filename,
)
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.variants.metadata import VariantDesc, VariantsDoc, rank_variants
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import FileDecision, VersionVariants, View

# Schema URL of the variants.json documents synthesised here (never served).
SYNTHESISED_SCHEMA = "variant-proxy:backend-indexes/v0.1.0"


@dataclass(frozen=True, slots=True)
class Backend:
    """One `[[backends]]` entry as the pure core sees it."""

    name: str
    properties: tuple[VariantProperty, ...]
    projects: frozenset[NormalizedName] = frozenset()

    @property
    def label(self) -> str:
        return self.name if self.properties else NULL_VARIANT_LABEL


@dataclass(frozen=True, slots=True, order=True)
class Release:
    """A project at a public version (local label dropped), both normalised."""

    project: str
    version: str

    def __str__(self) -> str:
        return f"{self.project} {self.version}"


def split_version(text: str) -> tuple[str, str | None]:
    """`2.7.0+cu128` -> (`2.7.0`, `cu128`); a non-PEP 440 version is kept as it is."""
    try:
        version = Version(text)
    except InvalidVersion:
        return normalize_version(text), None
    return normalize_version(version.public), version.local


def file_release(project: str, dist: DistFile) -> tuple[Release, str | None, WheelName | None]:
    """A listed file's release, local label and parsed wheel name (None for other files);
    raises FilenameError for a file of no known kind."""
    parsed = parse_dist_filename(dist.filename)
    if parsed is None:
        raise FilenameError(f"not a distribution: {dist.filename!r}")
    public, local = split_version(parsed.version)
    return Release(project, public), local, parsed if isinstance(parsed, WheelName) else None


def releases_of(project: str, page: ProjectPage) -> dict[Release, list[DistFile]]:
    """The page's wheels grouped by public version (other files are left out)."""
    grouped: dict[Release, list[DistFile]] = {}
    for dist in page.files:
        try:
            release, _local, wheel = file_release(project, dist)
        except FilenameError:
            continue
        if wheel is not None:
            grouped.setdefault(release, []).append(dist)
    return grouped


# --- ranking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendRanking:
    """Compatible backends, best first (the null variant last), and why the others are out."""

    ordered: tuple[str, ...]
    incompatible: Mapping[str, str]
    # One line per compatible backend: its PEP 825 sort key (for explain).
    keys: Mapping[str, str] = field(default_factory=dict)


def backend_doc(backends: Sequence[Backend]) -> VariantsDoc:
    """The variants.json that describes the backends as variants of one release."""
    namespaces = dict.fromkeys(p.namespace for b in backends for p in b.properties)
    return VariantsDoc(
        schema=SYNTHESISED_SCHEMA,
        schema_version=(0, 1, 0),
        namespace_priorities=tuple(namespaces) or ("backend",),
        variants=MappingProxyType(
            {b.label: VariantDesc.from_properties(b.properties) for b in backends}
        ),
    )


def rank_backends(
    backends: Sequence[Backend], supported: Sequence[VariantProperty]
) -> BackendRanking:
    """PEP 825 order of the backends for a client; exact ties keep the `[[backends]]` order."""
    ranking = rank_variants(backend_doc(backends), supported)
    position = {b.label: i for i, b in enumerate(backends)}
    by_label = {b.label: b.name for b in backends}
    labels = sorted(
        ranking.ordered,
        key=lambda label: (
            label == NULL_VARIANT_LABEL,
            ranking.sort_keys[label].sort_tuple()[0],
            position[label],
        ),
    )
    return BackendRanking(
        ordered=tuple(by_label[label] for label in labels),
        incompatible=MappingProxyType(
            {by_label[label]: why for label, why in ranking.incompatible.items()}
        ),
        keys=MappingProxyType(
            {by_label[label]: str(ranking.sort_keys[label]) for label in ranking.ordered}
        ),
    )


# --- release sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """What one backend lists of its projects: releases (public versions, with whether a
    local label marks them as builds of their own) and the build pins between them."""

    name: str
    releases: Mapping[Release, bool]  # release -> carries a local version label
    pins: Mapping[Release, frozenset[Release]] = field(default_factory=dict)


def build_pins(requires_dist: Iterable[str], projects: Iterable[str]) -> list[tuple[Release, bool]]:
    """The `name==version` pins of `Requires-Dist` lines that name one of `projects`, with
    whether the pin carries a local label; lines under an extra are not requirements of the
    build."""
    wanted = set(projects)
    pins: list[tuple[Release, bool]] = []
    for line in requires_dist:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        if name not in wanted or (requirement.marker and "extra" in str(requirement.marker)):
            continue
        exact = [spec for spec in requirement.specifier if spec.operator == "=="]
        if len(exact) != 1 or exact[0].version.endswith(".*"):
            continue
        public, local = split_version(exact[0].version)
        pins.append((Release(name, public), local is not None))
    return pins


def make_catalogue(
    name: str,
    releases: Mapping[Release, bool],
    requires_dist: Mapping[Release, Sequence[str]],
    projects: Iterable[str],
) -> Catalogue:
    """A backend's catalogue. A pin ties two releases when it names a build: it carries a
    local label (`torch==2.7.0+cu128`), or the pinned release is one in this backend
    (`torch 2.7.0+cu128`). A pin of a release published once for every build (triton) ties
    nothing."""
    wanted = tuple(projects)
    pins: dict[Release, frozenset[Release]] = {}
    for release, lines in requires_dist.items():
        tied = frozenset(
            target
            for target, local in build_pins(lines, wanted)
            if target != release and (local or releases.get(target, False))
        )
        if tied:
            pins[release] = tied
    return Catalogue(name, MappingProxyType(dict(releases)), MappingProxyType(pins))


def release_set(anchor: Release, catalogues: Iterable[Catalogue]) -> frozenset[Release]:
    """The releases tied to `anchor` by build pins in any backend (both directions), among
    those some backend lists: a release only the upstreams have holds nothing back."""
    listed: set[Release] = set()
    neighbours: dict[Release, set[Release]] = {}
    for catalogue in catalogues:
        listed.update(catalogue.releases)
        for source, targets in catalogue.pins.items():
            for target in targets:
                neighbours.setdefault(source, set()).add(target)
                neighbours.setdefault(target, set()).add(source)
    members = {anchor}
    frontier = [anchor]
    while frontier:
        for neighbour in neighbours.get(frontier.pop(), ()):
            if neighbour not in members and neighbour in listed:
                members.add(neighbour)
                frontier.append(neighbour)
    return frozenset(members)


@dataclass(frozen=True)
class BackendChoice:
    """The backend one release is shown from, and why each better one was passed over."""

    release: Release
    backend: str | None
    reason: str
    passed_over: Mapping[str, str]
    members: tuple[Release, ...] = ()


def choose_backend(
    anchor: Release, ranking: BackendRanking, catalogues: Mapping[str, Catalogue]
) -> BackendChoice:
    """The best-ranked compatible backend that has the whole release set of `anchor`; when
    none has it all, the best one that has `anchor` (said so in the reason)."""
    members = release_set(anchor, catalogues.values())
    others = tuple(sorted(members - {anchor}))
    passed: dict[str, str] = dict(ranking.incompatible)
    having: list[str] = []
    for name in ranking.ordered:
        catalogue = catalogues.get(name)
        if catalogue is None or anchor not in catalogue.releases:
            passed[name] = f"has no {anchor}"
            continue
        having.append(name)
        missing = [str(m) for m in others if m not in catalogue.releases]
        if missing:
            passed[name] = f"lacks {', '.join(missing)} of the release set"
            continue
        together = f" with {', '.join(map(str, others))}" if others else ""
        return BackendChoice(anchor, name, f"best compatible build{together}", passed, others)
    if having:
        return BackendChoice(
            anchor,
            having[0],
            f"no compatible build has the whole release set: the best one that has {anchor}",
            passed,
            others,
        )
    return BackendChoice(anchor, None, "no compatible build has it", passed, others)


# --- the synthesised page -------------------------------------------------------------------


@dataclass(frozen=True)
class Synthesised:
    """The page and variants the legacy view is given, and the real names to restore."""

    page: ProjectPage
    variants: Mapping[str, VersionVariants]
    real_names: Mapping[str, str]  # file URL -> its real file name
    internal_names: Mapping[str, str] = field(default_factory=dict)  # synthesised -> real


def synthesize(
    page: ProjectPage,
    chosen: Mapping[Release, tuple[Backend, Sequence[DistFile]]],
) -> Synthesised:
    """`page` (the upstreams' own files) plus, per release, the chosen backend's wheels as
    variant wheels of the public version, each release with a variants.json of its own."""
    files = list(page.files)
    variants: dict[str, VersionVariants] = {}
    real_names: dict[str, str] = {}
    internal_names: dict[str, str] = {}
    for release, (backend, dists) in chosen.items():
        for dist in dists:
            parsed = parse_dist_filename(dist.filename)
            if not isinstance(parsed, WheelName):
                continue
            public, _local = split_version(parsed.version)
            internal = replace(parsed, version=public, variant_label=backend.label)
            files.append(replace(dist, filename=internal.filename))
            real_names[dist.url] = dist.filename
            internal_names[internal.filename] = dist.filename
        variants[release.version] = VersionVariants(backend_doc([backend]))
    versions = page.versions
    if versions is not None:
        known = set(versions)
        added = [r.version for r in chosen if r.version not in known]
        versions = (*versions, *dict.fromkeys(added))
    return Synthesised(
        replace(page, files=tuple(files), versions=versions), variants, real_names, internal_names
    )


def restore_names(view: View, synthesised: Synthesised) -> View:
    """The view with every backend file under its real name (`+cu128` kept), on the page
    and in the recorded decisions."""
    real_names = synthesised.real_names
    internal = synthesised.internal_names
    page = replace(
        view.page,
        files=tuple(
            replace(dist, filename=real_names[dist.url]) if dist.url in real_names else dist
            for dist in view.page.files
        ),
    )
    decisions = tuple(
        replace(
            decision,
            files=tuple(
                FileDecision(
                    internal[item.filename],
                    internal[item.filename] if item.shown_as else None,
                    item.reason,
                )
                if item.filename in internal
                else item
                for item in decision.files
            ),
        )
        for decision in view.decisions
    )
    return View(page, decisions, view.kept_labels)
