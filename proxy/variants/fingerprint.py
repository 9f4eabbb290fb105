"""Fingerprints: the ordered variant properties a client supports, and their text forms.

Owns the `Fingerprint` model and the three ways one is written down:

- the `Variant-Properties` header: `namespace :: feature :: value` items, comma-separated,
  most preferred first (`parse_properties_header`);
- a hardware spec such as `cpu=x86_64_v3,cuda=12.8,sm=9.0` (`parse_hardware_spec`,
  `format_hardware_spec`), expanded by the built-in providers (`expand_hardware_spec`);
- a config profile, which is one of the two (`profile_fingerprint`).

What a hardware spec means:

- `cpu=x86_64_vN` (N = 1..4): `x86_64 :: level` with values vN .. v1, best first, and
  `x86_64 :: <flag> :: on` for every flag that level guarantees (archspec's generic
  x86_64_vN lists), in the reference provider's flag order. `cpu=x86_64_v3` gives
  `level` v3, v2, v1 and avx2, avx, bmi2, bmi1, abm, f16c, fma, movbe, xsave, sse4_2,
  sse4_1, ssse3, sse3, cx16, lahf_lm, popcnt, sse2, sse, mmx.
- `cpu=aarch64` (the 8a baseline) or `cpu=aarch64_<version>` such as `aarch64_8.2a`:
  `aarch64 :: version` with that version and all older ones, best first (no flags: the
  reference's generic versions imply none).
- `cuda=M.m` (the CUDA version the driver supports) and `sm=X.y` (the highest compute
  capability): the `nvidia` properties, computed as the reference provider computes them
  from its `NV_VARIANT_PROVIDER_FORCE_*` overrides. `sm` without `cuda` gives `sm_arch`
  alone (the spec says it explicitly, so it is not dropped as detection would drop it).
- `prop=namespace::feature::value` (repeatable): any other property, after the ones
  above. A `prop` naming a flag of the spec's CPU provider (`prop=x86_64::avx512_vnni::on`)
  takes that flag's place in the provider's order, the way a detected flag would.
- `none`: a machine with no variant properties (a known, empty fingerprint).

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from proxy.variants.properties import PropertyError, VariantProperty, check_name, check_value
from proxy.variants.providers import HardwareValueError, aarch64, nvidia, x86_64

PROPERTIES_HEADER = "Variant-Properties"

# Bump when the key derivation changes, so old cached pages are not reused by mistake.
_CACHE_KEY_VERSION = "fp1"


class FingerprintError(ValueError):
    """A malformed fingerprint source; the one-line message names the bad item."""


class HardwareSpecError(FingerprintError):
    """A malformed hardware spec; the one-line message names the bad key or value."""


def _values_by_feature(
    properties: Iterable[VariantProperty],
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Group values under their feature: features by first appearance, values in order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for prop in properties:
        values = grouped.setdefault(prop.feature_key, [])
        if prop.value not in values:
            values.append(prop.value)
    return {feature: tuple(values) for feature, values in grouped.items()}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The properties a client supports, in preference order.

    Built from any sequence, it is stored canonically: features ranked by their first
    appearance, each feature's values right after it in the order given (first = most
    preferred), duplicates dropped. Two sequences that mean the same preference give
    equal fingerprints and the same `cache_key`.
    """

    properties: tuple[VariantProperty, ...] = ()
    _by_feature: dict[tuple[str, str], tuple[str, ...]] = field(
        init=False, repr=False, compare=False
    )
    _cache_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_feature = _values_by_feature(self.properties)
        ordered = tuple(
            VariantProperty(namespace, feature, value)
            for (namespace, feature), values in by_feature.items()
            for value in values
        )
        object.__setattr__(self, "properties", ordered)
        object.__setattr__(self, "_by_feature", by_feature)
        digest = hashlib.sha256(self.header_value().encode()).hexdigest()[:32]
        object.__setattr__(self, "_cache_key", f"{_CACHE_KEY_VERSION}-{digest}")

    @property
    def is_empty(self) -> bool:
        return not self.properties

    @property
    def cache_key(self) -> str:
        """A short stable key for caching per-fingerprint results (e.g. rewritten pages)."""
        return self._cache_key

    @property
    def features(self) -> tuple[tuple[str, str], ...]:
        """`(namespace, feature)` pairs, most important first."""
        return tuple(self._by_feature)

    @property
    def values_by_feature(self) -> Mapping[tuple[str, str], tuple[str, ...]]:
        """`(namespace, feature)` -> supported values, most preferred first (read-only)."""
        return MappingProxyType(self._by_feature)

    def values(self, namespace: str, feature: str) -> tuple[str, ...]:
        """The supported values of one feature, most preferred first (empty if unknown)."""
        return self._by_feature.get((namespace, feature), ())

    def supports(self, prop: VariantProperty) -> bool:
        return prop.value in self._by_feature.get(prop.feature_key, ())

    def header_value(self) -> str:
        """The `Variant-Properties` header form; parsing it gives this fingerprint back."""
        return ", ".join(str(prop) for prop in self.properties)


EMPTY_FINGERPRINT = Fingerprint()


