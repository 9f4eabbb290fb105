"""The page URL space: `[/native] [/p/{profile} | /hw/{spec}] /simple/ [{project}/]`."""

from __future__ import annotations

import pytest

from proxy.urls.paths import MAX_SEGMENT, MAX_SPEC, BadPath, PagePath, parse_page_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/simple/", PagePath(False, None, None, None, True)),
        ("/simple", PagePath(False, None, None, None, False)),
        ("/simple/numpy/", PagePath(False, None, None, "numpy", True)),
        ("/simple/numpy", PagePath(False, None, None, "numpy", False)),
        ("/simple/Foo.Bar_baz-2/", PagePath(False, None, None, "Foo.Bar_baz-2", True)),
        ("/simple/a/", PagePath(False, None, None, "a", True)),
        ("/native/simple/", PagePath(True, None, None, None, True)),
        ("/native/simple/torch/", PagePath(True, None, None, "torch", True)),
        ("/p/gpu/simple/", PagePath(False, "gpu", None, None, True)),
        ("/p/gpu/simple/torch/", PagePath(False, "gpu", None, "torch", True)),
        ("/p/cpu-v3.local_1/simple/x/", PagePath(False, "cpu-v3.local_1", None, "x", True)),
        (
            "/hw/cpu=x86_64_v3,cuda=12.8/simple/x/",
            PagePath(False, None, "cpu=x86_64_v3,cuda=12.8", "x", True),
        ),
        ("/hw/none/simple/", PagePath(False, None, "none", None, True)),
        ("/native/p/x/simple/", PagePath(True, "x", None, None, True)),
        ("/p/x/native/simple/", PagePath(True, "x", None, None, True)),
        ("/native/p/x/simple/torch/", PagePath(True, "x", None, "torch", True)),
        ("/p/x/native/simple/torch/", PagePath(True, "x", None, "torch", True)),
        ("/native/hw/none/simple/torch/", PagePath(True, None, "none", "torch", True)),
        ("/hw/none/native/simple/torch/", PagePath(True, None, "none", "torch", True)),
    ],
)
def test_accepted_forms(raw: str, expected: PagePath) -> None:
    assert parse_page_path(raw) == expected


def test_segments_are_percent_decoded() -> None:
    parsed = parse_page_path("/hw/cpu%3Dx86_64_v3%2Cprop%3Dacme%3A%3Acolor%3A%3Ablue/simple/x/")
    assert parsed is not None
    assert parsed.spec == "cpu=x86_64_v3,prop=acme::color::blue"
    assert parse_page_path("/p/g%70u/simple/n%75mpy/") == PagePath(
        False, "gpu", None, "numpy", True
    )


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        ("/simple/", 1),
        ("/simple/numpy/", 2),
        ("/native/simple/", 2),
        ("/native/simple/numpy/", 3),
        ("/p/gpu/simple/", 3),
        ("/p/gpu/simple/numpy/", 4),
        ("/hw/none/simple/numpy/", 4),
        ("/native/p/gpu/simple/numpy/", 5),
        ("/p/gpu/native/simple/numpy/", 5),
    ],
)
def test_depth_counts_the_segments_of_a_trailing_slash_path(raw: str, depth: int) -> None:
    parsed = parse_page_path(raw)
    assert parsed is not None
    assert parsed.depth == depth
    assert raw.count("/") - 1 == depth  # "../" * depth leads from the page back to "/"


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("/simple/numpy/", "/simple/"),
        ("/native/simple/", "/native/simple/"),
        ("/p/gpu/native/simple/x/", "/native/p/gpu/simple/"),
        ("/hw/none/simple/x/", "/hw/none/simple/"),
    ],
)
def test_prefix_and_with_project_build_the_canonical_form(raw: str, prefix: str) -> None:
    parsed = parse_page_path(raw)
    assert parsed is not None
    assert parsed.prefix() == prefix
    assert parsed.with_project("numpy") == prefix + "numpy/"
    assert parse_page_path(parsed.with_project("numpy")) == PagePath(
        parsed.native, parsed.profile, parsed.spec, "numpy", True
    )


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "",
        "simple/",
        "/health",
        "/metrics",
        "/files/numpy/sha256-00/numpy-1.0.tar.gz",
        "/variants-json/numpy/x/null/numpy-1.0-variants.json",
        "/native",
        "/native/",
        "/p/gpu",
        "/p/gpu/",
        "/native/native/simple/",
        "/p/a/p/b/simple/",
        "/p/a/hw/none/simple/",
        "/hw/none/p/a/simple/",
        "//simple/",
        "/other/simple/",
    ],
)
def test_non_page_paths_are_none(raw: str) -> None:
    assert parse_page_path(raw) is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("/simple/../", "'..'"),
        ("/simple/./", "'.'"),
        ("/simple/%2E%2E/", "'..'"),
        ("/simple/..%2Fetc/", "../etc"),
        ("/simple/a%2Fb/", "a/b"),
        ("/p/../simple/", "'..'"),
        ("/p/%2E%2E/simple/", "'..'"),
        ("/p/.hidden/simple/", ".hidden"),
        ("/hw/../simple/", "'..'"),
        ("/hw/./simple/", "'.'"),
        ("/p//simple/", "''"),
        ("/hw//simple/", "''"),
        ("/p/", "profile"),
        ("/hw/", "hardware spec"),
        ("/simple//", "''"),
        ("/simple/-numpy/", "-numpy"),
        ("/simple/numpy-/", "numpy-"),
        ("/simple/<script>/", "<script>"),
        ("/simple/num%20py/", "num py"),
        ("/simple/numpy%0A/", "numpy\\n"),
        ("/p/gpu%0A/simple/", "gpu\\n"),
        ("/p/g%20pu/simple/", "g pu"),
        ("/simple/numpy/extra/", "extra"),
        ("/simple/numpy/a/b", "a/b"),
    ],
)
def test_bad_segments_raise_bad_path_naming_them(raw: str, named: str) -> None:
    with pytest.raises(BadPath) as caught:
        parse_page_path(raw)
    assert named in str(caught.value)


def test_over_long_segments_are_refused() -> None:
    with pytest.raises(BadPath):
        parse_page_path("/simple/" + "a" * (MAX_SEGMENT + 1) + "/")
    with pytest.raises(BadPath):
        parse_page_path("/p/" + "a" * (MAX_SEGMENT + 1) + "/simple/")
    with pytest.raises(BadPath, match="too long"):
        parse_page_path("/hw/" + "a" * (MAX_SPEC + 1) + "/simple/")
    # A detected machine's spec lists every CPU flag: far longer than a name, still accepted.
    long_spec = ",".join(["cpu=x86_64_v4"] + [f"prop=x86_64::flag{i}::on" for i in range(40)])
    assert len(long_spec) > MAX_SEGMENT
    assert parse_page_path(f"/hw/{long_spec}/simple/") == PagePath(
        False, None, long_spec, None, True
    )
    longest = "a" * MAX_SEGMENT
    assert parse_page_path(f"/simple/{longest}/") == PagePath(False, None, None, longest, True)


def test_bad_path_message_is_one_short_line() -> None:
    with pytest.raises(BadPath) as caught:
        parse_page_path("/simple/" + "%0A" * 2000 + "/")
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) < 200
