"""Fingerprints: the Variant-Properties header, hardware specs, expansion and profiles."""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from variantlib.constants import VALIDATION_PROPERTY_REGEX

from proxy.variants.fingerprint import (
    EMPTY_FINGERPRINT,
    Fingerprint,
    FingerprintError,
    HardwareSpec,
    HardwareSpecError,
    expand_hardware_spec,
    format_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
    profile_fingerprint,
)
from proxy.variants.properties import VariantProperty


def prop(text: str) -> VariantProperty:
    return VariantProperty.parse(text)


def props(*texts: str) -> tuple[VariantProperty, ...]:
    return tuple(prop(text) for text in texts)


def one_line_error(excinfo: pytest.ExceptionInfo[Exception]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# --- the Variant-Properties header -------------------------------------------------------


def test_header_is_parsed_in_order() -> None:
    fingerprint = parse_properties_header("x86_64 :: level :: v3, x86_64 :: level :: v2")
    assert fingerprint.properties == props("x86_64 :: level :: v3", "x86_64 :: level :: v2")


@pytest.mark.parametrize(
    "text",
    [
        "a :: b :: c, d :: e :: f",
        "a::b::c,d::e::f",
        "  a ::b::  c ,\td\t::\te :: f  ",
        "a :: b :: c ,d :: e :: f",
    ],
)
def test_header_whitespace_around_separators_is_ignored(text: str) -> None:
    assert parse_properties_header(text).properties == props("a :: b :: c", "d :: e :: f")


def test_header_groups_values_under_features_ranked_by_first_appearance() -> None:
    fingerprint = parse_properties_header("a :: f :: 1, b :: g :: 1, a :: f :: 2, b :: h :: 9")
    assert fingerprint.properties == props(
        "a :: f :: 1", "a :: f :: 2", "b :: g :: 1", "b :: h :: 9"
    )
    assert fingerprint.features == (("a", "f"), ("b", "g"), ("b", "h"))
    assert fingerprint.values("a", "f") == ("1", "2")


def test_header_duplicates_are_dropped_keeping_the_first() -> None:
    fingerprint = parse_properties_header("a :: f :: 2, a :: f :: 1, a :: f :: 2")
    assert fingerprint.values("a", "f") == ("2", "1")


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_header_is_a_known_empty_fingerprint(text: str) -> None:
    fingerprint = parse_properties_header(text)
    assert fingerprint.is_empty
    assert fingerprint == EMPTY_FINGERPRINT


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a :: b", "'a :: b'"),
        ("a :: b :: c :: d", "'a :: b :: c :: d'"),
        ("Foo :: b :: c", "'Foo'"),
        ("a :: b-c :: d", "'b-c'"),
        ("a :: b :: C!", "'C!'"),
        ("a :: :: c", "''"),
        ("a :: b :: c, x :: y", "'x :: y'"),
    ],
)
def test_bad_header_item_is_named_in_a_one_line_error(text: str, named: str) -> None:
    with pytest.raises(FingerprintError) as excinfo:
        parse_properties_header(text)
    message = one_line_error(excinfo)
    assert named in message and "Variant-Properties" in message


@pytest.mark.parametrize(
    ("text", "position"), [("a :: b :: c,", 2), (",a :: b :: c", 1), ("a::b::c, ,d::e::f", 2)]
)
def test_empty_header_item_is_an_error_naming_its_position(text: str, position: int) -> None:
    with pytest.raises(FingerprintError, match=f"item {position} is empty"):
        parse_properties_header(text)


def test_fingerprint_error_is_a_value_error() -> None:
    assert issubclass(FingerprintError, ValueError)
    assert issubclass(HardwareSpecError, FingerprintError)


_name = st.text(alphabet="abcxyz019_", min_size=1, max_size=6)
_value = st.text(alphabet="abcxyz019_.", min_size=1, max_size=6)
_property = st.builds(VariantProperty, _name, _name, _value)


@given(st.lists(_property, max_size=12))
def test_header_value_parses_back_to_the_same_fingerprint(items: list[VariantProperty]) -> None:
    fingerprint = Fingerprint(tuple(items))
    again = parse_properties_header(fingerprint.header_value())
    assert again == fingerprint
    assert again.cache_key == fingerprint.cache_key