def parse_properties_header(text: str) -> Fingerprint:
    """Parse a `Variant-Properties` header; an empty header is a known, empty fingerprint."""
    if not text.strip():
        return EMPTY_FINGERPRINT
    properties: list[VariantProperty] = []
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            raise FingerprintError(f"invalid {PROPERTIES_HEADER}: item {position} is empty")
        try:
            properties.append(VariantProperty.parse(item))
        except PropertyError as error:
            raise FingerprintError(
                f"invalid {PROPERTIES_HEADER} item {item.strip()!r}: {error}"
            ) from None
    return Fingerprint(tuple(properties))


# (major, minor), e.g. CUDA 12.8 -> (12, 8), compute capability 9.0 -> (9, 0).
Version2 = tuple[int, int]

# Matched with fullmatch; [0-9], not \d, which also takes other scripts' digits.
_CUDA_RE = re.compile(r"([0-9]{1,3})(?:\.([0-9]{1,3}))?")
_SM_RE = re.compile(r"([0-9]{1,2})(?:\.([0-9]))?")
_X86_64_CPU_RE = re.compile(r"x86_64_v([0-9]+)")
_AARCH64_CPU = "aarch64"
_CPU_CHOICES = "x86_64_v1..x86_64_v4, aarch64 or aarch64_<version> (e.g. aarch64_8.2a)"


def _canonical_cpu(text: str) -> str:
    """The canonical spelling of a `cpu=` value, or HardwareSpecError naming it."""
    level_match = _X86_64_CPU_RE.fullmatch(text)
    if level_match is not None:
        level = int(level_match.group(1))
        if not 1 <= level <= x86_64.MAX_LEVEL:
            raise HardwareSpecError(f"invalid cpu={text!r}: x86_64 levels are v1..v4")
        return f"x86_64_v{level}"
    if text == _AARCH64_CPU:
        return text
    if text.startswith(_AARCH64_CPU + "_"):
        try:
            return f"{_AARCH64_CPU}_{aarch64.canonical_version(text.removeprefix('aarch64_'))}"
        except HardwareValueError as error:
            raise HardwareSpecError(f"invalid cpu={text!r}: {error}") from None
    raise HardwareSpecError(f"invalid cpu={text!r}: expected {_CPU_CHOICES}")


def _cpu_properties(cpu: str, flags: Iterable[str]) -> tuple[VariantProperty, ...]:
    if cpu.startswith("x86_64_v"):
        return x86_64.x86_64_properties(int(cpu.removeprefix("x86_64_v")), flags)
    version = cpu.removeprefix(_AARCH64_CPU).removeprefix("_") or None
    return aarch64.aarch64_properties(version, flags)


def _cpu_namespace(cpu: str) -> str:
    return x86_64.NAMESPACE if cpu.startswith("x86_64") else aarch64.NAMESPACE


def _format_version(version: Version2) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True, slots=True)
class HardwareSpec:
    """A machine described by hand: `cpu`, `cuda`, `sm`, extra properties, or `none`.

    Constructing one validates it and stores it canonically (`cpu` spelled as the
    reference spells it, duplicate properties dropped), so `format_hardware_spec` always
    gives text that parses back to an equal spec.
    """

    cpu: str | None = None
    cuda: Version2 | None = None
    sm: Version2 | None = None
    properties: tuple[VariantProperty, ...] = ()
    none: bool = False

    def __post_init__(self) -> None:
        self._check_none_or_keys()
        if self.cpu is not None:
            object.__setattr__(self, "cpu", _canonical_cpu(self.cpu))
        if self.cuda is not None and not all(0 <= part <= 999 for part in self.cuda):
            raise HardwareSpecError(f"invalid cuda={_format_version(self.cuda)!r}")
        if self.sm is not None:
            _check_compute_capability(self.sm)
        for prop in self.properties:
            _check_spec_property(prop)
        object.__setattr__(self, "properties", tuple(dict.fromkeys(self.properties)))

    def _check_none_or_keys(self) -> None:
        given = self.cpu is not None or self.cuda is not None or self.sm is not None
        if self.none and (given or self.properties):
            raise HardwareSpecError("invalid hardware spec: 'none' cannot be combined with keys")
        if not self.none and not (given or self.properties):
            raise HardwareSpecError("empty hardware spec: expected key=value pairs or 'none'")


def _check_compute_capability(sm: Version2) -> None:
    text = _format_version(sm)
    if not (0 <= sm[0] <= 99 and 0 <= sm[1] <= 9):
        raise HardwareSpecError(f"invalid sm={text!r}: expected e.g. 9.0")
    if sm < nvidia.LOWEST_COMPUTE_CAPABILITY:
        raise HardwareSpecError(
            f"invalid sm={text!r}: the nvidia provider knows compute capability 5.0 and up"
        )


def _check_spec_property(prop: VariantProperty) -> None:
    try:
        check_name("namespace", prop.namespace)
        check_name("feature", prop.feature)
        check_value(prop.value)
    except PropertyError as error:
        raise HardwareSpecError(f"invalid prop={str(prop)!r}: {error}") from None


