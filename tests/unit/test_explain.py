"""`variant-proxy explain` text: the server's own decisions, per version, then the shown page."""

from __future__ import annotations

from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.explanation import format_view
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
    text = format_view("pkg", view, V3_CLIENT, "url", upstream=PAGE)
    lines = text.splitlines()
    assert lines[:5] == [
        "project pkg: fingerprint from url",
        "  Variant-Properties: x86_64 :: level :: v3, x86_64 :: level :: v2",
        "version 1.0:",
        "  compatible variants, best first: 1. x86_64_v3",
        "  winner: x86_64_v3",
    ]
    assert "  + pkg-1.0.tar.gz: sdist" in lines
    assert (
        f"  + {PLAIN.filename}: non-variant: no better-ranked wheel installs wherever it does"
        in lines
    )
    assert (
        f"  + {V3.filename} -> pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl:"
        " variant 'x86_64_v3' (#1 of 1): no better-ranked wheel installs wherever it does"
    ) in lines
    assert (
        f"  - {V4.filename}: incompatible: no supported value for x86_64 :: level"
        " (the variant needs one of: v4)"
    ) in lines
    # per platform: glibc 2.17 gets the plain wheel, glibc 2.28 the variant, others the sdist
    platforms = text.split("per platform and Python:\n", 1)[1]
    glibc_217, glibc_228 = platforms.split("linux x86_64 glibc 2.28")
    assert f"Python 3.12: {PLAIN.filename} (non-variant)" in glibc_217
    assert f"Python 3.12: {V3.filename} (variant 'x86_64_v3' (#1 of 1))" in glibc_228
    assert "windows amd64              every Python: sdist pkg-1.0.tar.gz" in platforms
    assert "pip agrees with a PEP 825 installer everywhere above" in text
    shown = lines[lines.index("a legacy client is shown:") + 1 :]
    assert sorted(shown) == sorted(
        f"  {name}"
        for name in (
            SDIST.filename,
            PLAIN.filename,
            "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        )
    )


def test_format_view_names_the_environments_where_pip_cannot_agree() -> None:
    # A plain linux_x86_64 wheel ranks after the variant but pip 26 prefers linux_x86_64
    # over every manylinux tag, and the manylinux variant does not install everywhere it does.
    plain = dist("pkg-1.0-cp312-cp312-linux_x86_64.whl")
    page = ProjectPage("pkg", (plain, V3, JSON_FILE))
    view = legacy_view(page, {"1.0": VersionVariants(DOC, None, JSON_FILE)}, V3_CLIENT.properties)
    text = format_view("pkg", view, V3_CLIENT, "url", upstream=page)
    rule5 = text.split("(rule 5):\n", 1)[1]
    assert "linux x86_64 glibc 2.28, Python 3.12: pip takes " + plain.filename in rule5
    assert "a PEP 825 installer " + V3.filename in rule5
    assert "pip 26 ranks linux_x86_64 first" in rule5
    assert "glibc 2.17" not in rule5  # there the variant does not install: pip agrees


def test_a_large_project_is_summarised_unless_all_is_asked_for() -> None:
    files = [SDIST, PLAIN, V3, V4, JSON_FILE]
    versions = {}
    for minor in range(80):
        version = f"0.{minor}"
        files += [
            dist(f"pkg-{version}-cp312-cp312-manylinux_2_28_x86_64-x86_64_v3.whl"),
            dist(f"pkg-{version}-cp312-cp312-win_amd64.whl"),
            dist(f"pkg-{version}-cp311-cp311-win_amd64.whl"),
            dist(f"pkg-{version}.tar.gz"),
        ]
        versions[version] = VersionVariants(DOC)
    versions["1.0"] = VersionVariants(DOC, None, JSON_FILE)
    page = ProjectPage("pkg", tuple(files))
    view = legacy_view(page, versions, V3_CLIENT.properties)
    short = format_view("pkg", view, V3_CLIENT, "url", upstream=page)
    assert "the latest 3 in short (--all lists every version and file)" in short
    assert [line for line in short.splitlines() if line.startswith("version ")] == [
        "version 0.78:",
        "version 0.79:",
        "version 1.0:",
    ]
    assert "a legacy client is shown:" not in short
    assert len(short.splitlines()) < 80
    full = format_view("pkg", view, V3_CLIENT, "url", upstream=page, show_all=True)
    assert full.count("\nversion ") == 81
    assert "a legacy client is shown:" in full


def test_format_view_without_a_fingerprint() -> None:
    view = legacy_view(PAGE, {"1.0": VersionVariants(DOC, None, JSON_FILE)}, None)
    text = format_view("pkg", view, None, "none")
    lines = text.splitlines()
    assert lines[0] == "project pkg: fingerprint from none"
    assert lines[1] == "  no fingerprint: legacy clients see the upstream page minus variants"
    assert "  compatible variants, best first: (none)" in lines
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
    assert f"  - {V3.filename}: incompatible: {problem}\n" in text


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
    assert "  compatible variants, best first: 1. a, 2. b\n" in text
    assert "  + pkg-1.0.tar.gz: kept\n" in text
    assert "  - pkg-1.0-py3-none-any-b.whl: ranked 2\n" in text
    assert "->" not in text
    assert text.endswith("a legacy client is shown:\n  pkg-1.0.tar.gz\n")
