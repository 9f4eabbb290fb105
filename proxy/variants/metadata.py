"""PEP 825 variant metadata: the variants.json model, its checks, merging, compatibility and
the PEP 825 ordering of variants for a client's supported properties. Pure: no I/O.

One model reads both the index-level `{name}-{version}-variants.json` and a wheel's
`*.dist-info/variant.json`, in every schema version seen in the wild:

- `v0.0.x` drafts (PEP 817 era): `default-priorities.namespace/.feature/.property`,
  `providers` (ignored, except the variantlib 0.2 form `providers.{ns}.static-properties` and
  `.feature-order`) and `static-properties` (properties every system supports);
- PEP 825 `v0.1.x`: only `default-priorities.namespace`; extra keys are ignored, so a file
  that still carries `.feature` / `.property` has them honoured.

The version is read from the `$schema` URL; an unknown major version is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import (
    Collection,
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
from typing import Any

from proxy.simple.filenames import NULL_VARIANT_LABEL
from proxy.variants.properties import PropertyError, VariantProperty, check_name, check_value

# (namespace, feature name)
FeatureKey = tuple[str, str]

# 0: the drafts; 1: PEP 825 promotes its latest draft to 1.0.0 unchanged once accepted.
SUPPORTED_SCHEMA_MAJORS = frozenset({0, 1})

_LABEL_RE = re.compile(r"[0-9a-z_.]+")
_SCHEMA_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_$-]+")
_DOCUMENT = "(document)"


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


# --- parsing -------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    part = f".{key}" if _PLAIN_KEY_RE.fullmatch(key) else f"[{json.dumps(key)}]"
    return part[1:] if path == _DOCUMENT else path + part


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise VariantsJsonError(_DOCUMENT, f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _load_json(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise VariantsJsonError(_DOCUMENT, f"not UTF-8: {exc.reason}") from None
    try:
        return json.loads(data, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise VariantsJsonError(
            _DOCUMENT, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VariantsJsonError(path, f"expected an object, found {_type_name(value)}")
    return value


def _checked(kind: str, text: Any, path: str) -> str:
    """Check a namespace, feature, value or label found at `path`."""
    if not isinstance(text, str):
        raise VariantsJsonError(path, f"expected a {kind} string, found {_type_name(text)}")
    if kind == "label":
        if not _LABEL_RE.fullmatch(text):
            raise VariantsJsonError(
                path,
                f"invalid variant label {text!r}: expected lowercase letters, digits, '_', '.'",
            )
        return text
    try:
        return check_value(text) if kind == "value" else check_name(kind, text)
    except PropertyError as exc:
        raise VariantsJsonError(path, str(exc)) from None


def _string_list(value: Any, path: str, kind: str, *, min_items: int = 0) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise VariantsJsonError(path, f"expected an array of {kind}s, found {_type_name(value)}")
    if len(value) < min_items:
        raise VariantsJsonError(path, f"must list at least {min_items} {kind}")
    items: list[str] = []
    for index, item in enumerate(value):
        text = _checked(kind, item, f"{path}[{index}]")
        if text in items:
            raise VariantsJsonError(f"{path}[{index}]", f"duplicate {kind} {text!r}")
        items.append(text)
    return tuple(items)


def _namespace_features(
    namespace: str, value: Any, path: str, *, min_values: int
) -> dict[FeatureKey, tuple[str, ...]]:
    """Read `{feature: [values]}` of one namespace, keeping file order."""
    table: dict[FeatureKey, tuple[str, ...]] = {}
    for feature, values in _object(value, path).items():
        feature_path = _join(path, feature)
        _checked("feature", feature, feature_path)
        table[(namespace, feature)] = _string_list(
            values, feature_path, "value", min_items=min_values
        )
    return table


def _feature_table(value: Any, path: str, *, min_values: int) -> dict[FeatureKey, tuple[str, ...]]:
    """Read `{namespace: {feature: [values]}}`, keeping file order."""
    table: dict[FeatureKey, tuple[str, ...]] = {}
    for namespace, features in _object(value, path).items():
        ns_path = _join(path, namespace)
        _checked("namespace", namespace, ns_path)
        table.update(_namespace_features(namespace, features, ns_path, min_values=min_values))
    return table


def _schema_version(value: Any) -> tuple[str, tuple[int, int, int]]:
    if value is None:
        raise VariantsJsonError("$schema", "missing: the schema URL names the format version")
    if not isinstance(value, str):
        raise VariantsJsonError("$schema", f"expected a URL string, found {_type_name(value)}")
    last_segment = value.rstrip("/").rsplit("/", 1)[-1]
    match = _SCHEMA_VERSION_RE.search(last_segment)
    if match is None:
        raise VariantsJsonError("$schema", f"no format version in schema URL {value!r}")
    major, minor, patch = (int(group) for group in match.groups())
    if major not in SUPPORTED_SCHEMA_MAJORS:
        raise VariantsJsonError(
            "$schema", f"unsupported format version {major}.{minor}.{patch} (major {major})"
        )
    return value, (major, minor, patch)


def _static_properties(
    raw: Mapping[str, Any], feature_priorities: dict[str, tuple[str, ...]]
) -> tuple[VariantProperty, ...]:
    """Gather `static-properties` (PEP 817 drafts) and `providers.{ns}.static-properties`
    (variantlib 0.2); features follow `default-priorities.feature`, then file order."""
    table: dict[FeatureKey, tuple[str, ...]] = {}
    if "static-properties" in raw:
        table.update(_feature_table(raw["static-properties"], "static-properties", min_values=1))
    providers = raw.get("providers")
    if isinstance(providers, Mapping):
        for namespace, info in providers.items():
            if not isinstance(info, Mapping) or "static-properties" not in info:
                continue
            ns_path = _join("providers", namespace)
            _checked("namespace", namespace, ns_path)
            path = _join(ns_path, "static-properties")
            provided = _namespace_features(namespace, info["static-properties"], path, min_values=1)
            for key, values in provided.items():
                table.setdefault(key, values)
    result: list[VariantProperty] = []
    namespaces = dict.fromkeys(namespace for namespace, _ in table)
    for namespace in namespaces:
        features = [feature for ns, feature in table if ns == namespace]
        preferred = [f for f in feature_priorities.get(namespace, ()) if f in features]
        for feature in preferred + [f for f in features if f not in preferred]:
            result.extend(
                VariantProperty(namespace, feature, v) for v in table[(namespace, feature)]
            )
    return tuple(result)


def _provider_feature_orders(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """variantlib 0.2's `providers.{ns}.feature-order`: the order of static features."""
    orders: dict[str, tuple[str, ...]] = {}
    providers = raw.get("providers")
    if isinstance(providers, Mapping):
        for namespace, info in providers.items():
            if isinstance(info, Mapping) and "feature-order" in info:
                path = _join(_join("providers", namespace), "feature-order")
                _checked("namespace", namespace, _join("providers", namespace))
                orders[namespace] = _string_list(info["feature-order"], path, "feature")
    return orders


