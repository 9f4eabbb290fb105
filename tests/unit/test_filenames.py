"""Wheel, sdist and variants.json file names; the platform comparison of CONTRACT rule 3."""

from __future__ import annotations

import re

import pytest

from proxy.simple.filenames import (
    FilenameError,
    SdistName,
    WheelName,
    parse_dist_filename,
    parse_sdist_filename,
    parse_variants_json_filename,
    parse_wheel_filename,
    variants_json_filename,
)


def test_plain_wheel_has_no_label_and_round_trips() -> None:
    name = "numpy-2.3.2-cp313-cp313t-musllinux_1_2_x86_64.whl"
    wheel = parse_wheel_filename(name)
    assert wheel == WheelName(
        "numpy", "2.3.2", None, "cp313", "cp313t", "musllinux_1_2_x86_64", None
    )
    assert not wheel.is_variant
    assert not wheel.is_null_variant
    assert wheel.filename == name
    assert wheel.legacy_filename == name


def test_six_parts_with_a_non_digit_third_part_carry_a_variant_label() -> None:
    name = "numpy-2.3.2-cp313-cp313t-musllinux_1_2_x86_64-x86_64_v3.whl"
    wheel = parse_wheel_filename(name)
    assert wheel.build_tag is None
    assert wheel.python_tag == "cp313"
    assert wheel.variant_label == "x86_64_v3"
    assert wheel.is_variant
    assert wheel.filename == name
    assert wheel.legacy_filename == "numpy-2.3.2-cp313-cp313t-musllinux_1_2_x86_64.whl"


def test_six_parts_with_a_digit_third_part_carry_a_build_tag() -> None:
    wheel = parse_wheel_filename("pkg-1.0-1_gpu-cp312-cp312-linux_x86_64.whl")
    assert wheel.build_tag == "1_gpu"
    assert wheel.variant_label is None
    assert wheel.filename == "pkg-1.0-1_gpu-cp312-cp312-linux_x86_64.whl"


def test_seven_parts_carry_build_tag_and_label() -> None:
    name = "numpy-2.3.2-1-cp313-cp313t-musllinux_1_2_x86_64-x86_64_v3.whl"
    wheel = parse_wheel_filename(name)
    assert (wheel.build_tag, wheel.python_tag, wheel.variant_label) == ("1", "cp313", "x86_64_v3")
    assert wheel.filename == name
    assert wheel.legacy_filename == "numpy-2.3.2-1-cp313-cp313t-musllinux_1_2_x86_64.whl"


def test_null_label_is_the_null_variant() -> None:
    wheel = parse_wheel_filename("pkg-1.0-py3-none-any-null.whl")
    assert wheel.is_variant
    assert wheel.is_null_variant
    assert wheel.legacy_filename == "pkg-1.0-py3-none-any.whl"


def test_labels_longer_than_sixteen_characters_are_accepted() -> None:
    label = "cu128_sm90_sm100_x86_64_v4.mkl"
    wheel = parse_wheel_filename(f"torch-2.9.0-cp313-cp313-manylinux_2_28_x86_64-{label}.whl")
    assert wheel.variant_label == label


def test_compressed_tag_sets_are_kept_raw() -> None:
    wheel = parse_wheel_filename(
        "pkg-1.0-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64-cu12.whl"
    )
    assert wheel.python_tag == "py2.py3"
    assert wheel.platform_tag == "manylinux_2_17_x86_64.manylinux2014_x86_64"
    assert wheel.variant_label == "cu12"


def test_local_version_and_legacy_uppercase_names_parse() -> None:
    wheel = parse_wheel_filename("Django-1.0+cu118-py2-none-any.whl")
    assert (wheel.distribution, wheel.version) == ("Django", "1.0+cu118")


