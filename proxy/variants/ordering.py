"""PEP 825 compatibility and ordering of variants for a client's supported properties (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from proxy.simple.filenames import NULL_VARIANT_LABEL
from proxy.variants.model import (
    FeatureKey,
    UnknownLabelError,
    VariantDesc,
    VariantsDoc,
)
from proxy.variants.properties import VariantProperty

# --- compatibility and ordering ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreferenceOrder:
    """PEP 825 steps 1-3 for one document and one client: the ordered namespaces, the
    supported features of each, and the supported values of each feature, as ranks
    (0 = most preferred).

    Supported properties are the document's static properties, then the client's, in order:
    the first value of a feature is its most preferred, features rank by first appearance.
    `default-priorities.feature` / `.property` (when a file carries them) move the supported
    features / values they name to the front.

    PEP 825 step 3 starts a feature's value order with `default-priorities.property` as given,
    supported or not, and step 4 takes a variant's best value from that order. So a value the
    file ranks first counts as a compatible variant's best value even when the client lacks it
    (variantlib 0.2 skips such values; the PEP text is followed here). Compatibility itself
    needs a supported value (`supported`).
    """

    namespace_rank: Mapping[str, int]
    feature_rank: Mapping[FeatureKey, int]
    value_rank: Mapping[FeatureKey, Mapping[str, int]]
    supported: Mapping[FeatureKey, frozenset[str]]


def _supported_values(
    doc: VariantsDoc, supported: Iterable[VariantProperty], namespaces: Mapping[str, int]
) -> dict[FeatureKey, dict[str, None]]:
    """Supported values per feature, most preferred first: a namespace declared ahead of time
    (`static-properties`) supports exactly its static properties whatever the client sent
    (PEP 817); every other namespace what the client sent."""
    static_namespaces = doc.static_namespaces
    values_seen: dict[FeatureKey, dict[str, None]] = {}
    for prop in doc.static_properties:
        values_seen.setdefault(prop.feature_key, {})[prop.value] = None
    for prop in supported:
        if prop.namespace in namespaces and prop.namespace not in static_namespaces:
            values_seen.setdefault(prop.feature_key, {})[prop.value] = None
    return values_seen


def preference_order(doc: VariantsDoc, supported: Iterable[VariantProperty]) -> PreferenceOrder:
    """Rank the namespaces, features and values that matter to `doc` for this client."""
    ranked_namespaces = doc.ranked_namespaces
    namespace_rank = {namespace: i for i, namespace in enumerate(ranked_namespaces)}
    values_seen = _supported_values(doc, supported, namespace_rank)

    feature_rank: dict[FeatureKey, int] = {}
    for namespace in ranked_namespaces:
        features = [feature for ns, feature in values_seen if ns == namespace]
        preferred = [f for f in doc.feature_priorities.get(namespace, ()) if f in features]
        ordered = preferred + [f for f in features if f not in preferred]
        feature_rank.update(((namespace, f), i) for i, f in enumerate(ordered))

    value_rank: dict[FeatureKey, Mapping[str, int]] = {}
    for key, values in values_seen.items():
        preferred = list(doc.property_priorities.get(key, ()))
        ordered = preferred + [v for v in values if v not in preferred]
        value_rank[key] = {v: i for i, v in enumerate(ordered)}

    supported_sets = {key: frozenset(values) for key, values in values_seen.items()}
    return PreferenceOrder(namespace_rank, feature_rank, value_rank, supported_sets)


@dataclass(frozen=True, slots=True)
class RankedProperty:
    """The best supported value of one feature of a variant, with its PEP 825 sort key."""

    rank: tuple[int, int, int]  # namespace, feature, value positions
    prop: VariantProperty

    def __str__(self) -> str:
        namespace, feature, value = (position + 1 for position in self.rank)
        return f"{self.prop} (namespace #{namespace}, feature #{feature}, value #{value})"


# Sorts after every (namespace, feature, value) rank: ends a variant's key, so that of two
# variants whose keys agree until one runs out, the one with more properties sorts first.
_END_OF_KEY = (float("inf"),)


# One feature's best supported value in a variant: (its rank, namespace, feature, value).
_RankedEntry = tuple[tuple[int, int, int], str, str, str]


@dataclass(frozen=True, slots=True)
class VariantSortKey:
    """A compatible variant's best-value properties in ascending rank (PEP 825 steps 4-6)."""

    label: str
    entries: tuple[_RankedEntry, ...]

    @property
    def properties(self) -> tuple[RankedProperty, ...]:
        return tuple(
            RankedProperty(rank, VariantProperty(namespace, feature, value))
            for rank, namespace, feature, value in self.entries
        )

    def sort_tuple(self) -> tuple[tuple[tuple[float, ...], ...], str]:
        ranks: tuple[tuple[float, ...], ...] = tuple(entry[0] for entry in self.entries)
        return (*ranks, _END_OF_KEY), self.label

    def __str__(self) -> str:
        if not self.entries:
            return "no properties (the null variant, always compatible, ranked last)"
        return "; ".join(str(p) for p in self.properties)