@given(st.text(alphabet="ab1_.: \tA-", max_size=20))
def test_header_items_are_accepted_exactly_when_variantlib_accepts_them(item: str) -> None:
    # variantlib's own property regex is the oracle for one item's syntax.
    accepted_by_variantlib = VALIDATION_PROPERTY_REGEX.fullmatch(item.strip()) is not None
    try:
        parse_properties_header(item)
    except FingerprintError:
        accepted = False
    else:
        accepted = True
    if item.strip():
        assert accepted == accepted_by_variantlib


# --- the Fingerprint model ---------------------------------------------------------------


def test_equivalent_orders_give_equal_fingerprints_and_cache_keys() -> None:
    first = Fingerprint(props("a :: f :: 1", "b :: g :: 1", "a :: f :: 2"))
    second = Fingerprint(props("a :: f :: 1", "a :: f :: 2", "b :: g :: 1", "a :: f :: 1"))
    assert first == second
    assert first.cache_key == second.cache_key
    assert hash(first) == hash(second)


def test_preference_order_changes_the_cache_key() -> None:
    best_v3 = Fingerprint(props("x86_64 :: level :: v3", "x86_64 :: level :: v2"))
    best_v2 = Fingerprint(props("x86_64 :: level :: v2", "x86_64 :: level :: v3"))
    assert best_v3 != best_v2
    assert best_v3.cache_key != best_v2.cache_key


def test_cache_key_is_short_stable_text() -> None:
    key = Fingerprint(props("a :: b :: c")).cache_key
    assert re.fullmatch(r"fp1-[0-9a-f]{32}", key)
    assert key == Fingerprint(props("a :: b :: c")).cache_key
    assert EMPTY_FINGERPRINT.cache_key != key


def test_supports_and_values() -> None:
    fingerprint = Fingerprint(
        props("nvidia :: sm_arch :: 90_real", "nvidia :: sm_arch :: 90_virtual")
    )
    assert fingerprint.supports(prop("nvidia :: sm_arch :: 90_virtual"))
    assert not fingerprint.supports(prop("nvidia :: sm_arch :: 80_real"))
    assert fingerprint.values("nvidia", "cuda_version_lower_bound") == ()
    assert not fingerprint.is_empty


def test_values_by_feature_is_a_read_only_view() -> None:
    fingerprint = Fingerprint(props("a :: f :: 1", "a :: f :: 2", "b :: g :: 1"))
    assert dict(fingerprint.values_by_feature) == {("a", "f"): ("1", "2"), ("b", "g"): ("1",)}
    with pytest.raises(TypeError):
        fingerprint.values_by_feature[("c", "h")] = ("x",)  # type: ignore[index]


def test_fingerprint_survives_pickling() -> None:
    fingerprint = Fingerprint(props("a :: f :: 1", "b :: g :: 1"))
    again = pickle.loads(pickle.dumps(fingerprint))
    assert again == fingerprint
    assert again.cache_key == fingerprint.cache_key
    assert again.values("a", "f") == ("1",)


def test_header_value_form() -> None:
    fingerprint = Fingerprint(props("a :: b :: c", "d :: e :: f"))
    assert fingerprint.header_value() == "a :: b :: c, d :: e :: f"
    assert EMPTY_FINGERPRINT.header_value() == ""


# --- hardware specs ----------------------------------------------------------------------


def test_full_spec_is_parsed() -> None:
    spec = parse_hardware_spec("cpu=x86_64_v3,cuda=12.8,sm=9.0,prop=a::b::c,prop=d::e::f")
    assert spec == HardwareSpec(
        cpu="x86_64_v3", cuda=(12, 8), sm=(9, 0), properties=props("a :: b :: c", "d :: e :: f")
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("cpu=x86_64_v3", "cpu=x86_64_v3"),
        ("sm=9.0, cpu=x86_64_v4 ,cuda=12.8", "cpu=x86_64_v4,cuda=12.8,sm=9.0"),
        ("cpu=aarch64", "cpu=aarch64"),
        ("cpu=aarch64_9.0a", "cpu=aarch64_9.0a"),
        ("cpu=aarch64_8.0a", "cpu=aarch64_8a"),
        ("cpu=aarch64_9a", "cpu=aarch64_9.0a"),
        ("cuda=12", "cuda=12.0"),
        ("cuda=12.08", "cuda=12.8"),
        ("sm=12", "sm=12.0"),
        ("prop= a :: b :: c", "prop=a::b::c"),
        ("prop=a::b::c,prop=a::b::c", "prop=a::b::c"),
        ("none", "none"),
        (" none ", "none"),
    ],
)
def test_spec_format_is_canonical(text: str, canonical: str) -> None:
    spec = parse_hardware_spec(text)
    assert format_hardware_spec(spec) == canonical
    assert parse_hardware_spec(canonical) == spec


