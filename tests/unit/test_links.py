"""File ids and hrefs in the proxy's own URL space: one URL always means one set of bytes."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.simple.model import DistFile
from proxy.urls.links import (
    FILE_ID_RE,
    FILENAME_RE,
    LABELS_RE,
    file_href,
    file_id,
    metadata_id,
    metadata_url,
    parse_labels_segment,
    variants_json_href,
)

SHA = "0123456789abcdef" * 4
OTHER_SHA = "fedcba9876543210" * 4
URL = "https://files.index.example/packages/ab/pkg-1.0-py3-none-any.whl"


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:40]


def test_file_id_is_the_sha256_when_the_page_gives_one() -> None:
    dist = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA, "md5": "0" * 32})
    assert file_id(dist) == f"sha256-{SHA}"
    assert FILE_ID_RE.match(file_id(dist))


def test_file_id_lowercases_an_uppercase_sha256() -> None:
    dist = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA.upper()})
    assert file_id(dist) == f"sha256-{SHA}"


@pytest.mark.parametrize(
    "hashes",
    [
        {},
        {"md5": "0" * 32},
        {"sha256": "not-a-digest"},
        {"sha256": SHA[:-1]},
        {"sha256": SHA + "0"},
        {"sha512": "0" * 128},
    ],
)
def test_file_id_without_a_usable_sha256_is_derived_from_the_url(hashes: dict[str, str]) -> None:
    dist = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes=hashes)
    assert file_id(dist) == f"url-{url_digest(URL)}"
    assert FILE_ID_RE.match(file_id(dist))


def test_file_id_does_not_depend_on_the_shown_name_or_attributes() -> None:
    variant = DistFile(
        "pkg-1.0-py3-none-any-x86_64_v3.whl", URL, hashes={"sha256": SHA}, size=5, yanked=True
    )
    renamed = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA})
    assert file_id(variant) == file_id(renamed)


def test_different_bytes_get_different_ids() -> None:
    one = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA})
    two = DistFile("pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": OTHER_SHA})
    assert file_id(one) != file_id(two)
    assert file_id(DistFile("a.whl", URL)) != file_id(DistFile("a.whl", URL + "?v=2"))


def test_file_href_ends_with_the_name_the_client_sees() -> None:
    dist = DistFile("pkg-1.0-py3-none-any-x86_64_v3.whl", URL, hashes={"sha256": SHA})
    assert file_href("pkg", dist) == f"/files/pkg/sha256-{SHA}/pkg-1.0-py3-none-any-x86_64_v3.whl"
    assert file_href("pkg", dist, "pkg-1.0-py3-none-any.whl") == (
        f"/files/pkg/sha256-{SHA}/pkg-1.0-py3-none-any.whl"
    )


def test_file_href_quotes_the_file_name() -> None:
    dist = DistFile("pkg-1.0+local build.tar.gz", URL, hashes={"sha256": SHA})
    href = file_href("pkg", dist)
    assert " " not in href
    assert unquote(href.rsplit("/", 1)[1]) == "pkg-1.0+local build.tar.gz"


@pytest.mark.parametrize(
    "filename",
    ["pkg-1.0-py3-none-any.whl", "pkg-1.0+cu128.tar.gz", "Pkg_Name-1!2.0.zip", "x~1.whl"],
)
def test_served_file_names_match_the_file_name_pattern(filename: str) -> None:
    dist = DistFile(filename, URL, hashes={"sha256": SHA})
    assert FILENAME_RE.match(unquote(file_href("pkg", dist).rsplit("/", 1)[1]))


@pytest.mark.parametrize("filename", ["../etc/passwd", ".hidden", "a/b", "", "a b"])
def test_file_name_pattern_refuses_unsafe_names(filename: str) -> None:
    assert not FILENAME_RE.match(filename)


@pytest.mark.parametrize(
    "ident",
    ["sha256-" + SHA.upper(), "sha256-" + SHA[:-1], "url-" + "0" * 39, "md5-" + "0" * 32, "../x"],
)
def test_file_id_pattern_refuses_other_ids(ident: str) -> None:
    assert not FILE_ID_RE.match(ident)


def test_metadata_url_appends_metadata_to_the_file_url() -> None:
    dist = DistFile("pkg-1.0-py3-none-any.whl", URL)
    assert metadata_url(dist) == URL + ".metadata"


@pytest.mark.parametrize("fragment", ["#sha256=" + SHA, "#egg=pkg"])
def test_metadata_url_leaves_out_the_file_url_fragment(fragment: str) -> None:
    # PEP 658: the metadata file is at the distribution's URL (without its fragment) + .metadata
    dist = DistFile("pkg-1.0-py3-none-any.whl", URL + fragment)
    assert metadata_url(dist) == URL + ".metadata"


def test_metadata_id_is_the_metadata_sha256_when_given() -> None:
    dist = DistFile(
        "pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA}, core_metadata={"sha256": OTHER_SHA}
    )
    assert metadata_id(dist) == f"sha256-{OTHER_SHA}"
    assert metadata_id(dist) != file_id(dist)


@pytest.mark.parametrize("core_metadata", [True, False, {}, {"md5": "0" * 32}])
def test_metadata_id_without_a_metadata_sha256_is_derived_from_the_metadata_url(
    core_metadata: bool | dict[str, str],
) -> None:
    dist = DistFile(
        "pkg-1.0-py3-none-any.whl", URL, hashes={"sha256": SHA}, core_metadata=core_metadata
    )
    assert metadata_id(dist) == f"url-{url_digest(URL + '.metadata')}"
    assert metadata_id(dist) != file_id(dist)
    assert FILE_ID_RE.match(metadata_id(dist))


def test_variants_json_href_names_the_sorted_labels() -> None:
    dist = DistFile("pkg-1.0-variants.json", URL, hashes={"sha256": SHA})
    href = variants_json_href("pkg", dist, ("x86_64_v3", "null", "cu128"))
    assert href == f"/variants-json/pkg/sha256-{SHA}/cu128+null+x86_64_v3/pkg-1.0-variants.json"
    labels = href.split("/")[4]
    assert LABELS_RE.match(labels)


def test_variants_json_href_differs_per_label_subset() -> None:
    dist = DistFile("pkg-1.0-variants.json", URL, hashes={"sha256": SHA})
    assert variants_json_href("pkg", dist, ("null",)) != variants_json_href(
        "pkg", dist, ("null", "x86_64_v3")
    )
    assert variants_json_href("pkg", dist, ("b", "a")) == variants_json_href(
        "pkg", dist, ("a", "b")
    )


@pytest.mark.parametrize("labels", ["", "+", "a++", "+a", "A", "a+b/c", "../x", "a++b"])
def test_labels_pattern_refuses_malformed_label_lists(labels: str) -> None:
    assert not LABELS_RE.match(labels)


@pytest.mark.parametrize(
    "labels", [(".",), ("..",), (".", ".."), ("null", "."), ("...",), ("x86_64_v3",)]
)
def test_no_variants_json_href_holds_a_segment_clients_collapse(labels: tuple[str, ...]) -> None:
    dist = DistFile("pkg-1.0-variants.json", URL, hashes={"sha256": SHA})
    href = variants_json_href("pkg", dist, labels)
    segments = href.split("/")
    assert "." not in segments and ".." not in segments
    assert parse_labels_segment(segments[-2]) == tuple(sorted(labels))


def test_label_segments_made_before_the_dot_rule_still_parse() -> None:
    assert parse_labels_segment("null+x86_64_v3") == ("null", "x86_64_v3")
    assert parse_labels_segment("a+") == ("a",)
    assert parse_labels_segment("a+b/c") is None


@given(st.text(alphabet=st.sampled_from("aZ09_.~-/+ %?#\n\u00e9\u2603"), max_size=8))
def test_file_href_quotes_exactly_as_quote_does(name: str) -> None:
    """Names left unquoted (most of them, skipping `quote`) are the ones `quote` leaves alone."""
    dist = DistFile("a-1.0.tar.gz", "https://f.example/a.tar.gz")
    assert file_href("a", dist, name or None).endswith("/" + quote(name or dist.filename))
