"""WheelNext-style variant files parse, agree with their wheels, and rank as variantlib 0.2.2
ranks them: the suite's own equivalents always, and the real WheelNext files
(../shared/fixtures/wheelnext, read in place) when they are beside the clone."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e.wheelnext_like import REFERENCE_MISSING, REFERENCE_ROOT, fixture_roots, generated_root
from variantlib.models.variant import VariantDescription
from variantlib.models.variant import VariantProperty as OracleProperty
from variantlib.resolver.lib import sort_and_filter_supported_variants

from proxy.simple.filenames import parse_variants_json_filename, parse_wheel_filename
from proxy.variants.metadata import (
    VariantsDoc,
    merge_variants_docs,
    parse_variants_json,
    rank_variants,
)
from proxy.variants.properties import VariantProperty

ROOTS = fixture_roots()
VARIANTS_JSONS = sorted(path for root in ROOTS for path in root.rglob("*-variants.json"))
WHEELS = sorted(path for root in ROOTS for path in root.rglob("*.whl"))
needs_reference = pytest.mark.skipif(not REFERENCE_ROOT.is_dir(), reason=REFERENCE_MISSING)


def _ids(paths: list[Path]) -> list[str]:
    names = []
    for path in paths:
        root = next(root for root in ROOTS if path.is_relative_to(root))
        names.append(str(path.relative_to(root)))
    return names


def test_the_generated_equivalents_are_there() -> None:
    generated = generated_root()
    assert len(list(generated.rglob("*-variants.json"))) == 5
    assert len(list(generated.rglob("*.whl"))) == 23


@needs_reference
def test_the_fixtures_are_there() -> None:
    assert len(list(REFERENCE_ROOT.rglob("*-variants.json"))) >= 6
    assert len(list(REFERENCE_ROOT.rglob("*.whl"))) >= 23


@pytest.mark.parametrize("path", VARIANTS_JSONS, ids=_ids(VARIANTS_JSONS))
def test_every_variants_json_parses(path: Path) -> None:
    doc = parse_variants_json(path.read_bytes())
    raw = json.loads(path.read_bytes())
    assert doc.schema == raw["$schema"]
    assert list(doc.namespace_priorities) == raw["default-priorities"]["namespace"]
    assert list(doc.labels) == list(raw["variants"])
    for label, desc in doc.variants.items():
        assert desc.to_json() == raw["variants"][label]
    assert parse_variants_json_filename(path.name) is not None


def wheel_metadata(path: Path) -> VariantsDoc | None:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/variant.json")]
        assert len(names) <= 1
        return parse_variants_json(archive.read(names[0])) if names else None


@pytest.mark.parametrize("path", WHEELS, ids=_ids(WHEELS))
def test_every_wheel_variant_json_names_exactly_its_own_label(path: Path) -> None:
    wheel = parse_wheel_filename(path.name)
    doc = wheel_metadata(path)
    if not wheel.is_variant:
        assert doc is None
        return
    assert doc is not None
    assert doc.labels == (wheel.variant_label,)


@pytest.mark.parametrize(
    "project",
    sorted({path.parent for path in WHEELS}),
    ids=lambda path: path.name,
)
def test_wheel_metadata_merges_into_the_index_file(project: Path) -> None:
    (index_path,) = project.glob("*-variants.json")
    index = parse_variants_json(index_path.read_bytes())
    wheel_docs = [doc for path in sorted(project.glob("*.whl")) if (doc := wheel_metadata(path))]
    assert wheel_docs
    from_wheels = merge_variants_docs(wheel_docs)
    assert set(from_wheels.labels) <= set(index.labels)
    combined = merge_variants_docs([index, *wheel_docs])
    assert combined.namespace_priorities == index.namespace_priorities
    assert set(combined.labels) == set(index.labels)
    for label in from_wheels.labels:
        assert combined.variants[label].property_set() == index.variants[label].property_set()


def props(*items: str) -> list[VariantProperty]:
    return [VariantProperty.parse(item) for item in items]


HARDWARE = props(
    "fictional_hw :: architecture :: deepthought",
    "fictional_hw :: architecture :: tars",
    "fictional_hw :: architecture :: hal9000",
    "fictional_hw :: architecture :: mother",
    "fictional_hw :: compute_capability :: 10",
    "fictional_hw :: compute_capability :: 8",
    "fictional_hw :: compute_capability :: 7",
    "fictional_hw :: compute_capability :: 6",
    "fictional_hw :: compute_capability :: 5",
    "fictional_hw :: compute_capability :: 4",
    "fictional_hw :: compute_accuracy :: 10",
    "fictional_hw :: compute_accuracy :: 8",
    "fictional_hw :: compute_accuracy :: 0",
    "fictional_hw :: humor :: 10",
    "fictional_hw :: humor :: 2",
    "fictional_hw :: humor :: 0",
)
TECHNOLOGY = props(
    "fictional_tech :: quantum :: superposition",
    "fictional_tech :: quantum :: foam",
    "fictional_tech :: technology :: auto_chef",
    "fictional_tech :: technology :: improb_drive",
    "fictional_tech :: risk_exposure :: 25",
    "fictional_tech :: risk_exposure :: 1000000000",
)
TEST_PLUGIN = props(
    "installable_plugin :: feat1 :: val1c",
    "installable_plugin :: feat2 :: val2b",
)
FINGERPRINTS = {
    "everything": [*HARDWARE, *TECHNOLOGY, *TEST_PLUGIN],
    "everything_reversed": [*HARDWARE, *TECHNOLOGY, *TEST_PLUGIN][::-1],
    "technology_first": [*TECHNOLOGY, *TEST_PLUGIN[::-1], *HARDWARE],
    "small_mother_machine": props(
        "fictional_hw :: architecture :: mother",
        "fictional_hw :: compute_capability :: 4",
        "fictional_hw :: compute_capability :: 5",
        "installable_plugin :: feat2 :: val2b",
    ),
    "hal9000_with_foam": props(
        "fictional_hw :: architecture :: hal9000",
        "fictional_hw :: compute_accuracy :: 0",
        "fictional_hw :: compute_capability :: 6",
        "fictional_hw :: humor :: 2",
        "fictional_tech :: quantum :: foam",
        "fictional_tech :: technology :: improb_drive",
        "fictional_tech :: risk_exposure :: 1000000000",
    ),
    "empty": [],
}


def oracle_order(raw: dict[str, Any], supported: list[VariantProperty]) -> list[str]:
    """variantlib's order for the file's variants (the null variant always appended)."""
    priorities = raw["default-priorities"]
    namespaces = priorities["namespace"]
    grouped: dict[tuple[str, str], list[str]] = {}
    for prop in supported:
        if prop.namespace in namespaces:
            grouped.setdefault(prop.feature_key, []).append(prop.value)
    result = sort_and_filter_supported_variants(
        [
            VariantDescription.from_dict(desc, label)
            for label, desc in raw["variants"].items()
            if label != "null"
        ],
        [
            OracleProperty(namespace=ns, feature=feature, value=value)
            for (ns, feature), values in grouped.items()
            for value in values
        ],
        namespace_priorities=list(namespaces),
        feature_priorities=priorities.get("feature") or None,
        property_priorities=priorities.get("property") or None,
    )
    return [vdesc.label for vdesc in result]


@pytest.mark.parametrize("fingerprint", sorted(FINGERPRINTS))
@pytest.mark.parametrize("path", VARIANTS_JSONS, ids=_ids(VARIANTS_JSONS))
def test_fixture_ranks_like_variantlib(path: Path, fingerprint: str) -> None:
    raw = json.loads(path.read_bytes())
    supported = FINGERPRINTS[fingerprint]
    ranking = rank_variants(parse_variants_json(raw), supported)
    expected = oracle_order(raw, supported)
    if "null" not in raw["variants"]:
        expected.remove("null")
    assert list(ranking.ordered) == expected
    assert set(ranking.incompatible) == set(raw["variants"]) - set(expected)


@needs_reference
def test_known_rankings_of_the_fixtures() -> None:
    FIXTURES = REFERENCE_ROOT
    sandbox = parse_variants_json(
        (
            FIXTURES / "mockhouse/sandbox-project-flit/sandbox_project_flit-0.0.1-variants.json"
        ).read_bytes()
    )
    # fictional_tech outranks fictional_hw in this project: the one tech variant wins
    assert rank_variants(sandbox, FINGERPRINTS["everything"]).ordered == (
        "hal9k_foam_r_e10",
        "hal9k_c0_6_nfun",
        "mother_c4",
        "null",
    )
    assert rank_variants(sandbox, []).ordered == ("null",)
    dummy = parse_variants_json(
        (FIXTURES / "variantlib-variants-json/dummy_project-1.0.0-variants.json").read_bytes()
    )
    # default-priorities.feature puts humor first in fictional_hw
    ranking = rank_variants(dummy, FINGERPRINTS["small_mother_machine"])
    assert ranking.ordered == ("03e04d5e", "181830db", "3351fc6a", "null")


def test_known_rankings_of_the_generated_equivalents() -> None:
    generated = generated_root() / "generated"
    sandbox = parse_variants_json(
        (generated / "gen-sandbox/gen_sandbox-1.0-variants.json").read_bytes()
    )
    # fictional_tech outranks fictional_hw in this project: the one tech variant wins
    assert rank_variants(sandbox, FINGERPRINTS["everything"]).ordered == (
        "e5f60718",
        "a1b2c3d4",
        "9abcdef0",
        "null",
    )
    assert rank_variants(sandbox, []).ordered == ("null",)
    priorities = parse_variants_json(
        (generated / "variants-json-only/gen_priorities-1.0-variants.json").read_bytes()
    )
    # default-priorities.feature puts humor first in fictional_hw
    ranking = rank_variants(priorities, FINGERPRINTS["small_mother_machine"])
    assert ranking.ordered == ("55ee66ff", "11aa22bb", "33cc44dd", "null")  # ties: by label