def test_spec_format_is_url_path_safe() -> None:
    text = format_hardware_spec(
        parse_hardware_spec("cpu=aarch64_8.2a,cuda=12.8,sm=9.0,prop=x::y::z.1")
    )
    assert re.fullmatch(r"[A-Za-z0-9_.=,:]+", text)


_specs = st.builds(
    HardwareSpec,
    cpu=st.sampled_from(
        [None, "x86_64_v1", "x86_64_v2", "x86_64_v3", "x86_64_v4", "aarch64", "aarch64_8.2a"]
    ),
    cuda=st.none() | st.tuples(st.integers(0, 999), st.integers(0, 999)),
    sm=st.none() | st.tuples(st.integers(5, 99), st.integers(0, 9)),
    properties=st.lists(_property, min_size=1, max_size=4).map(tuple),
)


@given(_specs | st.just(HardwareSpec(none=True)))
def test_spec_round_trips_through_its_text(spec: HardwareSpec) -> None:
    assert parse_hardware_spec(format_hardware_spec(spec)) == spec


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty hardware spec"),
        ("   ", "empty hardware spec"),
        ("gpu=h100", "'gpu'"),
        ("cpu", "'cpu'"),
        ("cpu=x86_64_v3,cpu=x86_64_v2", "duplicate hardware spec key 'cpu'"),
        ("cpu=x86_64_v3,", "item 2 is empty"),
        ("none,cpu=x86_64_v3", "'none' must stand alone"),
        ("cpu=x86_64_v5", "cpu='x86_64_v5'"),
        ("cpu=x86_64_v0", "cpu='x86_64_v0'"),
        ("cpu=x86_64", "cpu='x86_64'"),
        ("cpu=X86_64_V3", "cpu='X86_64_V3'"),
        ("cpu=armv8", "cpu='armv8'"),
        ("cpu=aarch64_7.0a", "cpu='aarch64_7.0a'"),
        ("cpu=aarch64_fast", "cpu='aarch64_fast'"),
        ("cuda=abc", "cuda='abc'"),
        ("cuda=12.8.1", "cuda='12.8.1'"),
        ("cuda=-1", "cuda='-1'"),
        ("cuda=\u0661\u0662", "cuda="),
        ("cuda=", "cuda=''"),
        ("sm=9.0.1", "sm='9.0.1'"),
        ("sm=9.10", "sm='9.10'"),
        ("sm=3.5", "sm='3.5'"),
        ("prop=a::b", "prop='a::b'"),
        ("prop=A::b::c", "'A'"),
    ],
)
def test_bad_spec_is_a_one_line_error_naming_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(HardwareSpecError) as excinfo:
        parse_hardware_spec(text)
    assert named in one_line_error(excinfo)


def test_spec_constructor_checks_what_parsing_checks() -> None:
    with pytest.raises(HardwareSpecError, match="'none' cannot be combined"):
        HardwareSpec(cpu="x86_64_v2", none=True)
    with pytest.raises(HardwareSpecError, match="empty hardware spec"):
        HardwareSpec()
    with pytest.raises(HardwareSpecError, match="cpu='x86_64_v3\\\\n'"):
        HardwareSpec(cpu="x86_64_v3\n")
    with pytest.raises(HardwareSpecError, match=r"sm='4\.0'"):
        HardwareSpec(sm=(4, 0))
    with pytest.raises(HardwareSpecError, match="invalid prop='a :: B :: c'"):
        HardwareSpec(properties=(VariantProperty("a", "B", "c"),))
    assert HardwareSpec(cpu="aarch64_8.0a").cpu == "aarch64_8a"


# --- expansion ---------------------------------------------------------------------------

X86_64_V3 = [
    "x86_64 :: level :: v3",
    "x86_64 :: level :: v2",
    "x86_64 :: level :: v1",
    *(
        f"x86_64 :: {flag} :: on"
        for flag in (
            *("avx2", "avx", "bmi2", "bmi1", "abm", "f16c", "fma", "movbe", "xsave", "sse4_2"),
            *("sse4_1", "ssse3", "sse3", "cx16", "lahf_lm", "popcnt", "sse2", "sse", "mmx"),
        )
    ),
]


