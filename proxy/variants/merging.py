"""Combining, rendering and subsetting variant metadata documents (pure, PEP 825 merging)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from types import MappingProxyType
from typing import Any

from proxy.variants.model import (
    FeatureKey,
    VariantDesc,
    VariantsConflictError,
    VariantsDoc,
)
from proxy.variants.parsing import _DOCUMENT, _load_json, _object, parse_variants_json
from proxy.variants.properties import VariantProperty

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
