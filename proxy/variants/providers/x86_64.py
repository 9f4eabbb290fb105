"""The `x86_64` namespace: microarchitecture level and CPU extension flags.

Mirrors WheelNext `provider-variant-x86-64` (`provider_variant_x86_64/plugin.py`):

- `x86_64 :: level :: vN`, every level the CPU supports, best first (`v3, v2, v1`),
  capped at `v4`, the highest level the reference knows;
- `x86_64 :: <flag> :: on` for each supported extension, in the reference's flag order.

The reference asks archspec which flags a CPU has. Here the flags come from two places:
those every CPU of the level has (archspec's generic `x86_64_vN` targets, plus archspec's
alias that makes `ssse3` imply `sse3`), and any flags detection saw on the machine.

One deliberate difference: for a v1-only CPU the reference emits nothing at all (archspec
names that generic target `x86_64`, which fails its `x86_64_v` prefix test), so a wheel
marked `level :: v1` could never be installed. Here v1 is a level like the others: it
yields `level :: v1` and the x86-64 baseline flags `sse2`, `sse`, `mmx`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from proxy.variants.properties import VariantProperty
from proxy.variants.providers import HardwareValueError

NAMESPACE = "x86_64"
LEVEL_FEATURE = "level"
FLAG_VALUE = "on"
MAX_LEVEL = 4

# The reference's `all_features`, in its preference order (value for value).
FLAGS: tuple[str, ...] = (
    # zen5
    "avx_vnni",
    "cppc",
    "ibrs_enhanced",
    "tsc_adjust",
    # zen4
    "flush_l1d",
    # sapphirerapids
    "movdir64b",
    "movdiri",
    # icelake
    "avx512_bf16",
    "avx512_bitalg",
    "avx512_vbmi2",
    "avx512_vnni",
    "avx512_vp2intersect",
    "avx512_vpopcntdq",
    "avx512ifma",
    "avx512vbmi",
    "rdpid",
    "sha_ni",
    "vaes",
    "vpclmulqdq",
    # skylake_avx512
    "clwb",
    "clzero",
    # x86-64-v4
    "avx512bw",
    "avx512cd",
    "avx512dq",
    "avx512f",
    "avx512vl",
    # skylake
    "clflushopt",
    "gfni",
    "rdseed",
    "xsavec",
    "xsaveopt",
    # broadwell
    "adx",
    # x86-64-v3
    "avx2",
    "avx",
    "bmi2",
    "bmi1",
    "abm",
    "f16c",
    "fma",
    "movbe",
    "xsave",
    # sandybridge
    "rdrand",
    # westmere
    "aes",
    # nehalem
    "pclmulqdq",
    # steamroller
    "sse4a",
    "fsgsbase",
    # x86-64-v2
    "sse4_2",
    "sse4_1",
    "ssse3",
    "sse3",
    "cx16",
    "lahf_lm",
    "popcnt",
    # x86-64-v1
    "sse2",
    "sse",
    "mmx",
)
_FLAG_RANK = {flag: rank for rank, flag in enumerate(FLAGS)}

_V1_FLAGS = frozenset({"mmx", "sse", "sse2"})
_V2_FLAGS = _V1_FLAGS | {"cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2"}
_V3_FLAGS = _V2_FLAGS | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4_FLAGS = _V3_FLAGS | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}

# The flags every CPU of a level has (archspec's generic x86_64_vN feature lists).
LEVEL_FLAGS: Mapping[int, frozenset[str]] = {1: _V1_FLAGS, 2: _V2_FLAGS, 3: _V3_FLAGS, 4: _V4_FLAGS}

# Other spellings of reference flags: CPUID names used by py-cpuinfo, macOS sysctl names.
_FLAG_ALIASES: Mapping[str, str] = {
    "pni": "sse3",
    "rdrnd": "rdrand",
    "sha": "sha_ni",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "avx1.0": "avx",
    "clfsopt": "clflushopt",
    "lahf": "lahf_lm",
    "lzcnt": "abm",
}


def level_values(level: int) -> tuple[str, ...]:
    """The `level` values a CPU of `level` supports, best first: 3 -> ('v3', 'v2', 'v1')."""
    if level < 1:
        raise HardwareValueError(f"invalid x86_64 level {level}: levels start at 1")
    return tuple(f"v{n}" for n in range(min(level, MAX_LEVEL), 0, -1))


def reference_flags(raw_flags: Iterable[str]) -> frozenset[str]:
    """The reference-vocabulary flags named by `raw_flags` (any spelling); others dropped."""
    found: set[str] = set()
    for raw in raw_flags:
        name = raw.strip().lower()
        name = _FLAG_ALIASES.get(name, name)
        if name in _FLAG_RANK:
            found.add(name)
    if "ssse3" in found:  # archspec: ssse3 is a superset of sse3 and may be the only one listed
        found.add("sse3")
    return frozenset(found)


def level_from_flags(flags: Iterable[str]) -> int:
    """The highest level whose flags are all in `flags` (reference spellings); at least 1."""
    present = frozenset(flags)
    return max(level for level, needed in LEVEL_FLAGS.items() if level == 1 or needed <= present)


def x86_64_properties(level: int, flags: Iterable[str] = ()) -> tuple[VariantProperty, ...]:
    """Properties of an x86-64 CPU of `level` that also has `flags` (reference spellings).

    The level values come first, then every flag the level implies or `flags` adds, in the
    reference's order. Names outside the reference vocabulary are ignored.
    """
    levels = level_values(level)
    supported = LEVEL_FLAGS[min(level, MAX_LEVEL)] | reference_flags(flags)
    return tuple(VariantProperty(NAMESPACE, LEVEL_FEATURE, value) for value in levels) + tuple(
        VariantProperty(NAMESPACE, flag, FLAG_VALUE)
        for flag in sorted(supported, key=_FLAG_RANK.__getitem__)
    )