def test_x86_64_v3_expands_to_levels_and_the_flags_the_level_implies() -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec("cpu=x86_64_v3"))
    assert [str(p) for p in fingerprint.properties] == X86_64_V3


def test_aarch64_expands_to_its_version_and_older_ones() -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec("cpu=aarch64_8.2a"))
    assert fingerprint.properties == props(
        "aarch64 :: version :: 8.2a", "aarch64 :: version :: 8.1a", "aarch64 :: version :: 8a"
    )
    plain = expand_hardware_spec(parse_hardware_spec("cpu=aarch64"))
    assert plain.properties == props("aarch64 :: version :: 8a")


def test_cuda_and_sm_expand_to_the_nvidia_features() -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec("cuda=12.8,sm=9.0"))
    assert fingerprint.features == (
        ("nvidia", "cuda_version_lower_bound"),
        ("nvidia", "cuda_version_upper_bound"),
        ("nvidia", "sm_arch"),
    )
    assert fingerprint.values("nvidia", "cuda_version_lower_bound")[:2] == ("12.8", "12.7")
    assert "13" in fingerprint.values("nvidia", "cuda_version_upper_bound")
    assert fingerprint.values("nvidia", "sm_arch") == ("90_real", "90_virtual")


def test_sm_without_cuda_gives_sm_arch_alone() -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec("sm=8.6"))
    assert fingerprint.features == (("nvidia", "sm_arch"),)
    assert fingerprint.values("nvidia", "sm_arch")[0] == "86_real"


def test_cpu_comes_before_nvidia_and_props_come_last() -> None:
    fingerprint = expand_hardware_spec(
        parse_hardware_spec("prop=fictional_hw::architecture::tars,cuda=12.8,cpu=x86_64_v2")
    )
    namespaces = list(dict.fromkeys(ns for ns, _ in fingerprint.features))
    assert namespaces == ["x86_64", "nvidia", "fictional_hw"]


def test_prop_naming_a_cpu_flag_takes_the_flags_place_in_provider_order() -> None:
    fingerprint = expand_hardware_spec(
        parse_hardware_spec("cpu=x86_64_v3,prop=x86_64::aes::on,prop=x86_64::avx512_vnni::on")
    )
    flags = [feature for ns, feature in fingerprint.features if feature != "level"]
    assert flags[0] == "avx512_vnni"
    assert flags.index("aes") == flags.index("xsave") + 1
    assert len(fingerprint.properties) == len(X86_64_V3) + 2


def test_prop_outside_the_cpu_vocabulary_is_kept_after_the_provider_list() -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec("cpu=x86_64_v2,prop=x86_64::level::v4"))
    assert fingerprint.values("x86_64", "level") == ("v2", "v1", "v4")


def test_none_expands_to_the_known_empty_fingerprint() -> None:
    assert expand_hardware_spec(parse_hardware_spec("none")) == EMPTY_FINGERPRINT


# --- profiles ----------------------------------------------------------------------------


def test_profile_from_hw() -> None:
    fingerprint = profile_fingerprint(hw="cpu=x86_64_v3", properties=None)
    assert [str(p) for p in fingerprint.properties] == X86_64_V3


def test_profile_from_properties_keeps_their_order() -> None:
    fingerprint = profile_fingerprint(
        hw=None, properties=["x86_64 :: level :: v2", "fictional_hw :: architecture :: tars"]
    )
    assert fingerprint.properties == props(
        "x86_64 :: level :: v2", "fictional_hw :: architecture :: tars"
    )


def test_profile_with_empty_properties_is_a_known_empty_fingerprint() -> None:
    assert profile_fingerprint(hw=None, properties=[]) == EMPTY_FINGERPRINT


@pytest.mark.parametrize(
    ("hw", "properties", "named"),
    [
        ("cpu=x86_64_v3", ["a :: b :: c"], "not both"),
        (None, None, "one of 'hw' or 'properties'"),
        ("cpu=x86_64_v9", None, "invalid profile 'hw'"),
        (None, "a :: b :: c", "expected a list of strings"),
        (None, ["a :: b :: c", "a :: b"], "invalid profile 'properties' item 'a :: b'"),
        (None, ["a :: b :: c", 3], "invalid profile 'properties' item 3"),
    ],
)
def test_bad_profile_errors_name_what_is_wrong(
    hw: str | None, properties: list[str] | None, named: str
) -> None:
    with pytest.raises(FingerprintError) as excinfo:
        profile_fingerprint(hw=hw, properties=properties)
    assert named in one_line_error(excinfo)