def _parse_version2(key: str, text: str, pattern: re.Pattern[str], example: str) -> Version2:
    match = pattern.fullmatch(text)
    if match is None:
        raise HardwareSpecError(f"invalid {key}={text!r}: expected a version such as {example}")
    return int(match.group(1)), int(match.group(2) or 0)


def parse_cuda_version(text: str) -> Version2:
    """Parse a `cuda=` value: `12.8` -> (12, 8), `12` -> (12, 0)."""
    return _parse_version2("cuda", text, _CUDA_RE, "12.8")


def parse_compute_capability(text: str) -> Version2:
    """Parse an `sm=` value: `9.0` -> (9, 0), `12` -> (12, 0)."""
    return _parse_version2("sm", text, _SM_RE, "9.0")


_SPEC_KEYS = ("cpu", "cuda", "sm", "prop")


def parse_hardware_spec(text: str) -> HardwareSpec:
    """Parse `cpu=...,cuda=...,sm=...,prop=ns::feature::value` or the word `none`."""
    items = [item.strip() for item in text.split(",")]
    if items == ["none"]:
        return HardwareSpec(none=True)
    if items == [""]:
        raise HardwareSpecError("empty hardware spec: expected key=value pairs or 'none'")
    single: dict[str, str] = {}
    properties: list[VariantProperty] = []
    for position, item in enumerate(items, start=1):
        if not item:
            raise HardwareSpecError(f"invalid hardware spec {text!r}: item {position} is empty")
        if item == "none":
            raise HardwareSpecError(f"invalid hardware spec {text!r}: 'none' must stand alone")
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals:
            raise HardwareSpecError(f"invalid hardware spec item {item!r}: expected key=value")
        if key not in _SPEC_KEYS:
            raise HardwareSpecError(
                f"unknown hardware spec key {key!r} in {item!r}: expected one of "
                + ", ".join(_SPEC_KEYS)
            )
        if key == "prop":
            try:
                properties.append(VariantProperty.parse(value))
            except PropertyError as error:
                raise HardwareSpecError(f"invalid prop={value!r}: {error}") from None
            continue
        if key in single:
            raise HardwareSpecError(f"duplicate hardware spec key {key!r} in {text!r}")
        single[key] = value
    return HardwareSpec(
        cpu=single.get("cpu"),
        cuda=parse_cuda_version(single["cuda"]) if "cuda" in single else None,
        sm=parse_compute_capability(single["sm"]) if "sm" in single else None,
        properties=tuple(properties),
    )


def format_hardware_spec(spec: HardwareSpec) -> str:
    """The canonical, URL-path-safe text of `spec`; parsing it gives an equal spec."""
    if spec.none:
        return "none"
    parts: list[str] = []
    if spec.cpu is not None:
        parts.append(f"cpu={spec.cpu}")
    if spec.cuda is not None:
        parts.append(f"cuda={_format_version(spec.cuda)}")
    if spec.sm is not None:
        parts.append(f"sm={_format_version(spec.sm)}")
    parts += [f"prop={p.namespace}::{p.feature}::{p.value}" for p in spec.properties]
    return ",".join(parts)


def expand_hardware_spec(spec: HardwareSpec) -> Fingerprint:
    """The fingerprint the built-in providers give for `spec` (CPU, then nvidia, then props)."""
    if spec.none:
        return EMPTY_FINGERPRINT
    properties: list[VariantProperty] = []
    if spec.cpu is not None:
        namespace = _cpu_namespace(spec.cpu)
        # Providers ignore names outside their vocabulary, so only real flags move here;
        # the duplicates left in `spec.properties` are dropped by the Fingerprint.
        flags = [p.feature for p in spec.properties if p.namespace == namespace and p.value == "on"]
        properties += _cpu_properties(spec.cpu, flags)
    properties += nvidia.nvidia_properties(spec.cuda, spec.sm)
    properties += spec.properties
    return Fingerprint(tuple(properties))


def profile_fingerprint(hw: str | None, properties: Sequence[str] | None) -> Fingerprint:
    """The fingerprint of a config profile: exactly one of `hw` (a spec) or `properties`."""
    if hw is not None and properties is not None:
        raise FingerprintError("invalid profile: give 'hw' or 'properties', not both")
    if hw is None and properties is None:
        raise FingerprintError("invalid profile: give one of 'hw' or 'properties'")
    if hw is not None:
        try:
            return expand_hardware_spec(parse_hardware_spec(hw))
        except HardwareSpecError as error:
            raise HardwareSpecError(f"invalid profile 'hw': {error}") from None
    assert properties is not None
    if isinstance(properties, str):
        raise FingerprintError("invalid profile 'properties': expected a list of strings")
    parsed: list[VariantProperty] = []
    for item in properties:
        if not isinstance(item, str):
            raise FingerprintError(f"invalid profile 'properties' item {item!r}: not a string")
        try:
            parsed.append(VariantProperty.parse(item))
        except PropertyError as error:
            raise FingerprintError(f"invalid profile 'properties' item {item!r}: {error}") from None
    return Fingerprint(tuple(parsed))
