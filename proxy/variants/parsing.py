"""Reading variants.json / variant.json (pure): every schema version seen in the wild, each
error naming the bad key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from proxy.simple.filenames import NULL_VARIANT_LABEL
from proxy.variants.model import (
    ABI_DEPENDENCY_NAMESPACE,
    FeatureKey,
    VariantDesc,
    VariantsDoc,
    VariantsJsonError,
)
from proxy.variants.properties import PropertyError, VariantProperty, check_name, check_value

# 0: the drafts; 1: PEP 825 promotes its latest draft to 1.0.0 unchanged once accepted.
SUPPORTED_SCHEMA_MAJORS = frozenset({0, 1})

_LABEL_RE = re.compile(r"[0-9a-z_.]+")
_SCHEMA_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_$-]+")
_DOCUMENT = "(document)"

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
    for key, values in _provider_static_properties(raw).items():
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


def _provider_static_properties(raw: Mapping[str, Any]) -> dict[FeatureKey, tuple[str, ...]]:
    """`providers.{ns}.static-properties` (variantlib 0.2), the first provider's value first."""
    table: dict[FeatureKey, tuple[str, ...]] = {}
    providers = raw.get("providers")
    if not isinstance(providers, Mapping):
        return table
    for namespace, info in providers.items():
        if not isinstance(info, Mapping) or "static-properties" not in info:
            continue
        ns_path = _join("providers", namespace)
        _checked("namespace", namespace, ns_path)
        path = _join(ns_path, "static-properties")
        provided = _namespace_features(namespace, info["static-properties"], path, min_values=1)
        for key, values in provided.items():
            table.setdefault(key, values)
    return table


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


def _feature_priorities(
    raw: Mapping[str, Any], priorities: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """`default-priorities.feature`, then the providers' own feature orders."""
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
    return feature_priorities


def _variant(label: str, described: Any, namespaces: tuple[str, ...]) -> VariantDesc:
    """One `variants` entry, checked: listed namespaces, properties unless the null variant."""
    label_path = _join("variants", label)
    _checked("label", label, label_path)
    desc = VariantDesc(_feature_table(described, label_path, min_values=1))
    for namespace, _feature in desc:
        if namespace not in namespaces and namespace != ABI_DEPENDENCY_NAMESPACE:
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
    return desc


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
    feature_priorities = _feature_priorities(raw, priorities)
    property_priorities: dict[FeatureKey, tuple[str, ...]] = {}
    if "property" in priorities:
        property_priorities = _feature_table(
            priorities["property"], "default-priorities.property", min_values=0
        )
    static = _static_properties(raw, feature_priorities)
    if "variants" not in raw:
        raise VariantsJsonError("variants", "missing")
    variants = {
        label: _variant(label, described, namespaces)
        for label, described in _object(raw["variants"], "variants").items()
    }

    return VariantsDoc(
        schema=schema,
        schema_version=version,
        namespace_priorities=namespaces,
        variants=MappingProxyType(variants),
        feature_priorities=MappingProxyType(feature_priorities),
        property_priorities=MappingProxyType(property_priorities),
        static_properties=static,
    )