def parse_variants_json(data: bytes | str | Mapping[str, Any]) -> VariantsDoc:
    """Parse and check variant metadata; raise `VariantsJsonError` naming the bad key."""
    raw = data if isinstance(data, Mapping) else _load_json(data)
    raw = _object(raw, _DOCUMENT)
    schema, version = _schema_version(raw.get("$schema"))

    if "default-priorities" not in raw:
        raise VariantsJsonError("default-priorities", "missing")
    priorities = _object(raw["default-priorities"], "default-priorities")
    if "namespace" not in priorities:
        raise VariantsJsonError("default-priorities.namespace", "missing")
    namespaces = _string_list(
        priorities["namespace"], "default-priorities.namespace", "namespace", min_items=1
    )

    feature_priorities: dict[str, tuple[str, ...]] = {}
    if "feature" in priorities:
        path = "default-priorities.feature"
        for namespace, features in _object(priorities["feature"], path).items():
            ns_path = _join(path, namespace)
            _checked("namespace", namespace, ns_path)
            feature_priorities[namespace] = _string_list(features, ns_path, "feature")
    for namespace, order in _provider_feature_orders(raw).items():
        known = feature_priorities.get(namespace, ())
        feature_priorities[namespace] = known + tuple(f for f in order if f not in known)

    property_priorities: dict[FeatureKey, tuple[str, ...]] = {}
    if "property" in priorities:
        property_priorities = _feature_table(
            priorities["property"], "default-priorities.property", min_values=0
        )

    static = _static_properties(raw, feature_priorities)

    if "variants" not in raw:
        raise VariantsJsonError("variants", "missing")
    variants: dict[str, VariantDesc] = {}
    for label, described in _object(raw["variants"], "variants").items():
        label_path = _join("variants", label)
        _checked("label", label, label_path)
        desc = VariantDesc(_feature_table(described, label_path, min_values=1))
        for namespace, _feature in desc:
            if namespace not in namespaces:
                raise VariantsJsonError(
                    _join(label_path, namespace),
                    f"namespace {namespace!r} is not listed in default-priorities.namespace",
                )
        if label == NULL_VARIANT_LABEL and desc:
            raise VariantsJsonError(label_path, "the null variant must have no properties")
        if label != NULL_VARIANT_LABEL and not desc:
            raise VariantsJsonError(
                label_path, f"only the {NULL_VARIANT_LABEL!r} label may have no properties"
            )
        variants[label] = desc

    return VariantsDoc(
        schema=schema,
        schema_version=version,
        namespace_priorities=namespaces,
        variants=MappingProxyType(variants),
        feature_priorities=MappingProxyType(feature_priorities),
        property_priorities=MappingProxyType(property_priorities),
        static_properties=static,
    )


