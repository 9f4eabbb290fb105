"""The built-in providers against the WheelNext reference providers' known outputs.

Expected lists are hard-coded from the reference sources named next to each test:
`wheelnext/provider-variant-x86-64` (provider_variant_x86_64/plugin.py, tests/test_plugin.py),
`wheelnext/provider-variant-aarch64` (provider_variant_aarch64/plugin.py, tests/test_plugin.py),
`wheelnext/nvidia-variant-provider` (nvidia_variant_provider/plugin.py, tests/test_plugin_basic.py)
and archspec's microarchitectures.json for the CPU feature sets the references rely on.
"""

from __future__ import annotations

import re

import pytest
from variantlib.models.variant import VariantProperty as OracleProperty

from proxy.variants.properties import VariantProperty
from proxy.variants.providers import HardwareValueError, aarch64, nvidia, x86_64


def configs(properties: tuple[VariantProperty, ...]) -> list[tuple[str, list[str]]]:
    """Regroup properties as the reference's [(feature, [values...]), ...] configs."""
    grouped: dict[str, list[str]] = {}
    for prop in properties:
        grouped.setdefault(prop.feature, []).append(prop.value)
    return list(grouped.items())


def on(*flags: str) -> list[tuple[str, list[str]]]:
    return [(flag, ["on"]) for flag in flags]


# --- x86_64 ------------------------------------------------------------------------------

