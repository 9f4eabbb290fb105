"""The legacy view (pure): CONTRACT.md "What a legacy client is shown", rules 1-7.

Per version with variant wheels, in named steps:

1. `rank_candidates`: compatible variant wheels in PEP 825 order (ties by label), then the
   null variant, then non-variant wheels; incompatible variants are out (rule 1, 2).
2. `select_listed`: walking best rank first, a wheel is listed unless an already-listed,
   non-yanked wheel of a strictly better rank covers it (installs wherever it does, and its
   `requires-python` does not narrow); two candidates never share a shown name, a yanked one
   giving way to a non-yanked one (rules 3, 4).
3. sdists are listed, variants.json and every other wheel are left out (rule 4).

With no fingerprint the page is the upstream page minus variant files (rule 7). Every
decision is recorded, so `variant-proxy explain` shows the reasoning the server used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from packaging.tags import Tag

from proxy.simple.filenames import NULL_VARIANT_LABEL, WheelName
from proxy.simple.model import DistFile, ProjectPage
from proxy.variants import views
from proxy.variants.coverage import expand_tags, requires_python_admits, tags_cover
from proxy.variants.properties import VariantProperty

NO_FINGERPRINT = "no fingerprint: the page is the upstream page minus variant files"
VARIANTS_JSON_LEFT_OUT = "variants.json is not shown to legacy clients"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A wheel that a PEP 825 installer with this fingerprint may pick, with its rank."""

    position: int  # in the upstream page
    dist: DistFile
    wheel: WheelName
    rank: int  # 0 is the best
    rank_name: str
    tags: frozenset[Tag]

    @property
    def shown_name(self) -> str:
        return self.wheel.legacy_filename

    @property
    def yanked(self) -> bool:
        return self.dist.yanked is not False

    def covers(self, other: Candidate) -> bool:
        """Rule 3: this wheel installs wherever `other` does, for every Python it admits."""
        return (
            self.rank < other.rank
            and not self.yanked
            and tags_cover(self.tags, other.tags)
            and requires_python_admits(self.dist.requires_python, other.dist.requires_python)
        )


def _rank_name(label: str | None, place: int, compatible: int) -> str:
    if label is None:
        return "non-variant"
    if label == NULL_VARIANT_LABEL:
        return "the null variant"
    return f"variant {label!r} (#{place} of {compatible})"


def rank_candidates(
    items: Sequence[tuple[int, views.Classified]],
    ordered: Sequence[str],
    reasons: Mapping[str, str],
) -> tuple[list[Candidate], dict[int, views.FileDecision]]:
    """Step 1: the candidates, best rank first, and the decisions on incompatible variants."""
    rank_of = {label: rank for rank, label in enumerate(ordered)}
    non_variant = len(ordered)
    candidates: list[Candidate] = []
    decisions: dict[int, views.FileDecision] = {}
    for position, item in items:
        wheel = item.wheel
        if wheel is None:
            continue
        label = wheel.variant_label
        if label is not None and label not in rank_of:
            reason = reasons.get(label, "not compatible")
            decisions[position] = views.FileDecision(
                item.dist.filename, None, f"incompatible: {reason}"
            )
            continue
        rank = non_variant if label is None else rank_of[label]
        name = _rank_name(label, rank + 1, len(ordered))
        tags = expand_tags(wheel.python_tag, wheel.abi_tag, wheel.platform_tag)
        candidates.append(Candidate(position, item.dist, wheel, rank, name, tags))
    candidates.sort(key=lambda candidate: (candidate.rank, candidate.position))
    return candidates, decisions


def _listed_reason(candidate: Candidate) -> str:
    return f"{candidate.rank_name}: no better-ranked wheel installs wherever it does"


def select_listed(candidates: Sequence[Candidate]) -> tuple[dict[int, Candidate], dict[int, str]]:
    """Step 2: which candidates are listed (by page position), and why each other one is not."""
    listed: dict[str, Candidate] = {}  # shown name -> the candidate listed under it
    left_out: dict[int, str] = {}
    for candidate in candidates:
        coverer = next((wheel for wheel in listed.values() if wheel.covers(candidate)), None)
        if coverer is not None:
            left_out[candidate.position] = (
                f"replaced by {coverer.rank_name} ({coverer.dist.filename}): it installs "
                "wherever this one does"
            )
            continue
        holder = listed.get(candidate.shown_name)
        if holder is None:
            listed[candidate.shown_name] = candidate
        elif holder.yanked and not candidate.yanked:
            listed[candidate.shown_name] = candidate
            left_out[holder.position] = (
                f"yanked, and {candidate.dist.filename} ({candidate.rank_name}) is shown under "
                "its name"
            )
        else:
            left_out[candidate.position] = (
                f"{holder.dist.filename} ({holder.rank_name}) is shown under the same name"
            )
    return {candidate.position: candidate for candidate in listed.values()}, left_out


