"""variants.json parsing and checks, merging, subsetting, compatibility and PEP 825 ordering."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from proxy.variants.metadata import (
    UnknownLabelError,
    VariantDesc,
    VariantsConflictError,
    VariantsDoc,
    VariantsJsonError,
    best_variant,
    incompatibility,
    merge_variants_docs,
    parse_variants_json,
    rank_variants,
    render_variants_json,
    subset_variants_json,
    variant_properties,
)
from proxy.variants.properties import VariantProperty

SCHEMA_PEP825 = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"
SCHEMA_DRAFT = "https://variants-schema.wheelnext.dev/v0.0.3.json"


def props(*items: str) -> list[VariantProperty]:
    return [VariantProperty.parse(item) for item in items]


def doc_of(
    variants: dict[str, Any],
    namespaces: list[str] | None = None,
    schema: str = SCHEMA_PEP825,
    **extra: Any,
) -> dict[str, Any]:
    priorities: dict[str, Any] = {"namespace": namespaces or ["x86_64", "nvidia", "blas"]}
    priorities.update(extra.pop("priorities", {}))
    return {"$schema": schema, "default-priorities": priorities, "variants": variants, **extra}


def parsed(variants: dict[str, Any], **kwargs: Any) -> VariantsDoc:
    return parse_variants_json(doc_of(variants, **kwargs))


# --- parsing -------------------------------------------------------------------------------

PEP825_EXAMPLE = b"""{
  "$schema": "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json",
  "default-priorities": {"namespace": ["x86_64", "aarch64", "blas_lapack"]},
  "variants": {
    "null": {},
    "x86_64_v3_openblas": {"blas_lapack": {"library": ["openblas"]}, "x86_64": {"level": ["v3"]}},
    "x86_64_v4_mkl": {"blas_lapack": {"library": ["mkl"]}, "x86_64": {"level": ["v4"]}}
  }
}"""


def test_pep825_index_metadata_parses() -> None:
    doc = parse_variants_json(PEP825_EXAMPLE)
    assert doc.schema == SCHEMA_PEP825
    assert doc.schema_version == (0, 1, 1)
    assert doc.namespace_priorities == ("x86_64", "aarch64", "blas_lapack")
    assert doc.labels == ("null", "x86_64_v3_openblas", "x86_64_v4_mkl")
    assert doc.has_null_variant
    assert dict(doc.variants["x86_64_v4_mkl"]) == {
        ("blas_lapack", "library"): ("mkl",),
        ("x86_64", "level"): ("v4",),
    }
    assert len(doc.variants["null"]) == 0
    assert dict(doc.feature_priorities) == {}
    assert dict(doc.property_priorities) == {}
    assert doc.static_properties == ()


def test_str_bytes_with_bom_and_mapping_inputs_give_the_same_document() -> None:
    from_bytes = parse_variants_json(PEP825_EXAMPLE)
    assert parse_variants_json(PEP825_EXAMPLE.decode()) == from_bytes
    assert parse_variants_json(b"\xef\xbb\xbf" + PEP825_EXAMPLE) == from_bytes
    assert parse_variants_json(json.loads(PEP825_EXAMPLE)) == from_bytes


def test_draft_file_keeps_feature_and_property_priorities_and_static_properties() -> None:
    doc = parse_variants_json(
        {
            "$schema": SCHEMA_DRAFT,
            "default-priorities": {
                "namespace": ["x86_64", "blas_lapack"],
                "feature": {"x86_64": ["level"], "blas_lapack": ["provider", "threads"]},
                "property": {"x86_64": {"level": ["v3", "v2"]}},
            },
            "providers": {"x86_64": {"requires": ["provider-variant-x86-64"]}},
            "static-properties": {
                "blas_lapack": {"threads": ["openmp", "serial"], "provider": ["mkl", "openblas"]}
            },
            "variants": {"v3": {"x86_64": {"level": ["v3"]}}},
        }
    )
    assert doc.schema_version == (0, 0, 3)
    assert dict(doc.feature_priorities) == {
        "x86_64": ("level",),
        "blas_lapack": ("provider", "threads"),
    }
    assert dict(doc.property_priorities) == {("x86_64", "level"): ("v3", "v2")}
    # features follow default-priorities.feature, values keep the file's order
    assert doc.static_properties == tuple(
        props(
            "blas_lapack :: provider :: mkl",
            "blas_lapack :: provider :: openblas",
            "blas_lapack :: threads :: openmp",
            "blas_lapack :: threads :: serial",
        )
    )


def test_variantlib_provider_static_properties_and_feature_order_are_read() -> None:
    doc = parse_variants_json(
        {
            "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
            "default-priorities": {"namespace": ["blas"]},
            "providers": {
                "blas": {
                    "static-properties": {"b": ["2"], "a": ["1", "0"]},
                    "feature-order": ["a", "b"],
                }
            },
            "variants": {"x": {"blas": {"a": ["0"]}}},
        }
    )
    assert dict(doc.feature_priorities) == {"blas": ("a", "b")}
    assert doc.static_properties == tuple(
        props("blas :: a :: 1", "blas :: a :: 0", "blas :: b :: 2")
    )


def test_unknown_keys_are_ignored() -> None:
    doc = parsed(
        {"fast": {"x86_64": {"level": ["v3"]}}},
        priorities={"future-key": [1, 2]},
        providers=["not", "the", "format", "we", "read"],
        **{"future-top-level": {"anything": True}},
    )
    assert doc.labels == ("fast",)


def test_version_one_is_the_promoted_draft_and_accepted() -> None:
    doc = parsed({"a": {"x86_64": {"level": ["v3"]}}}, schema="https://example.test/v1.0.0.json")
    assert doc.schema_version == (1, 0, 0)


def test_values_keep_file_order_and_properties_flatten_in_order() -> None:
    doc = parsed({"gpu": {"nvidia": {"sm_arch": ["90_real", "120_real"]}, "x86_64": {"a": ["on"]}}})
    assert variant_properties(doc, "gpu") == tuple(
        props("nvidia :: sm_arch :: 90_real", "nvidia :: sm_arch :: 120_real", "x86_64 :: a :: on")
    )
    assert variant_properties(doc, "null") == ()
    with pytest.raises(UnknownLabelError, match="'nope'"):
        variant_properties(doc, "nope")


GOOD = doc_of({"null": {}, "fast": {"x86_64": {"level": ["v3"]}}})


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [
        (b"{not json", "(document)", "invalid JSON"),
        (b"\xff\xfe{}", "(document)", "not UTF-8"),
        (b'{"a": 1, "a": 2}', "(document)", "duplicate key 'a'"),
        (b"[]", "(document)", "expected an object, found array"),
        (_broken(["$schema"], KeyError), "$schema", "missing"),
        (_broken(["$schema"], 3), "$schema", "expected a URL string, found number"),
        (_broken(["$schema"], "https://example.test/latest.json"), "$schema", "no format version"),
        (_broken(["$schema"], "https://example.test/v2.0.0.json"), "$schema", "unsupported"),
        (_broken(["default-priorities"], KeyError), "default-priorities", "missing"),
        (_broken(["default-priorities"], []), "default-priorities", "expected an object"),
        (
            _broken(["default-priorities", "namespace"], KeyError),
            "default-priorities.namespace",
            "missing",
        ),
        (
            _broken(["default-priorities", "namespace"], []),
            "default-priorities.namespace",
            "at least 1 namespace",
        ),
        (
            _broken(["default-priorities", "namespace"], ["x86_64", "x86_64"]),
            "default-priorities.namespace[1]",
            "duplicate namespace 'x86_64'",
        ),
        (
            _broken(["default-priorities", "namespace"], ["x86_64", "X86"]),
            "default-priorities.namespace[1]",
            "invalid namespace 'X86'",
        ),
        (
            _broken(["default-priorities", "namespace"], "x86_64"),
            "default-priorities.namespace",
            "expected an array of namespaces, found string",
        ),
        (
            _broken(["default-priorities", "feature"], {"x86_64": ["Level"]}),
            "default-priorities.feature.x86_64[0]",
            "invalid feature 'Level'",
        ),
        (
            _broken(["default-priorities", "property"], {"x86_64": {"level": ["V3"]}}),
            "default-priorities.property.x86_64.level[0]",
            "invalid property value 'V3'",
        ),
        (_broken(["variants"], KeyError), "variants", "missing"),
        (_broken(["variants"], ["fast"]), "variants", "expected an object, found array"),
        (_broken(["variants", "Fast"], {}), "variants.Fast", "invalid variant label 'Fast'"),
        (
            _broken(["variants", "fast"], {"gpu": {"x": ["1"]}}),
            "variants.fast.gpu",
            "namespace 'gpu' is not listed in default-priorities.namespace",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], ["V3"]),
            "variants.fast.x86_64.level[0]",
            "invalid property value 'V3'",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], ["v3\n"]),
            "variants.fast.x86_64.level[0]",
            "invalid property value",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], [3]),
            "variants.fast.x86_64.level[0]",
            "expected a value string, found number",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], []),
            "variants.fast.x86_64.level",
            "at least 1 value",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], ["v3", "v3"]),
            "variants.fast.x86_64.level[1]",
            "duplicate value 'v3'",
        ),
        (
            _broken(["variants", "fast", "x86_64", "level"], "v3"),
            "variants.fast.x86_64.level",
            "expected an array of values, found string",
        ),
        (
            _broken(["variants", "fast", "x86_64"], {"bad-name": ["v3"]}),
            "variants.fast.x86_64.bad-name",
            "invalid feature 'bad-name'",
        ),
        (
            _broken(["variants", "null"], {"x86_64": {"level": ["v3"]}}),
            "variants.null",
            "the null variant must have no properties",
        ),
        (
            _broken(["variants", "fast"], {}),
            "variants.fast",
            "only the 'null' label may have no properties",
        ),
        (
            _broken(["static-properties"], {"blas": {"lib": []}}),
            "static-properties.blas.lib",
            "at least 1 value",
        ),
        (
            _broken(["providers"], {"blas": {"static-properties": {"lib": ["MKL"]}}}),
            "providers.blas.static-properties.lib[0]",
            "invalid property value 'MKL'",
        ),
        (
            _broken(["providers"], {"blas": {"feature-order": "lib"}}),
            "providers.blas.feature-order",
            "expected an array of features",
        ),
    ],
)
def test_every_error_names_the_key_path(document: Any, path: str, reason: str) -> None:
    with pytest.raises(VariantsJsonError) as info:
        parse_variants_json(document)
    assert info.value.path == path
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)


def test_labels_with_dots_are_valid_and_quoted_in_error_paths() -> None:
    assert parsed({"cu12.8": {"nvidia": {"v": ["12.8"]}}}).labels == ("cu12.8",)
    with pytest.raises(VariantsJsonError) as info:
        parsed({"cu12.8": {"nvidia": {"v": ["X"]}}})
    assert info.value.path == 'variants["cu12.8"].nvidia.v[0]'


# --- merging -------------------------------------------------------------------------------


def test_merge_takes_the_longest_namespace_prefix_and_the_union_of_labels() -> None:
    cpu_wheel = parsed({"fast": {"cpu": {"level": ["v3", "v2"]}}}, namespaces=["cpu"])
    gpu_wheel = parsed(
        {"fast": {"cpu": {"level": ["v2", "v3"]}}, "null": {}}, namespaces=["cpu", "gpu"]
    )
    forward = merge_variants_docs([cpu_wheel, gpu_wheel])
    backward = merge_variants_docs([gpu_wheel, cpu_wheel])
    assert forward.namespace_priorities == ("cpu", "gpu")
    assert backward.namespace_priorities == ("cpu", "gpu")
    assert set(forward.labels) == set(backward.labels) == {"fast", "null"}
    assert forward.variants["fast"].property_set() == backward.variants["fast"].property_set()


def test_merge_refuses_namespace_lists_that_are_not_prefixes() -> None:
    one = parsed({"a": {"cpu": {"l": ["1"]}}}, namespaces=["cpu", "gpu"])
    other = parsed({"a": {"cpu": {"l": ["1"]}}}, namespaces=["gpu", "cpu"])
    with pytest.raises(VariantsConflictError, match=r"default-priorities.namespace"):
        merge_variants_docs([one, other])


def test_merge_refuses_one_label_with_two_property_sets() -> None:
    one = parsed({"fast": {"cpu": {"level": ["v3"]}}}, namespaces=["cpu"])
    other = parsed({"fast": {"cpu": {"level": ["v4"]}}}, namespaces=["cpu"])
    with pytest.raises(VariantsConflictError, match=r"variant label 'fast'"):
        merge_variants_docs([one, other])


def test_merge_checks_draft_priorities_and_static_properties() -> None:
    base = {"a": {"cpu": {"l": ["1"]}}}
    one = parsed(base, namespaces=["cpu"], priorities={"feature": {"cpu": ["l", "m"]}})
    same = parsed(base, namespaces=["cpu"], priorities={"feature": {"cpu": ["l", "m"]}})
    other = parsed(base, namespaces=["cpu"], priorities={"feature": {"cpu": ["m", "l"]}})
    assert merge_variants_docs([one, same]).feature_priorities["cpu"] == ("l", "m")
    with pytest.raises(VariantsConflictError, match=r"default-priorities.feature.cpu"):
        merge_variants_docs([one, other])
    prop_one = parsed(base, namespaces=["cpu"], priorities={"property": {"cpu": {"l": ["1"]}}})
    prop_two = parsed(base, namespaces=["cpu"], priorities={"property": {"cpu": {"l": ["2"]}}})
    with pytest.raises(VariantsConflictError, match=r"default-priorities.property.cpu.l"):
        merge_variants_docs([prop_one, prop_two])
    static_one = parsed(base, namespaces=["cpu"], **{"static-properties": {"b": {"x": ["1"]}}})
    static_two = parsed(base, namespaces=["cpu"], **{"static-properties": {"b": {"x": ["2"]}}})
    with pytest.raises(VariantsConflictError, match=r"static-properties.b"):
        merge_variants_docs([static_one, static_two])
    merged = merge_variants_docs([static_one, one])
    assert merged.static_properties == tuple(props("b :: x :: 1"))


def test_merge_keeps_the_newest_schema_and_needs_a_document() -> None:
    old = parsed({"a": {"cpu": {"l": ["1"]}}}, namespaces=["cpu"], schema=SCHEMA_DRAFT)
    new = parsed({"b": {"cpu": {"l": ["2"]}}}, namespaces=["cpu"])
    assert merge_variants_docs([old, new]).schema == SCHEMA_PEP825
    with pytest.raises(ValueError, match="at least one"):
        merge_variants_docs([])


# --- subsetting ----------------------------------------------------------------------------


def test_subset_keeps_only_the_given_labels_and_every_other_key() -> None:
    raw = json.dumps(
        doc_of(
            {
                "null": {},
                "v3": {"x86_64": {"level": ["v3"]}},
                "v4": {"x86_64": {"level": ["v4"]}},
            },
            providers={"x86_64": {"requires": ["provider-variant-x86-64"]}},
            priorities={"feature": {"x86_64": ["level"]}},
        )
    ).encode()
    subset = json.loads(subset_variants_json(raw, ["v4", "null", "not-there"]))
    original = json.loads(raw)
    assert list(subset["variants"]) == ["null", "v4"]
    assert subset["variants"]["v4"] == original["variants"]["v4"]
    for key in ("$schema", "default-priorities", "providers"):
        assert subset[key] == original[key]
    assert list(subset) == list(original)
    assert parse_variants_json(subset).labels == ("null", "v4")


def test_subset_can_be_empty_and_refuses_invalid_input() -> None:
    assert json.loads(subset_variants_json(PEP825_EXAMPLE, []))["variants"] == {}
    with pytest.raises(VariantsJsonError, match=r"variants\.bad"):
        subset_variants_json(json.dumps(doc_of({"bad": {}})).encode(), ["bad"])


# --- compatibility -------------------------------------------------------------------------


def test_multi_value_feature_needs_one_supported_value() -> None:
    doc = parsed({"gpu": {"nvidia": {"sm_arch": ["90_real", "120_real"]}}})
    assert rank_variants(doc, props("nvidia :: sm_arch :: 120_real")).ordered == ("gpu",)
    ranking = rank_variants(doc, props("nvidia :: sm_arch :: 80_real"))
    assert ranking.ordered == ()
    assert ranking.incompatible["gpu"] == (
        "no supported value for nvidia :: sm_arch (the variant needs one of: 90_real, 120_real)"
    )


def test_every_feature_of_a_variant_must_be_supported() -> None:
    doc = parsed({"v3_mkl": {"x86_64": {"level": ["v3"]}, "blas": {"library": ["mkl"]}}})
    ranking = rank_variants(doc, props("x86_64 :: level :: v3", "blas :: library :: openblas"))
    assert "blas :: library" in ranking.incompatible["v3_mkl"]
    assert "mkl" in ranking.incompatible["v3_mkl"]
    assert incompatibility(doc, "v3_mkl", props("x86_64 :: level :: v3")) is not None
    assert (
        incompatibility(doc, "v3_mkl", props("x86_64 :: level :: v3", "blas :: library :: mkl"))
        is None
    )
    assert incompatibility(doc, "null", []) is None
    with pytest.raises(UnknownLabelError):
        incompatibility(doc, "nope", [])


def test_empty_fingerprint_leaves_only_the_null_variant() -> None:
    doc = parsed({"null": {}, "v3": {"x86_64": {"level": ["v3"]}}})
    ranking = rank_variants(doc, [])
    assert ranking.ordered == ("null",)
    assert set(ranking.incompatible) == {"v3"}
    assert best_variant(doc, []) == "null"


def test_no_compatible_variant_and_no_null_gives_none() -> None:
    doc = parsed({"v3": {"x86_64": {"level": ["v3"]}}})
    assert best_variant(doc, props("x86_64 :: level :: v2")) is None


def test_document_with_only_a_null_variant() -> None:
    doc = parsed({"null": {}}, namespaces=["x86_64"])
    ranking = rank_variants(doc, props("x86_64 :: level :: v3"))
    assert ranking.ordered == ("null",)
    assert dict(ranking.incompatible) == {}


def test_static_properties_are_always_supported() -> None:
    doc = parsed(
        {"mkl": {"blas": {"library": ["mkl"]}}, "openblas": {"blas": {"library": ["openblas"]}}},
        schema=SCHEMA_DRAFT,
        **{"static-properties": {"blas": {"library": ["openblas", "mkl"]}}},
    )
    assert rank_variants(doc, []).ordered == ("openblas", "mkl")


def test_static_namespace_supports_only_its_static_properties_whatever_the_client_sends() -> None:
    # PEP 817: an ahead-of-time namespace is decided by the file, not by the client's header.
    doc = parsed(
        {"mkl": {"blas": {"library": ["mkl"]}}, "openblas": {"blas": {"library": ["openblas"]}}},
        schema=SCHEMA_DRAFT,
        **{"static-properties": {"blas": {"library": ["openblas"]}}},
    )
    ranking = rank_variants(doc, props("blas :: library :: mkl"))
    assert ranking.ordered == ("openblas",)
    assert "blas :: library" in ranking.incompatible["mkl"]


ABI_DEPENDENCY_DRAFT = {
    "$schema": SCHEMA_DRAFT,
    "default-priorities": {"namespace": ["x86_64"]},
    "variants": {
        "null": {},
        "v3": {"x86_64": {"level": ["v3"]}},
        "torch27": {"abi_dependency": {"torch": ["2.7"]}, "x86_64": {"level": ["v3"]}},
    },
}


def test_abi_dependency_does_not_reject_a_draft_file_and_needs_the_fingerprint() -> None:
    doc = parse_variants_json(ABI_DEPENDENCY_DRAFT)
    cpu = props("x86_64 :: level :: v3")
    ranking = rank_variants(doc, cpu)
    assert ranking.ordered == ("v3", "null")
    assert "abi_dependency :: torch" in ranking.incompatible["torch27"]
    # named by the fingerprint: compatible, and ranked after the file's own namespaces
    with_torch = rank_variants(doc, [*cpu, *props("abi_dependency :: torch :: 2.7")])
    assert with_torch.ordered == ("torch27", "v3", "null")


@pytest.mark.parametrize("version", ["v0.0.1", "v0.0.3", "v0.1.1", "v0.9.0", "v1.0.0", "v1.4.2"])
def test_every_draft_and_version_one_schema_is_read(version: str) -> None:
    schema = f"https://variants-schema.wheelnext.dev/{version}.json"
    assert parsed({"null": {}}, schema=schema).schema_version[0] in (0, 1)


@pytest.mark.parametrize("version", ["v2.0.0", "v10.1.0"])
def test_an_unknown_major_schema_version_is_invalid(version: str) -> None:
    with pytest.raises(VariantsJsonError, match="unsupported format version"):
        parsed({"null": {}}, schema=f"https://variants-schema.wheelnext.dev/{version}.json")


def test_properties_of_namespaces_the_document_does_not_use_are_ignored() -> None:
    doc = parsed({"v3": {"x86_64": {"level": ["v3"]}}}, namespaces=["x86_64"])
    supported = props("aarch64 :: version :: 8.2a", "x86_64 :: level :: v3")
    assert rank_variants(doc, supported).ordered == ("v3",)


# --- ordering ------------------------------------------------------------------------------

X86 = props("x86_64 :: level :: v4", "x86_64 :: level :: v3", "x86_64 :: level :: v2")


def test_fingerprint_order_is_preference_order() -> None:
    doc = parsed(
        {
            "null": {},
            "v2": {"x86_64": {"level": ["v2"]}},
            "v3": {"x86_64": {"level": ["v3"]}},
            "v4": {"x86_64": {"level": ["v4"]}},
        }
    )
    assert rank_variants(doc, X86).ordered == ("v4", "v3", "v2", "null")
    assert rank_variants(doc, list(reversed(X86))).ordered == ("v2", "v3", "v4", "null")


def test_best_supported_value_of_a_feature_decides() -> None:
    doc = parsed(
        {"multi": {"x86_64": {"level": ["v2", "v4"]}}, "v3": {"x86_64": {"level": ["v3"]}}}
    )
    assert rank_variants(doc, X86).ordered == ("multi", "v3")
    # v4 unsupported: multi's best supported value is v2, behind v3
    assert rank_variants(doc, X86[1:]).ordered == ("v3", "multi")


def test_namespace_priorities_rank_namespaces() -> None:
    variants = {"gpu": {"nvidia": {"cuda": ["12"]}}, "cpu": {"x86_64": {"level": ["v3"]}}}
    supported = props("x86_64 :: level :: v3", "nvidia :: cuda :: 12")
    assert rank_variants(parsed(variants, namespaces=["nvidia", "x86_64"]), supported).ordered == (
        "gpu",
        "cpu",
    )
    assert rank_variants(parsed(variants, namespaces=["x86_64", "nvidia"]), supported).ordered == (
        "cpu",
        "gpu",
    )


def test_features_rank_by_first_appearance_in_the_fingerprint() -> None:
    doc = parsed({"a": {"x86_64": {"avx2": ["on"]}}, "b": {"x86_64": {"level": ["v3"]}}})
    assert rank_variants(doc, props("x86_64 :: level :: v3", "x86_64 :: avx2 :: on")).ordered == (
        "b",
        "a",
    )
    assert rank_variants(doc, props("x86_64 :: avx2 :: on", "x86_64 :: level :: v3")).ordered == (
        "a",
        "b",
    )


def test_interleaved_fingerprint_ranks_like_the_grouped_one() -> None:
    doc = parsed(
        {
            "l3": {"x86_64": {"level": ["v3"]}},
            "l2": {"x86_64": {"level": ["v2"]}},
            "avx": {"x86_64": {"avx2": ["on"]}},
        },
        priorities={"property": {"x86_64": {"level": ["v2"]}}},
    )
    interleaved = props("x86_64 :: level :: v3", "x86_64 :: avx2 :: on", "x86_64 :: level :: v2")
    grouped = props("x86_64 :: level :: v3", "x86_64 :: level :: v2", "x86_64 :: avx2 :: on")
    assert rank_variants(doc, interleaved).ordered == rank_variants(doc, grouped).ordered
    assert rank_variants(doc, grouped).ordered == ("l2", "l3", "avx")


def test_more_properties_win_a_prefix_tie() -> None:
    doc = parsed(
        {
            "v3": {"x86_64": {"level": ["v3"]}},
            "v3_avx512": {"x86_64": {"level": ["v3"], "avx512": ["on"]}},
        }
    )
    supported = props("x86_64 :: level :: v3", "x86_64 :: avx512 :: on")
    assert rank_variants(doc, supported).ordered == ("v3_avx512", "v3")


def test_a_better_later_property_does_not_beat_a_better_first_property() -> None:
    doc = parsed(
        {
            "a": {"x86_64": {"level": ["v4"]}, "blas": {"library": ["openblas"]}},
            "b": {"x86_64": {"level": ["v3"]}, "blas": {"library": ["mkl"]}},
        }
    )
    supported = [*X86, *props("blas :: library :: mkl", "blas :: library :: openblas")]
    assert rank_variants(doc, supported).ordered == ("a", "b")


def test_label_breaks_ties_between_equal_keys() -> None:
    doc = parsed({"zeta": {"x86_64": {"level": ["v3"]}}, "alpha": {"x86_64": {"level": ["v3"]}}})
    assert rank_variants(doc, X86).ordered == ("alpha", "zeta")


def test_null_is_last_whatever_its_position_in_the_file() -> None:
    doc = parsed(
        {"null": {}, "b": {"x86_64": {"level": ["v2"]}}, "a": {"x86_64": {"level": ["v4"]}}}
    )
    assert rank_variants(doc, X86).ordered == ("a", "b", "null")


def test_feature_priorities_move_features_to_the_front() -> None:
    variants = {"level": {"x86_64": {"level": ["v3"]}}, "avx": {"x86_64": {"avx512": ["on"]}}}
    supported = props("x86_64 :: level :: v3", "x86_64 :: avx512 :: on")
    plain = parsed(variants, schema=SCHEMA_DRAFT)
    assert rank_variants(plain, supported).ordered == ("level", "avx")
    with_priorities = parsed(
        variants, schema=SCHEMA_DRAFT, priorities={"feature": {"x86_64": ["avx512"]}}
    )
    assert rank_variants(with_priorities, supported).ordered == ("avx", "level")


def test_property_priorities_move_values_to_the_front() -> None:
    variants = {"v2": {"x86_64": {"level": ["v2"]}}, "v4": {"x86_64": {"level": ["v4"]}}}
    doc = parsed(
        variants, schema=SCHEMA_DRAFT, priorities={"property": {"x86_64": {"level": ["v2"]}}}
    )
    assert rank_variants(doc, X86).ordered == ("v2", "v4")


def test_property_priorities_rank_by_the_pep_text_even_for_an_unsupported_value() -> None:
    doc = parsed(
        {"v4v2": {"x86_64": {"level": ["v4", "v2"]}}, "v3": {"x86_64": {"level": ["v3"]}}},
        priorities={"property": {"x86_64": {"level": ["v4"]}}},
    )
    # PEP 825 steps 3-4: the value order starts with default-priorities.property as given, and
    # a variant's best value is its value earliest in that order: v4v2 counts as v4 (first),
    # though this client lacks v4. variantlib 0.2 skips unsupported values (v4v2 would count
    # as v2 and sort after v3); the PEP text is followed.
    assert rank_variants(doc, X86[1:]).ordered == ("v4v2", "v3")
    # compatibility still needs a supported value
    assert rank_variants(doc, props("x86_64 :: level :: v3")).ordered == ("v3",)


def test_explain_gives_each_labels_place_and_key() -> None:
    doc = parsed(
        {"null": {}, "v3": {"x86_64": {"level": ["v3"]}}, "gpu": {"nvidia": {"cuda": ["12"]}}}
    )
    ranking = rank_variants(doc, X86)
    assert ranking.best == "v3"
    assert ranking.explain("v3") == (
        "#1 v3: x86_64 :: level :: v3 (namespace #1, feature #1, value #2)"
    )
    assert ranking.explain("null").startswith("#2 null: no properties")
    assert ranking.explain("gpu").startswith("gpu: incompatible: no supported value for nvidia")
    assert ranking.sort_keys["v3"].properties[0].rank == (0, 0, 1)
    with pytest.raises(UnknownLabelError):
        ranking.explain("nope")


def test_variant_desc_from_properties_groups_by_feature() -> None:
    desc = VariantDesc.from_properties(
        props("a :: f :: 1", "b :: g :: 2", "a :: f :: 3", "a :: f :: 1")
    )
    assert dict(desc) == {("a", "f"): ("1", "3"), ("b", "g"): ("2",)}
    assert desc.to_json() == {"a": {"f": ["1", "3"]}, "b": {"g": ["2"]}}


def test_render_variants_json_round_trips_every_field() -> None:
    raw = {
        "$schema": "https://variants-schema.wheelnext.dev/v0.0.3.json",
        "default-priorities": {
            "namespace": ["x86_64", "acme"],
            "feature": {"x86_64": ["level"]},
            "property": {"x86_64": {"level": ["v3"]}},
        },
        "static-properties": {"acme": {"build": ["fast"]}},
        "variants": {
            "v3": {"x86_64": {"level": ["v3"]}},
            "fast": {"acme": {"build": ["fast"]}, "x86_64": {"level": ["v2", "v1"]}},
            "null": {},
        },
    }
    doc = parse_variants_json(raw)
    assert parse_variants_json(render_variants_json(doc)) == doc