@pytest.mark.parametrize(
    ("filename", "bad_part"),
    [
        ("pkg-1.0-py3-none-any-Foo.whl", "invalid variant label 'Foo'"),
        ("pkg-1.0-py3-none-any-a!b.whl", "invalid variant label 'a!b'"),
        ("pkg-1.0-1-3py-none-any-lbl.whl", "invalid python tag '3py'"),
        ("pkg-1.0-3py-none-any.whl", "invalid python tag '3py'"),
        ("pkg-1.0-1-2-cp312-cp312-any.whl", "invalid python tag '2'"),
        ("pkg-1.0-1-cp312-cp312-any-x-y.whl", "expected 5 to 7"),
        ("pkg-1.0-py3-none.whl", "expected 5 to 7"),
        ("pkg-1.0-py3-none-any-a-b-c.whl", "expected 5 to 7"),
        ("pkg-1.0-py3-none-any-.whl", "invalid variant label ''"),
        ("pkg-1.0-py3--any.whl", "invalid abi tag ''"),
        ("pkg-1.0-py3-none-any+x.whl", "invalid platform tag 'any+x'"),
        ("p$g-1.0-py3-none-any.whl", "invalid distribution name 'p$g'"),
        ("pkg--py3-none-any.whl", "invalid version ''"),
        ("pkg-1.0-1x!-py3-none-any-lbl.whl", "invalid build tag '1x!'"),
        ("pkg-1.0-py3-none-any.zip", "not a wheel file name"),
    ],
)
def test_bad_wheel_names_are_refused_naming_the_part(filename: str, bad_part: str) -> None:
    with pytest.raises(FilenameError, match=re.escape(bad_part)) as info:
        parse_wheel_filename(filename)
    assert isinstance(info.value, ValueError)
    if "expected 5 to 7" not in bad_part and "not a wheel" not in bad_part:
        assert repr(filename) in str(info.value)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("pkg-1.0.tar.gz", SdistName("pkg", "1.0", ".tar.gz")),
        ("pkg-1.0.zip", SdistName("pkg", "1.0", ".zip")),
        ("my-legacy-pkg-2.0rc1.tar.gz", SdistName("my-legacy-pkg", "2.0rc1", ".tar.gz")),
    ],
)
def test_sdist_names(filename: str, expected: SdistName) -> None:
    assert parse_sdist_filename(filename) == expected
    assert expected.filename == filename


@pytest.mark.parametrize(
    ("filename", "bad_part"),
    [
        ("pkg.tar.gz", "no '-' before the version"),
        ("pkg-.tar.gz", "invalid version ''"),
        ("-1.0.tar.gz", "invalid distribution name ''"),
        ("pkg-1.0.tar.bz2", "not a source distribution"),
    ],
)
def test_bad_sdist_names_are_refused(filename: str, bad_part: str) -> None:
    with pytest.raises(FilenameError, match=bad_part):
        parse_sdist_filename(filename)


def test_parse_dist_filename_dispatches_and_ignores_other_files() -> None:
    assert isinstance(parse_dist_filename("pkg-1.0-py3-none-any.whl"), WheelName)
    assert isinstance(parse_dist_filename("pkg-1.0.tar.gz"), SdistName)
    assert parse_dist_filename("pkg-1.0-variants.json") is None
    assert parse_dist_filename("pkg-1.0-py2.7.egg") is None
    assert parse_dist_filename("pkg-1.0.win32.exe") is None
    with pytest.raises(FilenameError):
        parse_dist_filename("pkg-1.0-py3-none-any-BAD.whl")


def test_variants_json_filename_normalises_name_and_version() -> None:
    assert variants_json_filename("Foo.Bar-baz", "1.0") == "foo_bar_baz-1.0-variants.json"
    assert variants_json_filename("torch", "2.9.0") == "torch-2.9.0-variants.json"
    assert variants_json_filename("pkg", "1.0-post1") == "pkg-1.0.post1-variants.json"
    assert variants_json_filename("pkg", "not a-version") == "pkg-not a_version-variants.json"


def test_parse_variants_json_filename() -> None:
    assert parse_variants_json_filename("foo_bar-1.0-variants.json") == ("foo_bar", "1.0")
    assert parse_variants_json_filename("foo_bar-1.0.tar.gz") is None
    assert parse_variants_json_filename("foo-bar-1.0-variants.json") is None
    assert parse_variants_json_filename("-1.0-variants.json") is None
    assert parse_variants_json_filename("foo_bar-1.0-py3-none-any.whl") is None