@dataclass(frozen=True, slots=True)
class Ranking:
    """Compatible labels best first (`null` last when present) and why the others are out."""

    ordered: tuple[str, ...]
    incompatible: Mapping[str, str]
    sort_keys: Mapping[str, VariantSortKey]

    @property
    def best(self) -> str | None:
        return self.ordered[0] if self.ordered else None

    def explain(self, label: str) -> str:
        """One line: the label's place and sort key, or why it is incompatible."""
        if label in self.sort_keys:
            position = self.ordered.index(label) + 1
            return f"#{position} {label}: {self.sort_keys[label]}"
        if label in self.incompatible:
            return f"{label}: incompatible: {self.incompatible[label]}"
        raise UnknownLabelError(f"variant label {label!r} is not in the variant metadata")


def _sort_key(label: str, desc: VariantDesc, order: PreferenceOrder) -> VariantSortKey | str:
    """The variant's sort key, or the reason it is incompatible."""
    entries: list[_RankedEntry] = []
    value_ranks = order.value_rank
    for key, values in desc.items():
        ranks = value_ranks.get(key, {})
        supported = order.supported.get(key, frozenset())
        best_rank = -1
        best_value = ""
        for value in values:
            rank = ranks.get(value, -1)
            if rank >= 0 and (best_rank < 0 or rank < best_rank):
                best_rank, best_value = rank, value
        namespace, feature = key
        if supported.isdisjoint(values):
            return (
                f"no supported value for {namespace} :: {feature} "
                f"(the variant needs one of: {', '.join(values)})"
            )
        rank_key = (order.namespace_rank[namespace], order.feature_rank[key], best_rank)
        entries.append((rank_key, namespace, feature, best_value))
    entries.sort()
    return VariantSortKey(label, tuple(entries))


def rank_variants(doc: VariantsDoc, supported: Sequence[VariantProperty]) -> Ranking:
    """Filter and order the document's variants for a client, exactly as PEP 825 orders them.

    A variant is compatible when every feature it lists has a supported value (the null
    variant always is). Compatible variants sort by their best-value properties; a variant
    whose key is a prefix of another's sorts after it; equal keys fall back to the label.
    """
    order = preference_order(doc, supported)
    keys: list[VariantSortKey] = []
    incompatible: dict[str, str] = {}
    for label, desc in doc.variants.items():
        if label == NULL_VARIANT_LABEL:
            continue
        outcome = _sort_key(label, desc, order)
        if isinstance(outcome, str):
            incompatible[label] = outcome
        else:
            keys.append(outcome)
    keys.sort(key=VariantSortKey.sort_tuple)
    if doc.has_null_variant:
        keys.append(VariantSortKey(NULL_VARIANT_LABEL, ()))
    return Ranking(
        ordered=tuple(key.label for key in keys),
        incompatible=MappingProxyType(incompatible),
        sort_keys=MappingProxyType({key.label: key for key in keys}),
    )


def best_variant(doc: VariantsDoc, supported: Sequence[VariantProperty]) -> str | None:
    """The most preferred compatible label (`null` when only it fits), or None."""
    return rank_variants(doc, supported).best


def incompatibility(
    doc: VariantsDoc, label: str, supported: Sequence[VariantProperty]
) -> str | None:
    """Why `label` is incompatible with `supported` (one line), or None when it is compatible."""
    if label == NULL_VARIANT_LABEL:
        return None
    desc = doc.variants.get(label)
    if desc is None:
        raise UnknownLabelError(f"variant label {label!r} is not in the variant metadata")
    outcome = _sort_key(label, desc, preference_order(doc, supported))
    return outcome if isinstance(outcome, str) else None