# --- merging and subsetting ----------------------------------------------------------------


def _merge_lists(
    what: str, merged: dict[Any, tuple[str, ...]], key: Any, values: tuple[str, ...]
) -> None:
    known = merged.setdefault(key, values)
    if known != values:
        raise VariantsConflictError(f"{what} differs: {list(known)} vs {list(values)}")


def merge_variants_docs(docs: Sequence[VariantsDoc]) -> VariantsDoc:
    """Combine the metadata of one release as PEP 825 says, independently of input order.

    `default-priorities.namespace` lists must be equal or one a prefix of the other (the
    longest wins); a label must map to the same property set everywhere (values are sets);
    `variants` is the union. Draft-era priorities and static properties must agree where
    two documents both give them. Anything else raises `VariantsConflictError`.
    """
    if not docs:
        raise ValueError("merge_variants_docs needs at least one document")
    namespaces: tuple[str, ...] = ()
    variants: dict[str, VariantDesc] = {}
    feature_priorities: dict[str, tuple[str, ...]] = {}
    property_priorities: dict[FeatureKey, tuple[str, ...]] = {}
    static: dict[str, tuple[VariantProperty, ...]] = {}
    for doc in docs:
        shorter, longer = sorted((namespaces, doc.namespace_priorities), key=len)
        if longer[: len(shorter)] != shorter:
            raise VariantsConflictError(
                "default-priorities.namespace lists are not prefixes of one another: "
                f"{list(namespaces)} vs {list(doc.namespace_priorities)}"
            )
        namespaces = longer
        for label, desc in doc.variants.items():
            known = variants.setdefault(label, desc)
            if known.property_set() != desc.property_set():
                raise VariantsConflictError(
                    f"variant label {label!r} maps to different properties: "
                    f"{sorted(map(str, known.properties))} vs {sorted(map(str, desc.properties))}"
                )
        for namespace, features in doc.feature_priorities.items():
            _merge_lists(
                f"default-priorities.feature.{namespace}", feature_priorities, namespace, features
            )
        for key, values in doc.property_priorities.items():
            _merge_lists(
                f"default-priorities.property.{key[0]}.{key[1]}", property_priorities, key, values
            )
        by_namespace: dict[str, list[VariantProperty]] = {}
        for prop in doc.static_properties:
            by_namespace.setdefault(prop.namespace, []).append(prop)
        for namespace, props in by_namespace.items():
            known_props = static.setdefault(namespace, tuple(props))
            if known_props != tuple(props):
                raise VariantsConflictError(
                    f"static-properties.{namespace} differs: "
                    f"{[str(p) for p in known_props]} vs {[str(p) for p in props]}"
                )
    newest = max(docs, key=lambda doc: doc.schema_version)
    return VariantsDoc(
        schema=newest.schema,
        schema_version=newest.schema_version,
        namespace_priorities=namespaces,
        variants=MappingProxyType(variants),
        feature_priorities=MappingProxyType(feature_priorities),
        property_priorities=MappingProxyType(property_priorities),
        static_properties=tuple(p for props in static.values() for p in props),
    )