# archspec microarchitectures.json, generic target x86_64_v2 (plus its sse3 alias).
X86_64_V2_FLAGS = ["cx16", "lahf_lm", "mmx", "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "popcnt"]
X86_64_V3_FLAGS = [
    *X86_64_V2_FLAGS,
    *["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"],
]
X86_64_V4_FLAGS = [*X86_64_V3_FLAGS, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]


def test_x86_64_generic_v2_matches_reference_test_generic_configs() -> None:
    # provider-variant-x86-64 tests/test_plugin.py::test_generic_configs
    assert configs(x86_64.x86_64_properties(2)) == [
        ("level", ["v2", "v1"]),
        *on("sse4_2", "sse4_1", "ssse3", "sse3", "cx16", "lahf_lm", "popcnt", "sse2", "sse", "mmx"),
    ]


def test_x86_64_v3_is_level_values_then_v3_flags_in_reference_order() -> None:
    # plugin.py all_features order applied to archspec's x86_64_v3 features (+ sse3 alias)
    assert configs(x86_64.x86_64_properties(3)) == [
        ("level", ["v3", "v2", "v1"]),
        *on("avx2", "avx", "bmi2", "bmi1", "abm", "f16c", "fma", "movbe", "xsave"),
        *on("sse4_2", "sse4_1", "ssse3", "sse3", "cx16", "lahf_lm", "popcnt", "sse2", "sse", "mmx"),
    ]


def test_x86_64_v4_puts_avx512_flags_first() -> None:
    assert configs(x86_64.x86_64_properties(4))[:6] == [
        ("level", ["v4", "v3", "v2", "v1"]),
        *on("avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"),
    ]
    assert {p.feature for p in x86_64.x86_64_properties(4)} - {"level"} == {
        *X86_64_V4_FLAGS,
        "sse3",
    }


def test_x86_64_v1_is_the_baseline_not_nothing() -> None:
    # Deliberate difference from the reference (documented in proxy/providers/x86_64.py).
    assert configs(x86_64.x86_64_properties(1)) == [("level", ["v1"]), *on("sse2", "sse", "mmx")]


def test_x86_64_level_is_capped_at_v4_like_reference_test_level_cap() -> None:
    # provider-variant-x86-64 tests/test_plugin.py::test_level_cap
    assert x86_64.level_values(6) == ("v4", "v3", "v2", "v1")


def test_x86_64_level_below_one_is_rejected() -> None:
    with pytest.raises(HardwareValueError, match="level 0"):
        x86_64.level_values(0)


def test_x86_64_extra_flags_join_in_reference_order_and_unknown_ones_are_ignored() -> None:
    props = x86_64.x86_64_properties(3, ["sha_ni", "aes", "not_a_flag", "avx512_vnni"])
    flags = [p.feature for p in props if p.feature != "level"]
    assert flags[:2] == ["avx512_vnni", "sha_ni"]
    assert flags.index("aes") == flags.index("xsave") + 1  # westmere aes comes after v3's xsave
    assert "not_a_flag" not in flags


@pytest.mark.parametrize(
    ("flag_set", "level"),
    [
        (["mmx", "sse", "sse2"], 1),
        ([*X86_64_V2_FLAGS, "sse3"], 2),
        ([*X86_64_V3_FLAGS, "sse3"], 3),
        ([*X86_64_V4_FLAGS, "sse3"], 4),
        ([*(f for f in X86_64_V3_FLAGS if f != "movbe"), "sse3"], 2),
        ([], 1),
    ],
)
def test_x86_64_level_from_flags(flag_set: list[str], level: int) -> None:
    assert x86_64.level_from_flags(flag_set) == level


def test_x86_64_reference_flags_translates_other_spellings() -> None:
    assert x86_64.reference_flags(
        ["pni", "rdrnd", "sha", "avx512vnni", "SSE4.1", "avx1.0", "lzcnt", "lahf", "bogus"]
    ) == {"sse3", "rdrand", "sha_ni", "avx512_vnni", "sse4_1", "avx", "abm", "lahf_lm"}


def test_x86_64_ssse3_implies_sse3_like_archspec() -> None:
    assert x86_64.reference_flags(["ssse3"]) == {"ssse3", "sse3"}


def test_x86_64_vocabulary_is_the_reference_one() -> None:
    # plugin.py all_features: 56 names from avx_vnni down to mmx, no duplicates.
    assert len(x86_64.FLAGS) == 56 == len(set(x86_64.FLAGS))
    assert x86_64.FLAGS[:4] == ("avx_vnni", "cppc", "ibrs_enhanced", "tsc_adjust")
    assert x86_64.FLAGS[-3:] == ("sse2", "sse", "mmx")
    assert all(flags <= set(x86_64.FLAGS) for flags in x86_64.LEVEL_FLAGS.values())


# --- aarch64 -----------------------------------------------------------------------------

# archspec microarchitectures.json feature lists of named CPUs used by the reference tests.
CORTEX_A72 = ["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "cpuid"]
A64FX = [
    *["fp", "asimd", "evtstrm", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp"],
    *["cpuid", "asimdrdm", "fcma", "dcpop", "sve"],
]
THUNDERX2 = [
    *["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics"],
    *["cpuid", "asimdrdm"],
]
GRAVITON2 = [
    *["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp"],
    *["asimdhp", "cpuid", "asimdrdm", "lrcpc", "dcpop", "asimddp", "ssbs"],
]
M1 = [
    *["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp"],
    *["asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "asimddp"],
    *["sha512", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg"],
    *["dcpodp", "flagm2", "frint"],
]


def test_aarch64_cortex_a72_matches_reference_test() -> None:
    # provider-variant-aarch64 tests/test_plugin.py::test_cortex_a72_configs
    version = aarch64.version_from_flags(CORTEX_A72)
    assert configs(aarch64.aarch64_properties(version, CORTEX_A72)) == [
        ("version", ["8a"]),
        *on("aes", "asimd", "cpuid", "crc32", "evtstrm", "fp", "pmull", "sha1", "sha2"),
    ]


def test_aarch64_a64fx_matches_reference_test() -> None:
    # provider-variant-aarch64 tests/test_plugin.py::test_a64fx_configs
    version = aarch64.version_from_flags(A64FX)
    assert configs(aarch64.aarch64_properties(version, A64FX)) == [
        ("version", ["8.2a", "8.1a", "8a"]),
        *on("asimdhp", "dcpop", "fcma", "fphp", "sve"),
        *on("asimd", "cpuid", "crc32", "evtstrm", "fp", "sha1", "sha2"),
    ]


def test_aarch64_generic_versions_match_reference_tests() -> None:
    # tests/test_plugin.py::test_arm84a_configs and ::test_aarch64_configs
    assert configs(aarch64.aarch64_properties("8.4a")) == [
        ("version", ["8.4a", "8.3a", "8.2a", "8.1a", "8a"])
    ]
    assert configs(aarch64.aarch64_properties()) == [("version", ["8a"])]


def test_aarch64_newer_versions_are_capped_at_9_0a_like_reference_test_level_cap() -> None:
    # tests/test_plugin.py::test_level_cap
    expected = ("9.0a", "8.5a", "8.4a", "8.3a", "8.2a", "8.1a", "8a")
    assert aarch64.version_values("9.1a") == expected
    assert aarch64.version_values("9.0a") == expected
    assert aarch64.version_values("8.7a")[0] == "8.5a"


@pytest.mark.parametrize(
    ("flag_set", "version"),
    # The versions archspec gives these CPUs (thunderx2 8.1a, graviton2 = neoverse_n1 8.2a,
    # m1 8.4a: it has the 8.5 extensions except BTI).
    [(CORTEX_A72, "8a"), (THUNDERX2, "8.1a"), (A64FX, "8.2a"), (GRAVITON2, "8.2a"), (M1, "8.4a")],
)
def test_aarch64_version_from_flags(flag_set: list[str], version: str) -> None:
    assert aarch64.version_from_flags(flag_set) == version


def test_aarch64_version_from_flags_reaches_9_0a_with_sve2() -> None:
    assert aarch64.version_from_flags([*M1, "bti", "sve2"]) == "9.0a"
    assert aarch64.version_from_flags([*M1, "sve2"]) == "8.4a"  # no 8.5 without bti


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("8a", "8a"), ("8.0a", "8a"), ("8.2a", "8.2a"), ("9a", "9.0a"), ("9.0a", "9.0a")],
)
def test_aarch64_canonical_version(text: str, canonical: str) -> None:
    assert aarch64.canonical_version(text) == canonical


@pytest.mark.parametrize("text", ["7.0a", "10.0a", "8.10a", "8.2", "v8.2a", "8.2a\n", "foo", ""])
def test_aarch64_bad_versions_are_rejected_naming_them(text: str) -> None:
    with pytest.raises(HardwareValueError, match=re.escape(repr(text))):
        aarch64.canonical_version(text)


def test_aarch64_vocabulary_keeps_the_reference_quirk() -> None:
    # plugin.py all_features lists "asimdrdmatomics" (asimdrdm and atomics run together).
    assert "asimdrdmatomics" in aarch64.FLAGS
    assert aarch64.reference_flags(["asimdrdm", "atomics", "sve"]) == {"sve"}
    assert len(aarch64.FLAGS) == 40 == len(set(aarch64.FLAGS))


# --- nvidia ------------------------------------------------------------------------------

# nvidia_variant_provider/plugin.py get_supported_configs with a CUDA 12.7 driver
# (tests/test_plugin_basic.py::test_get_supported_configs_with_env_overrides checks the ends).
LOWER_12_7 = [
    *["12.7", "12.6", "12.5", "12.4", "12.3", "12.2", "12.1", "12.0", "12"],
    *[f"11.{minor}" for minor in range(20, -1, -1)],
    "11",
]
UPPER_12_7 = [
    *[f"15.{minor}" for minor in range(20, -1, -1)],
    "15",
    *[f"14.{minor}" for minor in range(20, -1, -1)],
    "14",
    *[f"13.{minor}" for minor in range(20, -1, -1)],
    "13",
    *["12.20", "12.19", "12.18", "12.17", "12.16", "12.15", "12.14", "12.13", "12.12"],
    *["12.11", "12.10", "12.9", "12.8"],
]


def test_nvidia_cuda_12_7_bounds_match_reference() -> None:
    assert list(nvidia.lower_bound_values((12, 7))) == LOWER_12_7
    assert list(nvidia.upper_bound_values((12, 7))) == UPPER_12_7
    assert (LOWER_12_7[0], LOWER_12_7[-1], UPPER_12_7[0], UPPER_12_7[-1]) == (
        "12.7",
        "11",
        "15.20",
        "12.8",
    )


def test_nvidia_cuda_12_8_upper_bound_contains_major_13() -> None:
    upper = nvidia.upper_bound_values((12, 8))
    assert "13" in upper and "12.8" not in upper and upper[-1] == "12.9"


def test_nvidia_forced_cuda_above_the_range_has_no_upper_bound() -> None:
    # The reference's CUDA override skips the range check: 16.25 gives 16.25 .. 16, 15.20 ..
    lower = nvidia.lower_bound_values((16, 25))
    assert lower[:3] == ("16.25", "16.24", "16.23") and lower[25:28] == ("16.0", "16", "15.20")
    assert nvidia.upper_bound_values((16, 25)) == ()


def test_nvidia_forced_cuda_below_the_range_has_no_lower_bound() -> None:
    assert nvidia.lower_bound_values((10, 2)) == ()
    assert nvidia.upper_bound_values((10, 2))[-1] == "10.3"


@pytest.mark.parametrize(
    ("capability", "values"),
    [
        # tests/test_plugin_basic.py: 12.5 -> 125_real first, 120_virtual last
        (
            (12, 5),
            ["125_real", "124_real", "123_real", "122_real", "121_real", "120_real", "120_virtual"],
        ),
        ((9, 0), ["90_real", "90_virtual"]),
        ((8, 9), [*(f"8{m}_real" for m in range(9, -1, -1)), "80_virtual"]),
        ((5, 0), ["50_real", "50_virtual"]),
        ((3, 5), []),  # below 5.0: the reference warns and leaves sm_arch out
    ],
)
def test_nvidia_sm_arch_values(capability: tuple[int, int], values: list[str]) -> None:
    assert list(nvidia.sm_arch_values(capability)) == values


def test_nvidia_properties_order_is_lower_upper_sm() -> None:
    props = nvidia.nvidia_properties((12, 8), (9, 0))
    assert [feature for feature, _ in configs(props)] == [
        "cuda_version_lower_bound",
        "cuda_version_upper_bound",
        "sm_arch",
    ]
    assert {p.namespace for p in props} == {"nvidia"}


def test_nvidia_properties_emit_only_what_is_known() -> None:
    assert configs(nvidia.nvidia_properties(None, (9, 0))) == [
        ("sm_arch", ["90_real", "90_virtual"])
    ]
    assert "sm_arch" not in dict(configs(nvidia.nvidia_properties((12, 8), None)))
    assert nvidia.nvidia_properties(None, None) == ()


@pytest.mark.parametrize(
    ("raw", "version"), [(12080, (12, 8)), (12040, (12, 4)), (13000, (13, 0)), (11080, (11, 8))]
)
def test_nvidia_cuda_version_from_driver(raw: int, version: tuple[int, int]) -> None:
    assert nvidia.cuda_version_from_driver(raw) == version


@pytest.mark.parametrize(
    ("version", "accepted"),
    [((10, 9), False), ((11, 0), True), ((12, 8), True), ((15, 20), True), ((15, 21), False)],
)
def test_nvidia_detectable_cuda_range(version: tuple[int, int], accepted: bool) -> None:
    assert nvidia.detectable_cuda_version(version) is accepted


# --- all providers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "properties",
    [
        x86_64.x86_64_properties(4, x86_64.FLAGS),
        aarch64.aarch64_properties("9.0a", aarch64.FLAGS),
        nvidia.nvidia_properties((12, 8), (12, 1)),
    ],
    ids=["x86_64", "aarch64", "nvidia"],
)
def test_every_emitted_property_is_valid_for_variantlib(
    properties: tuple[VariantProperty, ...],
) -> None:
    for prop in properties:
        oracle = OracleProperty.from_str(str(prop))
        assert (oracle.namespace, oracle.feature, oracle.value) == (
            prop.namespace,
            prop.feature,
            prop.value,
        )
