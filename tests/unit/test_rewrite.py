"""Page rewriting: the legacy view (CONTRACT.md "What a legacy client is shown", rules 1-6) and
the native view, over real wheel names and variants.json documents in PEP 825 v0.1.x form."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.simple.filenames import parse_wheel_filename
from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.metadata import VariantsDoc, parse_variants_json
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import (
    FileDecision,
    VersionDecision,
    VersionVariants,
    View,
    legacy_view,
    native_view,
    variant_versions,
)

SCHEMA = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"

Features = dict[str, dict[str, list[str]]]


def variants_doc(variants: dict[str, Features], namespaces: tuple[str, ...]) -> VariantsDoc:
    return parse_variants_json(
        {
            "$schema": SCHEMA,
            "default-priorities": {"namespace": list(namespaces)},
            "variants": variants,
        }
    )


def dist(filename: str, **attributes: Any) -> DistFile:
    """A listed file with a URL and sha256 of its own, so each one is recognisable."""
    digest = hashlib.sha256(filename.encode()).hexdigest()
    attributes.setdefault("hashes", {"sha256": digest})
    return DistFile(filename, f"https://files.index.example/{digest[:8]}/{filename}", **attributes)


def project(*files: DistFile) -> ProjectPage:
    return ProjectPage("pkg", tuple(files))


def fingerprint(*items: str) -> tuple[VariantProperty, ...]:
    return tuple(VariantProperty.parse(item) for item in items)


def names(view: View) -> list[str]:
    return [d.filename for d in view.page.files]


def decision_for(view: View, version: str) -> VersionDecision:
    (found,) = [d for d in view.decisions if d.version == version]
    return found


def file_decision(decision: VersionDecision, filename: str) -> FileDecision:
    (found,) = [f for f in decision.files if f.filename == filename]
    return found


# --- the running example: pkg 1.0 with CPU-level and GPU variants ---------------------------

SDIST = dist("pkg-1.0.tar.gz")
PLAIN_LINUX = dist("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
PLAIN_MUSL = dist("pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl")
PLAIN_WINDOWS = dist("pkg-1.0-cp312-cp312-win_amd64.whl")
V3 = dist(
    "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl",
    requires_python=">=3.12",
    core_metadata={"sha256": "ab" * 32},
    gpg_sig=False,
    size=123_456,
    upload_time="2025-01-02T03:04:05.000000Z",
    provenance="https://files.index.example/provenance/v3",
    extra={"data-dist-info-metadata": True},
)
V4 = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v4.whl")
CU128 = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-cu128.whl")
NULL = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-null.whl")
VARIANTS_JSON = dist("pkg-1.0-variants.json")

PAGE = project(SDIST, PLAIN_LINUX, PLAIN_MUSL, PLAIN_WINDOWS, V3, V4, CU128, NULL, VARIANTS_JSON)

DOC = variants_doc(
    {
        "null": {},
        "x86_64_v3": {"x86_64": {"level": ["v3"]}},
        "x86_64_v4": {"x86_64": {"level": ["v4"]}},
        "cu128": {"nvidia": {"sm_arch": ["90_real"]}},
    },
    namespaces=("nvidia", "x86_64"),
)
VARIANTS = {"1.0": VersionVariants(DOC, None, VARIANTS_JSON)}

CPU_V3 = fingerprint("x86_64 :: level :: v3", "x86_64 :: level :: v2", "x86_64 :: level :: v1")
CPU_V4_GPU = fingerprint(
    "x86_64 :: level :: v4",
    "x86_64 :: level :: v3",
    "x86_64 :: level :: v2",
    "x86_64 :: level :: v1",
    "nvidia :: sm_arch :: 90_real",
)
LEGACY_LINUX_NAME = "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"


# --- legacy view: which label wins, what is renamed, what is replaced ------------------------


def test_legacy_v3_client_gets_the_v3_wheel_under_its_legacy_name() -> None:
    view = legacy_view(PAGE, VARIANTS, CPU_V3)
    assert names(view) == [
        "pkg-1.0.tar.gz",
        # needs only glibc 2.17: the v3 wheel (glibc 2.28) does not install everywhere it does
        PLAIN_LINUX.filename,
        "pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
        "pkg-1.0-cp312-cp312-win_amd64.whl",
        LEGACY_LINUX_NAME,
    ]
    shown = view.page.files[-1]
    assert shown.url == V3.url


def test_legacy_gpu_client_gets_the_gpu_variant_because_its_namespace_ranks_first() -> None:
    view = legacy_view(PAGE, VARIANTS, CPU_V4_GPU)
    assert names(view)[-1] == LEGACY_LINUX_NAME
    assert view.page.files[-1].url == CU128.url
    decision = decision_for(view, "1.0")
    assert decision.ranking == ("cu128", "x86_64_v4", "x86_64_v3", "null")
    assert decision.winner == "cu128"


def test_legacy_v4_cpu_only_client_gets_v4_over_v3() -> None:
    view = legacy_view(PAGE, VARIANTS, CPU_V4_GPU[:4])
    assert [d.url for d in view.page.files if d.filename == LEGACY_LINUX_NAME] == [V4.url]
    assert decision_for(view, "1.0").ranking == ("x86_64_v4", "x86_64_v3", "null")


def test_legacy_decisions_say_why_for_every_file() -> None:
    decision = decision_for(legacy_view(PAGE, VARIANTS, CPU_V3), "1.0")
    assert decision.version == "1.0"
    assert decision.ranking == ("x86_64_v3", "null")
    assert decision.winner == "x86_64_v3"
    assert decision.problem is None
    assert [f.filename for f in decision.files] == [d.filename for d in PAGE.files]

    winner = file_decision(decision, V3.filename)
    assert winner.shown_as == LEGACY_LINUX_NAME
    assert "variant 'x86_64_v3'" in winner.reason
    assert "1 of 2" in winner.reason

    for kept in (SDIST, PLAIN_LINUX, PLAIN_MUSL, PLAIN_WINDOWS):
        assert file_decision(decision, kept.filename).shown_as == kept.filename

    v4 = file_decision(decision, V4.filename)
    assert v4.shown_as is None
    assert "x86_64 :: level" in v4.reason

    gpu = file_decision(decision, CU128.filename)
    assert gpu.shown_as is None
    assert "nvidia :: sm_arch" in gpu.reason

    null = file_decision(decision, NULL.filename)
    assert null.shown_as is None
    assert "x86_64_v3" in null.reason and "same name" in null.reason

    json_file = file_decision(decision, VARIANTS_JSON.filename)
    assert json_file.shown_as is None
    assert "variants.json" in json_file.reason


def test_legacy_renamed_file_keeps_every_attribute_of_the_upstream_file() -> None:
    view = legacy_view(PAGE, VARIANTS, CPU_V3)
    (shown,) = [d for d in view.page.files if d.url == V3.url]
    assert shown == replace(V3, filename=LEGACY_LINUX_NAME)
    assert shown.hashes == V3.hashes
    assert shown.requires_python == ">=3.12"
    assert shown.yanked is False
    assert shown.size == 123_456
    assert shown.upload_time == "2025-01-02T03:04:05.000000Z"
    assert shown.core_metadata == {"sha256": "ab" * 32}
    assert shown.gpg_sig is False
    assert shown.provenance == V3.provenance
    assert shown.extra == V3.extra


def test_legacy_files_not_renamed_are_the_upstream_entries_unchanged() -> None:
    view = legacy_view(PAGE, VARIANTS, CPU_V3)
    upstream_by_url = {d.url: d for d in PAGE.files}
    for shown in view.page.files:
        if shown.url != V3.url:
            assert shown == upstream_by_url[shown.url]


def test_legacy_page_keeps_name_versions_and_extra_keys() -> None:
    page = ProjectPage(
        "pkg", PAGE.files, versions=("0.9", "1.0"), api_version="1.1", extra={"tracks": ["x"]}
    )
    view = legacy_view(page, VARIANTS, CPU_V3)
    assert view.page.name == "pkg"
    assert view.page.versions == ("0.9", "1.0")
    assert view.page.api_version == "1.1"
    assert view.page.extra == {"tracks": ["x"]}


def test_legacy_empty_fingerprint_gets_the_null_variant() -> None:
    view = legacy_view(PAGE, VARIANTS, ())
    assert names(view) == [
        "pkg-1.0.tar.gz",
        PLAIN_LINUX.filename,
        "pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
        "pkg-1.0-cp312-cp312-win_amd64.whl",
        LEGACY_LINUX_NAME,
    ]
    assert view.page.files[-1].url == NULL.url
    decision = decision_for(view, "1.0")
    assert decision.ranking == ("null",)
    assert decision.winner == "null"


def test_legacy_empty_fingerprint_without_null_variant_keeps_plain_wheels() -> None:
    doc = variants_doc(
        {"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("nvidia", "x86_64")
    )
    page = project(SDIST, PLAIN_LINUX, V3, VARIANTS_JSON)
    view = legacy_view(page, {"1.0": VersionVariants(doc, None, VARIANTS_JSON)}, ())
    assert names(view) == [SDIST.filename, PLAIN_LINUX.filename]
    assert decision_for(view, "1.0").winner is None


def test_legacy_no_fingerprint_is_the_upstream_page_minus_variant_files() -> None:
    view = legacy_view(PAGE, VARIANTS, None)
    assert list(view.page.files) == [SDIST, PLAIN_LINUX, PLAIN_MUSL, PLAIN_WINDOWS]
    decision = decision_for(view, "1.0")
    assert decision.winner is None
    assert decision.ranking == ()
    for variant in (V3, V4, CU128, NULL):
        item = file_decision(decision, variant.filename)
        assert item.shown_as is None
        assert "no fingerprint" in item.reason


def test_legacy_no_fingerprint_does_not_substitute_the_null_variant_even_alone() -> None:
    page = project(SDIST, NULL, VARIANTS_JSON)
    view = legacy_view(page, VARIANTS, None)
    assert names(view) == [SDIST.filename]


def test_legacy_label_missing_from_variants_json_is_incompatible() -> None:
    doc = variants_doc(
        {
            "null": {},
            "x86_64_v3": {"x86_64": {"level": ["v3"]}},
            "x86_64_v4": {"x86_64": {"level": ["v4"]}},
        },
        namespaces=("nvidia", "x86_64"),
    )
    view = legacy_view(PAGE, {"1.0": VersionVariants(doc, None, VARIANTS_JSON)}, CPU_V4_GPU)
    assert [d.url for d in view.page.files if d.filename == LEGACY_LINUX_NAME] == [V4.url]
    decision = decision_for(view, "1.0")
    assert "cu128" not in decision.ranking
    gpu = file_decision(decision, CU128.filename)
    assert gpu.shown_as is None
    assert "not in variants.json" in gpu.reason


def test_legacy_invalid_variants_json_makes_every_variant_incompatible() -> None:
    problem = "invalid variants.json: $schema: missing"
    view = legacy_view(PAGE, {"1.0": VersionVariants(None, problem)}, ())
    assert list(view.page.files) == [SDIST, PLAIN_LINUX, PLAIN_MUSL, PLAIN_WINDOWS]
    decision = decision_for(view, "1.0")
    assert decision.problem == problem
    assert decision.winner is None
    for variant in (V3, V4, CU128, NULL):
        assert problem in file_decision(decision, variant.filename).reason


def test_legacy_missing_variants_json_makes_every_variant_incompatible() -> None:
    page = project(SDIST, PLAIN_LINUX, V3, NULL)
    view = legacy_view(page, {}, CPU_V3)
    assert list(view.page.files) == [SDIST, PLAIN_LINUX]
    decision = decision_for(view, "1.0")
    assert decision.problem is not None and "no variants.json" in decision.problem
    assert decision.winner is None


def test_legacy_ties_are_broken_by_label() -> None:
    doc = variants_doc(
        {
            "zz_build": {"x86_64": {"level": ["v3"]}},
            "aa_build": {"x86_64": {"level": ["v3"]}},
        },
        namespaces=("x86_64",),
    )
    zz = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-zz_build.whl")
    aa = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-aa_build.whl")
    view = legacy_view(project(zz, aa), {"1.0": VersionVariants(doc)}, CPU_V3)
    assert [d.url for d in view.page.files] == [aa.url]
    assert decision_for(view, "1.0").ranking == ("aa_build", "zz_build")


def test_legacy_winner_with_wheels_for_several_platforms_replaces_each_its_own() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    linux_variant = dist(
        "pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64-x86_64_v3.whl"
    )
    windows_variant = dist("pkg-1.0-cp312-cp312-win_amd64-x86_64_v3.whl")
    mac_plain = dist("pkg-1.0-cp312-cp312-macosx_11_0_x86_64.whl")
    page = project(PLAIN_LINUX, PLAIN_WINDOWS, mac_plain, linux_variant, windows_variant)
    view = legacy_view(page, {"1.0": VersionVariants(doc)}, CPU_V3)
    assert names(view) == [
        mac_plain.filename,
        PLAIN_LINUX.filename,
        "pkg-1.0-cp312-cp312-win_amd64.whl",
    ]
    assert [d.url for d in view.page.files] == [
        mac_plain.url,
        linux_variant.url,
        windows_variant.url,
    ]


def test_legacy_build_tag_survives_the_rename() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    tagged = dist("pkg-1.0-2-cp312-cp312-linux_x86_64-x86_64_v3.whl")
    view = legacy_view(project(tagged), {"1.0": VersionVariants(doc)}, CPU_V3)
    assert names(view) == ["pkg-1.0-2-cp312-cp312-linux_x86_64.whl"]


# Which plain wheels a listed manylinux_2_28_x86_64 / cp312-cp312 variant wheel covers: those it
# installs wherever they install (rule 3), nothing that needs less (an older glibc) or more.
@pytest.mark.parametrize(
    ("plain", "covered"),
    [
        ("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", True),
        ("pkg-1.0-cp312-cp312-manylinux_2_34_x86_64.whl", True),
        ("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-manylinux2014_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-linux_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-win_amd64.whl", False),
        ("pkg-1.0-cp312-cp312-macosx_11_0_x86_64.whl", False),
        ("pkg-1.0-cp312-cp312-manylinux_2_28_aarch64.whl", False),
        ("pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", False),
        ("pkg-1.0-cp312-abi3-manylinux_2_28_x86_64.whl", False),
        ("pkg-1.0-py3-none-any.whl", False),
        ("pkg-1.0-py3-none-manylinux_2_28_x86_64.whl", False),
    ],
)
def test_legacy_plain_wheel_left_out_only_when_the_variant_covers_it(
    plain: str, covered: bool
) -> None:
    plain_dist = dist(plain)
    variant = replace(V3, requires_python=None)
    page = project(plain_dist, variant)
    view = legacy_view(page, {"1.0": VersionVariants(DOC)}, CPU_V3)
    shown_urls = [d.url for d in view.page.files]
    assert variant.url in shown_urls
    assert (plain_dist.url not in shown_urls) is covered
    item = file_decision(decision_for(view, "1.0"), plain)
    assert (item.shown_as is None) is covered
    assert item.reason.startswith("replaced by variant") is covered


def test_legacy_variant_with_a_narrower_requires_python_does_not_cover() -> None:
    plain = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", requires_python=">=3.8")
    view = legacy_view(project(plain, V3), {"1.0": VersionVariants(DOC)}, CPU_V3)
    # V3 asks for >=3.12: not a cover, but the same name, so the better-ranked V3 is listed
    assert [d.url for d in view.page.files] == [V3.url]
    reason = file_decision(decision_for(view, "1.0"), plain.filename).reason
    assert "shown under the same name" in reason


def test_legacy_yanked_best_variant_gives_way_to_the_next_wheel() -> None:
    yanked = replace(V3, yanked="broken on old glibc")
    view = legacy_view(project(PLAIN_LINUX, yanked, NULL), {"1.0": VersionVariants(DOC)}, CPU_V3)
    # the yanked v3 wheel covers nothing; the null variant has its shown name and is not yanked
    assert [d.url for d in view.page.files] == [PLAIN_LINUX.url, NULL.url]
    decision = decision_for(view, "1.0")
    assert "yanked" in file_decision(decision, yanked.filename).reason


def test_legacy_yanked_wheel_stays_when_nothing_takes_its_name() -> None:
    yanked = replace(V3, yanked=True)
    view = legacy_view(project(PLAIN_LINUX, yanked), {"1.0": VersionVariants(DOC)}, CPU_V3)
    assert [d.url for d in view.page.files] == [PLAIN_LINUX.url, yanked.url]


def test_legacy_second_label_wheel_listed_where_the_best_label_has_none() -> None:
    doc = variants_doc(
        {"x86_64_v3": {"x86_64": {"level": ["v3"]}}, "x86_64_v2": {"x86_64": {"level": ["v2"]}}},
        namespaces=("x86_64",),
    )
    v3_linux = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl")
    v2_linux = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v2.whl")
    v2_mac = dist("pkg-1.0-cp312-cp312-macosx_11_0_x86_64-x86_64_v2.whl")
    mac_plain = dist("pkg-1.0-cp312-cp312-macosx_11_0_x86_64.whl")
    view = legacy_view(
        project(mac_plain, v3_linux, v2_linux, v2_mac), {"1.0": VersionVariants(doc)}, CPU_V3
    )
    # the listed wheels keep the places of listed wheels, worst rank first (pip breaks a tie of
    # tags in favour of the later one)
    assert [d.url for d in view.page.files] == [v2_mac.url, v3_linux.url]


def test_legacy_pure_python_variant_covers_every_binary_plain_wheel() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    variant = dist("pkg-1.0-py3-none-any-x86_64_v3.whl")
    page = project(PLAIN_LINUX, PLAIN_WINDOWS, dist("pkg-1.0-cp311-cp311-win_amd64.whl"), variant)
    view = legacy_view(page, {"1.0": VersionVariants(doc)}, CPU_V3)
    assert names(view) == ["pkg-1.0-py3-none-any.whl"]


def test_legacy_macos_variant_covers_newer_macos_of_machines_it_runs_on() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    variant = dist("pkg-1.0-cp312-cp312-macosx_11_0_universal2-x86_64_v3.whl")
    newer_intel = dist("pkg-1.0-cp312-cp312-macosx_14_0_x86_64.whl")
    newer_arm = dist("pkg-1.0-cp312-cp312-macosx_14_0_arm64.whl")
    older_intel = dist("pkg-1.0-cp312-cp312-macosx_10_9_x86_64.whl")
    page = project(newer_intel, newer_arm, older_intel, variant)
    view = legacy_view(page, {"1.0": VersionVariants(doc)}, CPU_V3)
    # macOS 10.9 machines cannot run the macOS 11 wheel: that plain wheel stays
    assert [d.url for d in view.page.files] == [older_intel.url, variant.url]


def test_legacy_no_two_listed_files_share_a_name() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    plain = dist("pkg-1.0-py3-none-any.whl")
    variant = dist("pkg-1.0-py3-none-any-x86_64_v3.whl")
    view = legacy_view(project(plain, variant), {"1.0": VersionVariants(doc)}, CPU_V3)
    assert names(view) == ["pkg-1.0-py3-none-any.whl"]
    assert view.page.files[0].url == variant.url


def test_legacy_versions_without_variants_are_untouched() -> None:
    old_sdist = dist("pkg-0.9.tar.gz")
    old_wheel = dist("pkg-0.9-py3-none-any.whl", requires_python=">=3.8", yanked=True)
    page = project(old_sdist, old_wheel, *PAGE.files)
    view = legacy_view(page, VARIANTS, CPU_V3)
    assert view.page.files[0] is old_sdist
    assert view.page.files[1] is old_wheel
    assert [d.version for d in view.decisions] == ["1.0"]


def test_legacy_files_of_no_known_kind_are_kept() -> None:
    egg = dist("pkg-1.0-py2.7.egg")
    installer = dist("pkg-1.0.exe")
    view = legacy_view(project(egg, V3, installer), {"1.0": VersionVariants(DOC)}, CPU_V3)
    assert names(view) == [egg.filename, LEGACY_LINUX_NAME, installer.filename]


def test_legacy_variants_json_of_a_version_without_variant_wheels_is_left_out() -> None:
    stray = dist("pkg-0.9-variants.json")
    view = legacy_view(project(dist("pkg-0.9.tar.gz"), stray), {}, CPU_V3)
    assert names(view) == ["pkg-0.9.tar.gz"]


def test_legacy_several_versions_each_with_its_own_metadata_and_order_kept() -> None:
    doc_two = variants_doc(
        {"null": {}, "cu128": {"nvidia": {"sm_arch": ["90_real"]}}}, namespaces=("nvidia",)
    )
    two_sdist = dist("pkg-2.0.tar.gz")
    two_gpu = dist("pkg-2.0-cp312-cp312-manylinux_2_28_x86_64-cu128.whl")
    two_null = dist("pkg-2.0-cp312-cp312-manylinux_2_28_x86_64-null.whl")
    two_json = dist("pkg-2.0-variants.json")
    old = dist("pkg-0.9-py3-none-any.whl")
    # Interleaved on purpose: the served order is the upstream order.
    page = project(two_gpu, SDIST, old, V3, two_json, two_sdist, two_null, VARIANTS_JSON, V4)
    variants = {
        "1.0": VersionVariants(DOC, None, VARIANTS_JSON),
        "2.0": VersionVariants(doc_two, None, two_json),
    }
    view = legacy_view(page, variants, CPU_V3)
    assert [d.url for d in view.page.files] == [
        SDIST.url,
        old.url,
        V3.url,
        two_sdist.url,
        two_null.url,
    ]
    assert names(view) == [
        "pkg-1.0.tar.gz",
        "pkg-0.9-py3-none-any.whl",
        LEGACY_LINUX_NAME,
        "pkg-2.0.tar.gz",
        "pkg-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    ]
    assert {d.version: d.winner for d in view.decisions} == {"1.0": "x86_64_v3", "2.0": "null"}

    gpu_view = legacy_view(page, variants, CPU_V4_GPU)
    # pkg 1.0 lists no GPU wheel, so its best present label is x86_64_v4.
    assert [d.url for d in gpu_view.page.files] == [
        two_gpu.url,
        SDIST.url,
        old.url,
        two_sdist.url,
        V4.url,
    ]
    assert {d.version: d.winner for d in gpu_view.decisions} == {"1.0": "x86_64_v4", "2.0": "cu128"}


def test_legacy_versions_are_matched_to_their_metadata_in_normalised_form() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    variant = dist("pkg-1.0.RC1-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl")
    json_file = dist("pkg-1.0rc1-variants.json")
    page = project(variant, json_file)
    assert variant_versions(page) == {"1.0rc1": json_file}
    view = legacy_view(page, {"1.0rc1": VersionVariants(doc, None, json_file)}, CPU_V3)
    assert names(view) == ["pkg-1.0.RC1-cp312-cp312-manylinux_2_28_x86_64.whl"]


# --- variant_versions ----------------------------------------------------------------------


def test_variant_versions_lists_versions_with_variant_wheels_and_their_metadata_file() -> None:
    two_variant = dist("pkg-2.0-py3-none-any-null.whl")
    page = project(
        dist("pkg-0.9.tar.gz"),
        dist("pkg-0.9-variants.json"),  # no variant wheels in 0.9: not a variant version
        *PAGE.files,
        two_variant,
    )
    assert variant_versions(page) == {"1.0": VARIANTS_JSON, "2.0": None}


def test_variant_versions_of_a_page_without_variants_is_empty() -> None:
    page = project(SDIST, PLAIN_LINUX, dist("pkg-1.0-py2.7.egg"))
    assert variant_versions(page) == {}


# --- native view ---------------------------------------------------------------------------


def test_native_lists_compatible_variants_null_and_plain_files_under_their_own_names() -> None:
    view = native_view(PAGE, VARIANTS, CPU_V3)
    assert list(view.page.files) == [
        SDIST,
        PLAIN_LINUX,
        PLAIN_MUSL,
        PLAIN_WINDOWS,
        V3,
        NULL,
        VARIANTS_JSON,
    ]
    assert dict(view.kept_labels) == {VARIANTS_JSON.filename: ("null", "x86_64_v3")}
    decision = decision_for(view, "1.0")
    assert decision.ranking == ("x86_64_v3", "null")
    assert decision.winner == "x86_64_v3"
    assert file_decision(decision, V3.filename).shown_as == V3.filename
    dropped = file_decision(decision, CU128.filename)
    assert dropped.shown_as is None
    assert "nvidia :: sm_arch" in dropped.reason


def test_native_gpu_client_gets_every_compatible_variant() -> None:
    view = native_view(PAGE, VARIANTS, CPU_V4_GPU)
    assert [d.filename for d in view.page.files if d.filename.endswith(".whl")] == [
        PLAIN_LINUX.filename,
        PLAIN_MUSL.filename,
        PLAIN_WINDOWS.filename,
        V3.filename,
        V4.filename,
        CU128.filename,
        NULL.filename,
    ]
    assert set(view.kept_labels[VARIANTS_JSON.filename]) == {
        "cu128",
        "x86_64_v4",
        "x86_64_v3",
        "null",
    }


def test_native_without_fingerprint_lists_every_described_variant() -> None:
    view = native_view(PAGE, VARIANTS, None)
    assert list(view.page.files) == list(PAGE.files)
    assert set(view.kept_labels[VARIANTS_JSON.filename]) == set(DOC.labels)


def test_native_empty_fingerprint_lists_only_the_null_variant() -> None:
    view = native_view(PAGE, VARIANTS, ())
    assert [d for d in view.page.files if d.filename.endswith("-null.whl")] == [NULL]
    assert all(variant not in view.page.files for variant in (V3, V4, CU128))
    assert dict(view.kept_labels) == {VARIANTS_JSON.filename: ("null",)}


def test_native_without_any_compatible_variant_leaves_the_variants_json_out() -> None:
    doc = variants_doc(
        {"x86_64_v4": {"x86_64": {"level": ["v4"]}}, "cu128": {"nvidia": {"sm_arch": ["90_real"]}}},
        namespaces=("nvidia", "x86_64"),
    )
    page = project(SDIST, PLAIN_LINUX, V4, CU128, VARIANTS_JSON)
    view = native_view(page, {"1.0": VersionVariants(doc, None, VARIANTS_JSON)}, CPU_V3)
    assert list(view.page.files) == [SDIST, PLAIN_LINUX]
    assert dict(view.kept_labels) == {}


def test_native_label_missing_from_variants_json_is_left_out() -> None:
    doc = variants_doc({"x86_64_v3": {"x86_64": {"level": ["v3"]}}}, namespaces=("x86_64",))
    page = project(V3, V4, VARIANTS_JSON)
    view = native_view(page, {"1.0": VersionVariants(doc, None, VARIANTS_JSON)}, CPU_V4_GPU)
    assert list(view.page.files) == [V3, VARIANTS_JSON]
    assert dict(view.kept_labels) == {VARIANTS_JSON.filename: ("x86_64_v3",)}
    assert "not in variants.json" in file_decision(decision_for(view, "1.0"), V4.filename).reason


@pytest.mark.parametrize("fingerprint_given", [CPU_V3, (), None])
def test_native_invalid_or_missing_variants_json_lists_no_variant(
    fingerprint_given: tuple[VariantProperty, ...] | None,
) -> None:
    problem = "invalid variants.json: variants: missing"
    for variants in ({"1.0": VersionVariants(None, problem, VARIANTS_JSON)}, {}):
        view = native_view(PAGE, variants, fingerprint_given)
        assert list(view.page.files) == [SDIST, PLAIN_LINUX, PLAIN_MUSL, PLAIN_WINDOWS]
        assert dict(view.kept_labels) == {}
        assert decision_for(view, "1.0").problem is not None


def test_native_versions_without_variants_are_untouched_and_order_is_kept() -> None:
    old = dist("pkg-0.9-py3-none-any.whl")
    egg = dist("pkg-0.8-py2.7.egg")
    page = project(V3, old, SDIST, egg, VARIANTS_JSON, CU128)
    view = native_view(page, VARIANTS, CPU_V3)
    assert list(view.page.files) == [V3, old, SDIST, egg, VARIANTS_JSON]
    assert view.page.files[1] is old
    assert [d.version for d in view.decisions] == ["1.0"]


# --- properties over generated pages -------------------------------------------------------

_LABEL_PROPERTIES: dict[str, Features] = {
    "null": {},
    "x86_64_v2": {"x86_64": {"level": ["v2"]}},
    "x86_64_v3": {"x86_64": {"level": ["v3"]}},
    "avx512": {"x86_64": {"avx512f": ["on"]}},
    "cu126": {"nvidia": {"sm_arch": ["80_real", "90_real"]}},
    "cu128": {"nvidia": {"sm_arch": ["90_real", "100_real"]}},
}
_CLIENT_PROPERTIES = [
    "x86_64 :: level :: v3",
    "x86_64 :: level :: v2",
    "x86_64 :: level :: v1",
    "x86_64 :: avx512f :: on",
    "nvidia :: sm_arch :: 90_real",
    "nvidia :: sm_arch :: 80_real",
]
_TAGS = [
    ("cp312", "cp312", "manylinux_2_28_x86_64"),
    ("cp312", "cp312", "manylinux_2_17_x86_64.manylinux2014_x86_64"),
    ("cp312", "cp312", "musllinux_1_2_x86_64"),
    ("cp312", "cp312", "win_amd64"),
    ("cp312", "cp312", "manylinux_2_28_aarch64"),
    ("cp311", "cp311", "manylinux_2_28_x86_64"),
    ("py3", "none", "any"),
]


@st.composite
def _generated_case(
    draw: st.DrawFn,
) -> tuple[ProjectPage, dict[str, VersionVariants], tuple[VariantProperty, ...] | None]:
    files: list[DistFile] = []
    variants: dict[str, VersionVariants] = {}
    for version in draw(st.lists(st.sampled_from(["1.0", "2.0", "3.0"]), unique=True, max_size=3)):
        if draw(st.booleans()):
            files.append(dist(f"pkg-{version}.tar.gz"))
        for python, abi, platform in draw(st.lists(st.sampled_from(_TAGS), unique=True)):
            files.append(dist(f"pkg-{version}-{python}-{abi}-{platform}.whl"))
        wheels = draw(
            st.lists(
                st.tuples(st.sampled_from(sorted(_LABEL_PROPERTIES)), st.sampled_from(_TAGS)),
                unique=True,
                max_size=8,
            )
        )
        for label, (python, abi, platform) in wheels:
            files.append(dist(f"pkg-{version}-{python}-{abi}-{platform}-{label}.whl"))
        described = draw(st.lists(st.sampled_from(sorted(_LABEL_PROPERTIES)), unique=True))
        metadata = draw(st.sampled_from(["doc", "doc", "invalid", "absent"]))
        json_file = dist(f"pkg-{version}-variants.json")
        if metadata != "absent":
            files.append(json_file)
        if metadata == "doc" and [label for label in described if label != "null"]:
            doc = variants_doc(
                {label: _LABEL_PROPERTIES[label] for label in described},
                namespaces=("nvidia", "x86_64"),
            )
            variants[version] = VersionVariants(doc, None, json_file)
        elif metadata == "invalid":
            variants[version] = VersionVariants(None, "invalid variants.json", json_file)
    order = draw(st.permutations(files))
    client: tuple[VariantProperty, ...] | None = None
    if draw(st.booleans()):
        client = fingerprint(*draw(st.lists(st.sampled_from(_CLIENT_PROPERTIES), unique=True)))
    return ProjectPage("pkg", tuple(order)), variants, client


@settings(max_examples=80, deadline=None)
@given(_generated_case())
def test_legacy_view_invariants(
    case: tuple[ProjectPage, dict[str, VersionVariants], tuple[VariantProperty, ...] | None],
) -> None:
    page, variants, client = case
    view = legacy_view(page, variants, client)
    upstream = {d.url: (position, d) for position, d in enumerate(page.files)}
    shown_names = names(view)
    assert len(set(shown_names)) == len(shown_names), "two listed files share a name"
    positions = [upstream[d.url][0] for d in view.page.files if not d.filename.endswith(".whl")]
    assert positions == sorted(positions), "upstream order is kept for every file but wheels"
    for decision in view.decisions:
        listed = {c.filename: c.rank for c in decision.candidates if c.listed}
        ranks = [
            listed[upstream[d.url][1].filename]
            for d in view.page.files
            if upstream[d.url][1].filename in listed
        ]
        assert ranks == sorted(ranks, reverse=True), "a version's wheels: worst rank first"

    for shown in view.page.files:
        original = upstream[shown.url][1]
        assert not shown.filename.endswith("-variants.json")
        if original.filename.endswith(".whl"):
            wheel = parse_wheel_filename(original.filename)
            assert shown == replace(original, filename=wheel.legacy_filename)
            if wheel.variant_label is not None:
                assert client is not None, "no fingerprint: no variant wheel is listed"
                assert wheel.variant_label in decision_for(view, wheel.version).ranking
        else:
            assert shown == original
    # sdists are always listed; a compatible wheel is left out only when a listed wheel covers
    # it or is listed under its name
    shown_urls = {d.url for d in view.page.files}
    for original in page.files:
        if original.filename.endswith(".tar.gz"):
            assert original in view.page.files
        if not original.filename.endswith(".whl") or original.url in shown_urls:
            continue
        wheel = parse_wheel_filename(original.filename)
        if client is None and wheel.variant_label is not None:
            continue
        reason = file_decision(decision_for(view, wheel.version), original.filename).reason
        assert reason.startswith(("replaced by", "incompatible")) or "same name" in reason


@settings(max_examples=80, deadline=None)
@given(_generated_case())
def test_native_view_invariants(
    case: tuple[ProjectPage, dict[str, VersionVariants], tuple[VariantProperty, ...] | None],
) -> None:
    page, variants, client = case
    view = native_view(page, variants, client)
    assert all(shown in page.files for shown in view.page.files), "names and entries are kept"
    positions = [page.files.index(d) for d in view.page.files]
    assert positions == sorted(positions)
    listed: dict[str, set[str]] = {}
    for shown in view.page.files:
        if shown.filename.endswith(".whl"):
            wheel = parse_wheel_filename(shown.filename)
            if wheel.variant_label is not None:
                listed.setdefault(wheel.version, set()).add(wheel.variant_label)
        else:
            assert shown.filename.endswith((".tar.gz", "-variants.json"))
    listed_json = {d.filename for d in view.page.files if d.filename.endswith("-variants.json")}
    assert set(view.kept_labels) == listed_json
    for version, labels in listed.items():
        json_name = f"pkg-{version}-variants.json"
        assert tuple(sorted(labels)) == view.kept_labels[json_name]
        info = variants[version]
        assert info.doc is not None and labels <= set(info.doc.variants)
    assert {name.split("-")[1] for name in listed_json} == set(listed)
    # every plain file is listed
    for original in page.files:
        plain_wheel = original.filename.endswith(".whl") and (
            parse_wheel_filename(original.filename).variant_label is None
        )
        if plain_wheel or original.filename.endswith(".tar.gz"):
            assert original in view.page.files


def test_native_lists_a_variants_json_built_from_the_wheels_when_none_is_listed() -> None:
    built = DistFile("pkg-1.0-variants.json", "built:pkg/pkg-1.0-variants.json")
    page = project(SDIST, PLAIN_LINUX, V3, V4, NULL)
    view = native_view(page, {"1.0": VersionVariants(DOC, None, built)}, CPU_V3)
    assert list(view.page.files) == [SDIST, PLAIN_LINUX, V3, NULL, built]
    assert dict(view.kept_labels) == {built.filename: ("null", "x86_64_v3")}
    # The legacy view never lists a variants.json, built or not.
    legacy = legacy_view(page, {"1.0": VersionVariants(DOC, None, built)}, CPU_V3)
    assert built.filename not in names(legacy)


def test_readme_worked_example() -> None:
    doc = variants_doc(
        {"x86_64_v3": {"x86_64": {"level": ["v3"]}}, "x86_64_v2": {"x86_64": {"level": ["v2"]}}},
        namespaces=("x86_64",),
    )
    v3 = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl")
    v2_mac = dist("pkg-1.0-cp312-cp312-macosx_11_0_arm64-x86_64_v2.whl")
    mac = dist("pkg-1.0-cp312-cp312-macosx_11_0_arm64.whl")
    page = project(PLAIN_LINUX, v3, v2_mac, mac, PLAIN_WINDOWS)
    view = legacy_view(page, {"1.0": VersionVariants(doc)}, CPU_V3)
    assert sorted((d.filename, d.url) for d in view.page.files) == sorted(
        [
            (PLAIN_LINUX.filename, PLAIN_LINUX.url),
            (LEGACY_LINUX_NAME, v3.url),
            (mac.filename, v2_mac.url),
            (PLAIN_WINDOWS.filename, PLAIN_WINDOWS.url),
        ]
    )
    assert legacy_view(page, {"1.0": VersionVariants(doc)}, None).page.files == (
        PLAIN_LINUX,
        mac,
        PLAIN_WINDOWS,
    )
