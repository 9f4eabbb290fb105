"""`variant-proxy explain` text: the server's own decisions, per version, then the shown page."""

from __future__ import annotations

from proxy.cli.explain import format_view
from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.fingerprint import EMPTY_FINGERPRINT, Fingerprint, parse_properties_header
from proxy.variants.metadata import parse_variants_json
from proxy.variants.rewrite import FileDecision, VersionDecision, VersionVariants, View, legacy_view

SCHEMA = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"


def dist(filename: str) -> DistFile:
    return DistFile(filename, f"https://files.index.example/{filename}")


SDIST = dist("pkg-1.0.tar.gz")
PLAIN = dist("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
V3 = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl")
V4 = dist("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v4.whl")
JSON_FILE = dist("pkg-1.0-variants.json")
PAGE = ProjectPage("pkg", (SDIST, PLAIN, V3, V4, JSON_FILE))
DOC = parse_variants_json(
    {
        "$schema": SCHEMA,
        "default-priorities": {"namespace": ["x86_64"]},
        "variants": {
            "x86_64_v3": {"x86_64": {"level": ["v3"]}},
            "x86_64_v4": {"x86_64": {"level": ["v4"]}},
        },
    }
)
V3_CLIENT = parse_properties_header("x86_64 :: level :: v3, x86_64 :: level :: v2")


def test_format_view_tells_the_whole_story_of_a_legacy_page() -> None:
    view = legacy_view(PAGE, {"1.0": VersionVariants(DOC, None, JSON_FILE)}, V3_CLIENT.properties)
    assert format_view("pkg", view, V3_CLIENT, "url") == (
        "project pkg: fingerprint from url\n"
        "  Variant-Properties: x86_64 :: level :: v3, x86_64 :: level :: v2\n"
        "version 1.0:\n"
        "  ranking: 1. x86_64_v3\n"
        "  winner: x86_64_v3\n"
        "  + pkg-1.0.tar.gz: not replaced by a shown variant\n"
        "  - pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl: replaced by variant 'x86_64_v3'\n"
        "  + pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl"
        " -> pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl: best variant (rank 1 of 1)\n"
        "  - pkg-1.0-cp312-cp312-manylinux_2_28_x86_64-x86_64_v4.whl:"
        " no supported value for x86_64 :: level (the variant needs one of: v4)\n"
        "  - pkg-1.0-variants.json: variants.json is not shown to legacy clients\n"
        "a legacy client is shown:\n"
        "  pkg-1.0.tar.gz\n"
        "  pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl\n"
    )


def test_format_view_without_a_fingerprint() -> None:
    view = legacy_view(PAGE, {"1.0": VersionVariants(DOC, None, JSON_FILE)}, None)
    text = format_view("pkg", view, None, "none")
    lines = text.splitlines()
    assert lines[0] == "project pkg: fingerprint from none"
    assert lines[1] == "  no fingerprint: legacy clients see the upstream page minus variants"
    assert "  ranking: (no compatible variant)" in lines
    assert "  winner: (none)" in lines
    assert lines[-3:] == [
        "a legacy client is shown:",
        "  pkg-1.0.tar.gz",
        "  pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    ]
    assert "Variant-Properties" not in text


def test_format_view_with_an_empty_fingerprint_says_so() -> None:
    view = legacy_view(PAGE, {"1.0": VersionVariants(DOC)}, ())
    text = format_view("pkg", view, EMPTY_FINGERPRINT, "header")
    assert "  Variant-Properties: (empty)\n" in text


def test_format_view_names_an_unusable_variants_json() -> None:
    problem = "invalid variants.json: $schema: missing"
    view = legacy_view(PAGE, {"1.0": VersionVariants(None, problem)}, V3_CLIENT.properties)
    text = format_view("pkg", view, V3_CLIENT, "header")
    assert f"  variants unusable: {problem}\n" in text
    assert f"  - {V3.filename}: {problem}\n" in text


def test_format_view_of_a_page_without_variants() -> None:
    page = ProjectPage("plain", (dist("plain-1.0.tar.gz"),))
    view = legacy_view(page, {}, V3_CLIENT.properties)
    assert format_view("plain", view, V3_CLIENT, "default") == (
        "project plain: fingerprint from default\n"
        "  Variant-Properties: x86_64 :: level :: v3, x86_64 :: level :: v2\n"
        "  no version has variant wheels: the page is served as upstream lists it\n"
        "a legacy client is shown:\n"
        "  plain-1.0.tar.gz\n"
    )


def test_format_view_marks_kept_files_without_renaming_arrows() -> None:
    view = View(
        ProjectPage("pkg", (SDIST,)),
        (
            VersionDecision(
                "1.0",
                ("a", "b"),
                "a",
                (
                    FileDecision("pkg-1.0.tar.gz", "pkg-1.0.tar.gz", "kept"),
                    FileDecision("pkg-1.0-py3-none-any-b.whl", None, "ranked 2"),
                ),
            ),
        ),
    )
    text = format_view("pkg", view, Fingerprint(), "detected")
    assert "  ranking: 1. a, 2. b\n" in text
    assert "  + pkg-1.0.tar.gz: kept\n" in text
    assert "  - pkg-1.0-py3-none-any-b.whl: ranked 2\n" in text
    assert "->" not in text
    assert text.endswith("a legacy client is shown:\n  pkg-1.0.tar.gz\n")
