"""The variant metadata model (pure): one variants.json or variant.json, parsed."""

from __future__ import annotations

from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from types import MappingProxyType

from proxy.simple.filenames import NULL_VARIANT_LABEL
from proxy.variants.properties import VariantProperty

# PEP 817: properties of the installed packages an ABI depends on. Implied by every
# variants.json (ranked after the listed namespaces); supported only when a fingerprint names them.
ABI_DEPENDENCY_NAMESPACE = "abi_dependency"

# (namespace, feature name)
FeatureKey = tuple[str, str]


class VariantsJsonError(ValueError):
    """A variants.json / variant.json is malformed; `path` names the bad key."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class VariantsConflictError(ValueError):
    """Variant metadata documents cannot be combined (PEP 825 metadata consistency)."""


class UnknownLabelError(LookupError):
    """A variant label is not described by the variant metadata."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown variant label"


# --- model ---------------------------------------------------------------------------------


class VariantDesc(Mapping[FeatureKey, tuple[str, ...]]):
    """The properties of one variant label: (namespace, feature) -> its values in file order.

    A variant needs, for every feature it lists, at least one of the feature's values.
    """

    __slots__ = ("_features",)

    def __init__(self, features: Mapping[FeatureKey, Sequence[str]] | None = None) -> None:
        self._features: dict[FeatureKey, tuple[str, ...]] = {
            key: tuple(values) for key, values in (features or {}).items()
        }

    @classmethod
    def from_properties(cls, properties: Iterable[VariantProperty]) -> VariantDesc:
        grouped: dict[FeatureKey, list[str]] = {}
        for prop in properties:
            values = grouped.setdefault(prop.feature_key, [])
            if prop.value not in values:
                values.append(prop.value)
        return cls(grouped)

    def __getitem__(self, key: FeatureKey) -> tuple[str, ...]:
        return self._features[key]

    def __iter__(self) -> Iterator[FeatureKey]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def __contains__(self, key: object) -> bool:
        return key in self._features

    # The dict's own views: the Mapping mixins would go through __getitem__ per key.
    def keys(self) -> KeysView[FeatureKey]:
        return self._features.keys()

    def items(self) -> ItemsView[FeatureKey, tuple[str, ...]]:
        return self._features.items()

    def values(self) -> ValuesView[tuple[str, ...]]:
        return self._features.values()

    def __repr__(self) -> str:
        return f"VariantDesc({self._features!r})"

    @property
    def properties(self) -> tuple[VariantProperty, ...]:
        return tuple(
            VariantProperty(namespace, feature, value)
            for (namespace, feature), values in self._features.items()
            for value in values
        )

    def property_set(self) -> frozenset[VariantProperty]:
        """The properties as a set: what "the same properties" means (values are sets)."""
        return frozenset(self.properties)

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """The `variants.{label}` object of variants.json."""
        result: dict[str, dict[str, list[str]]] = {}
        for (namespace, feature), values in self._features.items():
            result.setdefault(namespace, {})[feature] = list(values)
        return result


@dataclass(frozen=True, slots=True)
class VariantsDoc:
    """A parsed variants.json or variant.json (the same structure; a wheel's lists one label)."""

    schema: str
    schema_version: tuple[int, int, int]
    namespace_priorities: tuple[str, ...]
    variants: Mapping[str, VariantDesc]
    # Draft-era overrides of the supported order; empty for PEP 825 v0.1.1 files.
    feature_priorities: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    property_priorities: Mapping[FeatureKey, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Draft-era ahead-of-time properties: supported on every system, most preferred first.
    static_properties: tuple[VariantProperty, ...] = ()

    @property
    def ranked_namespaces(self) -> tuple[str, ...]:
        """`default-priorities.namespace`, then `abi_dependency` when the file does not rank it."""
        if ABI_DEPENDENCY_NAMESPACE in self.namespace_priorities:
            return self.namespace_priorities
        return (*self.namespace_priorities, ABI_DEPENDENCY_NAMESPACE)

    @property
    def static_namespaces(self) -> frozenset[str]:
        """Namespaces declared ahead of time: their static properties are the supported ones."""
        return frozenset(prop.namespace for prop in self.static_properties)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.variants)

    @property
    def has_null_variant(self) -> bool:
        return NULL_VARIANT_LABEL in self.variants


def variant_properties(doc: VariantsDoc, label: str) -> tuple[VariantProperty, ...]:
    """The properties of `label` in file order; the null variant has none."""
    if label == NULL_VARIANT_LABEL:
        return ()
    desc = doc.variants.get(label)
    if desc is None:
        raise UnknownLabelError(f"variant label {label!r} is not in the variant metadata")
    return desc.properties