def render_variants_json(doc: VariantsDoc) -> bytes:
    """A document (e.g. one merged from the wheels' own variant.json files) as variants.json."""
    priorities: dict[str, Any] = {"namespace": list(doc.namespace_priorities)}
    if doc.feature_priorities:
        priorities["feature"] = {ns: list(f) for ns, f in doc.feature_priorities.items()}
    if doc.property_priorities:
        by_namespace: dict[str, dict[str, list[str]]] = {}
        for (namespace, feature), values in doc.property_priorities.items():
            by_namespace.setdefault(namespace, {})[feature] = list(values)
        priorities["property"] = by_namespace
    document: dict[str, Any] = {"$schema": doc.schema, "default-priorities": priorities}
    if doc.static_properties:
        document["static-properties"] = VariantDesc.from_properties(doc.static_properties).to_json()
    document["variants"] = {label: desc.to_json() for label, desc in doc.variants.items()}
    return (json.dumps(document, indent=2) + "\n").encode()


def subset_variants_json(raw: bytes, keep_labels: Collection[str]) -> bytes:
    """The same document with only `keep_labels` in `variants` (in file order); every other
    key is kept as given. Labels the document lacks are ignored. The input is checked first."""
    document = _object(_load_json(raw), _DOCUMENT)
    parse_variants_json(document)
    keep = set(keep_labels)
    subset = dict(document)
    subset["variants"] = {
        label: desc for label, desc in document["variants"].items() if label in keep
    }
    return (json.dumps(subset, indent=2) + "\n").encode()


# --- compatibility and ordering ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreferenceOrder:
    """PEP 825 steps 1-3 for one document and one client: the ordered namespaces, the
    supported features of each, and the supported values of each feature, as ranks
    (0 = most preferred).

    Supported properties are the document's static properties, then the client's, in order:
    the first value of a feature is its most preferred, features rank by first appearance.
    `default-priorities.feature` / `.property` (when a file carries them) move the supported
    features / values they name to the front. Values the client does not support never rank.
    """

    namespace_rank: Mapping[str, int]
    feature_rank: Mapping[FeatureKey, int]
    value_rank: Mapping[FeatureKey, Mapping[str, int]]


def preference_order(doc: VariantsDoc, supported: Iterable[VariantProperty]) -> PreferenceOrder:
    """Rank the namespaces, features and values that matter to `doc` for this client."""
    namespace_rank = {namespace: i for i, namespace in enumerate(doc.namespace_priorities)}
    values_seen: dict[FeatureKey, dict[str, None]] = {}
    for sources in (doc.static_properties, supported):
        for prop in sources:
            if prop.namespace in namespace_rank:
                values_seen.setdefault(prop.feature_key, {})[prop.value] = None

    feature_rank: dict[FeatureKey, int] = {}
    for namespace in doc.namespace_priorities:
        features = [feature for ns, feature in values_seen if ns == namespace]
        preferred = [f for f in doc.feature_priorities.get(namespace, ()) if f in features]
        ordered = preferred + [f for f in features if f not in preferred]
        feature_rank.update(((namespace, f), i) for i, f in enumerate(ordered))

    value_rank: dict[FeatureKey, Mapping[str, int]] = {}
    for key, values in values_seen.items():
        preferred = [v for v in doc.property_priorities.get(key, ()) if v in values]
        ordered = preferred + [v for v in values if v not in preferred]
        value_rank[key] = {v: i for i, v in enumerate(ordered)}

    return PreferenceOrder(namespace_rank, feature_rank, value_rank)


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
        best_rank = -1
        best_value = ""
        for value in values:
            rank = ranks.get(value, -1)
            if rank >= 0 and (best_rank < 0 or rank < best_rank):
                best_rank, best_value = rank, value
        namespace, feature = key
        if best_rank < 0:
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