def _tie_safe_order(listed: Mapping[int, Candidate]) -> dict[int, DistFile]:
    """The listed wheels, renamed, on the page positions they occupy, worst rank first.

    Where two listed wheels share pip's most preferred tag in some environment (a plain
    `py2.py3-none-any` and a `py3-none-any` variant on Python 3), pip ranks them equal and
    takes the last one on the page (its resolver walks the stable-sorted candidates in
    reverse); putting better ranks later makes that the one a PEP 825 installer takes.
    """
    by_rank = sorted(listed.values(), key=lambda c: (-c.rank, c.position))
    return {
        position: replace(candidate.dist, filename=candidate.shown_name)
        if candidate.shown_name != candidate.dist.filename
        else candidate.dist
        for position, candidate in zip(sorted(listed), by_rank, strict=True)
    }


def _version_view(
    items: Sequence[tuple[int, views.Classified]],
    info: views.VersionVariants | None,
    fingerprint: Sequence[VariantProperty],
) -> tuple[dict[int, DistFile], views.VersionDecision]:
    """Rules 1-4 for one version: shown names by page position, and the decisions."""
    labels = {
        item.wheel.variant_label
        for _, item in items
        if item.wheel is not None and item.wheel.variant_label is not None
    }
    ordered, reasons, problem = views.compatible_labels(info, fingerprint, labels)
    candidates, decisions = rank_candidates(items, ordered, reasons)
    listed, left_out = select_listed(candidates)
    shown = _tie_safe_order(listed)
    for candidate in candidates:
        if candidate.position in listed:
            decisions[candidate.position] = views.FileDecision(
                candidate.dist.filename, candidate.shown_name, _listed_reason(candidate)
            )
        else:
            reason = left_out[candidate.position]
            decisions[candidate.position] = views.FileDecision(
                candidate.dist.filename, None, reason
            )
    for position, item in items:
        if item.variants_json:
            decisions[position] = views.FileDecision(
                item.dist.filename, None, VARIANTS_JSON_LEFT_OUT
            )
        elif item.wheel is None:
            shown[position] = item.dist
            decisions[position] = views.FileDecision(
                item.dist.filename, item.dist.filename, "sdist"
            )
    ranked = tuple(
        views.RankedWheel(c.dist.filename, c.rank, c.rank_name, c.position in listed)
        for c in candidates
    )
    decision = views.VersionDecision(
        version=items[0][1].version_key or "",
        ranking=ordered,
        winner=ordered[0] if ordered else None,
        files=tuple(decisions[position] for position, _ in items),
        problem=problem,
        candidates=ranked,
    )
    return shown, decision


def _unknown_client_view(
    items: Sequence[tuple[int, views.Classified]],
) -> tuple[dict[int, DistFile], views.VersionDecision]:
    """Rule 7: no fingerprint, so every variant file is left out and nothing is renamed."""
    shown: dict[int, DistFile] = {}
    decisions: list[views.FileDecision] = []
    for position, item in items:
        filename = item.dist.filename
        if item.variants_json:
            decisions.append(views.FileDecision(filename, None, VARIANTS_JSON_LEFT_OUT))
        elif item.wheel is not None and item.wheel.is_variant:
            decisions.append(views.FileDecision(filename, None, NO_FINGERPRINT))
        else:
            shown[position] = item.dist
            decisions.append(views.FileDecision(filename, filename, "not a variant file"))
    version = items[0][1].version_key or ""
    return shown, views.VersionDecision(version, (), None, tuple(decisions))


def legacy_view(
    page: ProjectPage,
    variants: Mapping[str, views.VersionVariants],
    fingerprint: Sequence[VariantProperty] | None,
    classified: views.ClassifiedFiles | None = None,
) -> views.View:
    """What an unmodified installer is shown; `fingerprint` None means nothing is known."""
    shown: dict[int, DistFile] = {}
    decisions: list[views.VersionDecision] = []
    for version_key, items in views.group_by_version(page, classified).items():
        has_variants = any(item.wheel is not None and item.wheel.is_variant for _, item in items)
        if version_key is None or not has_variants:
            shown.update(
                (position, item.dist) for position, item in items if not item.variants_json
            )
            continue
        if fingerprint is None:
            version_shown, decision = _unknown_client_view(items)
        else:
            version_shown, decision = _version_view(items, variants.get(version_key), fingerprint)
        shown.update(version_shown)
        decisions.append(decision)
    files = tuple(shown[position] for position in sorted(shown))
    return views.View(replace(page, files=files), tuple(decisions))
