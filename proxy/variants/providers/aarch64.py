"""The `aarch64` namespace: Arm architecture version and CPU extension flags.

Mirrors WheelNext `provider-variant-aarch64` (`provider_variant_aarch64/plugin.py`):

- `aarch64 :: version :: V`, the CPU's version and every older one, best first
  (`8.2a, 8.1a, 8a`); the reference spells 8.0 as `8a` and knows versions up to `9.0a`,
  so newer CPUs are capped there (as the reference caps them);
- `aarch64 :: <flag> :: on` for each supported extension, in the reference's flag order.

Archspec's generic `armvX` targets list no flags, so a version alone implies none.
The vocabulary is the reference's, value for value, including its `asimdrdmatomics`
entry (apparently `asimdrdm` and `atomics` run together); no CPU reports that name, so
it is never emitted from detection, exactly as in the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from proxy.variants.properties import VariantProperty
from proxy.variants.providers import HardwareValueError

NAMESPACE = "aarch64"
VERSION_FEATURE = "version"
FLAG_VALUE = "on"

# The versions the reference knows, oldest first (archspec: aarch64 -> armv8.1a -> ... -> 9.0a).
KNOWN_VERSIONS: tuple[str, ...] = ("8a", "8.1a", "8.2a", "8.3a", "8.4a", "8.5a", "9.0a")
BASELINE_VERSION = "8a"

# The reference's `all_features`, in its preference order (value for value).
FLAGS: tuple[str, ...] = (
    # neoverse_n2/v2 (armv9.0)
    "sve2",
    "flagm2",
    "frint",
    "sb",
    # m2 (armv8.5)
    "btiecv",
    # m1 (armv8.4)
    "paca",
    "pacg",
    "ssbs",
    # neoverse_v1 (armv8.4)
    "asimdfhm",
    "bf16",
    "dcpodp",
    "dgh",
    "dit",
    "flagm",
    "i8mm",
    "ilrcpc",
    "jscvt",
    "rng",
    "sha3",
    "sha512",
    "svebf16",
    "svei8mm",
    "uscat",
    # neoverse_n1 (armv8.2)
    "asimddp",
    "lrcpc",
    # a64fx (armv8.2)
    "asimdhp",
    "dcpop",
    "fcma",
    "fphp",
    "sve",
    # thunderx2 (armv8.1)
    "asimdrdmatomics",
    # cortex_a72 (armv8.0)
    "aes",
    "asimd",
    "cpuid",
    "crc32",
    "evtstrm",
    "fp",
    "pmull",
    "sha1",
    "sha2",
)
_FLAG_RANK = {flag: rank for rank, flag in enumerate(FLAGS)}

# Linux hwcap names of extensions each version makes mandatory, on top of the older ones.
# Detection infers the version from them (py-cpuinfo reports no version); for the CPUs in
# archspec's table this gives the version archspec assigns, and an unknown CPU is rated
# no higher than the flags prove.
_NEW_MANDATORY_FLAGS: Mapping[str, frozenset[str]] = {
    "8.1a": frozenset({"atomics", "asimdrdm"}),
    "8.2a": frozenset({"dcpop"}),
    "8.3a": frozenset({"jscvt", "fcma", "lrcpc", "paca", "pacg"}),
    "8.4a": frozenset({"dit", "uscat", "ilrcpc", "flagm"}),
    "8.5a": frozenset({"sb", "dcpodp", "flagm2", "frint", "bti"}),
    "9.0a": frozenset({"sve2"}),
}

_VERSION_RE = re.compile(r"([0-9]+)(?:\.([0-9]+))?a")  # fullmatch


def _version_key(version: str) -> tuple[int, int]:
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise HardwareValueError(f"invalid aarch64 version {version!r}: expected e.g. '8.2a'")
    return int(match.group(1)), int(match.group(2) or 0)


def canonical_version(text: str) -> str:
    """The reference spelling of an Arm version: '8.0a' -> '8a', '9a' -> '9.0a'.

    Versions 8.0 to 9.9 are accepted; ones newer than the reference knows are kept as
    written here and capped when expanded.
    """
    major, minor = _version_key(text)
    if major not in (8, 9) or minor > 9:
        raise HardwareValueError(f"unknown aarch64 version {text!r}: expected 8a .. 9.9a")
    return BASELINE_VERSION if (major, minor) == (8, 0) else f"{major}.{minor}a"


def version_values(version: str) -> tuple[str, ...]:
    """The `version` values a CPU of `version` supports, best first, capped at 9.0a."""
    wanted = _version_key(canonical_version(version))
    known = [v for v in KNOWN_VERSIONS if _version_key(v) <= wanted]
    return tuple(reversed(known))


def version_from_flags(flags: Iterable[str]) -> str:
    """The highest known version whose mandatory extensions are all in `flags` (hwcap names)."""
    present = frozenset(flag.strip().lower() for flag in flags)
    version = BASELINE_VERSION
    for candidate in KNOWN_VERSIONS[1:]:
        if not _NEW_MANDATORY_FLAGS[candidate] <= present:
            break
        version = candidate
    return version


def reference_flags(raw_flags: Iterable[str]) -> frozenset[str]:
    """The reference-vocabulary flags among `raw_flags`; others dropped."""
    return frozenset(name for raw in raw_flags if (name := raw.strip().lower()) in _FLAG_RANK)


def aarch64_properties(
    version: str | None = None, flags: Iterable[str] = ()
) -> tuple[VariantProperty, ...]:
    """Properties of an AArch64 CPU of `version` (default: the 8a baseline) with `flags`.

    The version values come first, then the flags of the reference vocabulary, in the
    reference's order.
    """
    versions = version_values(version or BASELINE_VERSION)
    supported = reference_flags(flags)
    return tuple(VariantProperty(NAMESPACE, VERSION_FEATURE, value) for value in versions) + tuple(
        VariantProperty(NAMESPACE, flag, FLAG_VALUE)
        for flag in sorted(supported, key=_FLAG_RANK.__getitem__)
    )
