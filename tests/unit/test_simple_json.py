"""PEP 691 JSON project pages and project lists: every standard key, unknown keys, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.simple.api import PageFormatError
from proxy.simple.json_pages import (
    _checked_dist_file,
    _dist_file,
    parse_index_json,
    parse_project_json,
    render_index_json,
    render_project_json,
)
from proxy.simple.model import DistFile, ProjectPage
from proxy.urls.join import LinkResolver

PAGE_URL = "https://index.example/simple/holygrail/"
SHA = "cd" * 32


def page_bytes(files: list[dict[str, Any]], **top: Any) -> bytes:
    document: dict[str, Any] = {"meta": {"api-version": "1.1"}, "name": "holygrail", "files": files}
    document.update(top)
    return json.dumps(document).encode()


def one_file(**keys: Any) -> DistFile:
    entry = {"filename": "x-1.0.tar.gz", "url": "https://f.example/x-1.0.tar.gz", "hashes": {}}
    entry.update(keys)
    (dist,) = parse_project_json(page_bytes([entry]), PAGE_URL).files
    return dist


def rendered(page: ProjectPage, **options: bool) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_project_json(page, **options))
    return document


# --- reading -----------------------------------------------------------------------------


def test_every_standard_key_is_read() -> None:
    body = page_bytes(
        [
            {
                "filename": "holygrail-1.0-py3-none-any.whl",
                "url": "https://f.example/holygrail-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA, "blake2b": "00"},
                "requires-python": ">=3.7",
                "yanked": "Had a vulnerability",
                "core-metadata": {"sha256": SHA},
                "gpg-sig": False,
                "size": 1234,
                "upload-time": "2024-01-02T03:04:05.678901Z",
                "provenance": "https://index.example/integrity/holygrail/1.0/w/provenance",
            }
        ],
        versions=["1.0", "2.0"],
    )
    page = parse_project_json(body, PAGE_URL)
    assert page == ProjectPage(
        name="holygrail",
        versions=("1.0", "2.0"),
        api_version="1.1",
        files=(
            DistFile(
                filename="holygrail-1.0-py3-none-any.whl",
                url="https://f.example/holygrail-1.0-py3-none-any.whl",
                hashes={"sha256": SHA, "blake2b": "00"},
                requires_python=">=3.7",
                yanked="Had a vulnerability",
                core_metadata={"sha256": SHA},
                gpg_sig=False,
                size=1234,
                upload_time="2024-01-02T03:04:05.678901Z",
                provenance="https://index.example/integrity/holygrail/1.0/w/provenance",
            ),
        ),
    )


def test_relative_urls_resolve_against_the_page_url() -> None:
    assert one_file(url="../../files/x.tar.gz").url == "https://index.example/files/x.tar.gz"
    assert one_file(url="/abs/x.tar.gz").url == "https://index.example/abs/x.tar.gz"


def test_name_is_normalised_and_taken_from_the_url_when_missing() -> None:
    document = {"meta": {"api-version": "1.0"}, "files": []}
    assert parse_project_json(
        json.dumps(document).encode(), "https://i.example/s/Holy_Grail/"
    ).name == ("holy-grail")
    assert parse_project_json(page_bytes([], name="Holy.Grail"), PAGE_URL).name == "holy-grail"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (None, False), ("", False), ("reason", "reason")],
)
def test_yanked_values(value: object, expected: object) -> None:
    assert one_file(yanked=value).yanked == expected


def test_missing_optional_keys_give_defaults() -> None:
    dist = one_file()
    assert dist == DistFile(filename="x-1.0.tar.gz", url="https://f.example/x-1.0.tar.gz")


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"core-metadata": True}, True),
        ({"core-metadata": False}, False),
        ({"core-metadata": {"SHA256": SHA}}, {"sha256": SHA}),
        ({"core-metadata": {}}, False),
        ({"dist-info-metadata": {"sha256": SHA}}, {"sha256": SHA}),
        ({"data-dist-info-metadata": {"sha256": SHA}}, {"sha256": SHA}),
        # PEP 714: the new key wins over the legacy one.
        ({"core-metadata": False, "dist-info-metadata": True}, False),
        ({"core-metadata": {"sha256": SHA}, "dist-info-metadata": True}, {"sha256": SHA}),
    ],
)
def test_core_metadata_keys(keys: dict[str, Any], expected: object) -> None:
    dist = one_file(**keys)
    assert dist.core_metadata == expected
    assert dist.extra == {}


def test_hash_names_are_lowercased() -> None:
    assert one_file(hashes={"SHA256": SHA}).hashes == {"sha256": SHA}


def test_unknown_file_and_page_keys_are_kept() -> None:
    body = page_bytes(
        [
            {
                "filename": "x.whl",
                "url": "https://f.example/x.whl",
                "hashes": {},
                "_private": {"nested": [1, 2]},
                "future-key": "v",
            }
        ],
        tracks=["https://other.example/simple/holygrail/"],
        **{"alternate-locations": [], "meta": {"api-version": "1.1", "_last-serial": 42}},
    )
    page = parse_project_json(body, PAGE_URL)
    assert page.files[0].extra == {"_private": {"nested": [1, 2]}, "future-key": "v"}
    assert page.extra == {
        "tracks": ["https://other.example/simple/holygrail/"],
        "alternate-locations": [],
        "meta": {"_last-serial": 42},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "invalid JSON page"),
        (b"[1, 2]", "JSON page is a list, not an object"),
        (b'{"meta": [], "files": []}', "'meta' is not an object"),
        (b'{"meta": {"api-version": 2}, "files": []}', "meta.api-version 2 is not a string"),
        (b'{"meta": {"api-version": "2.0"}, "files": []}', "unsupported major api-version 2"),
        (b'{"meta": {"api-version": "one"}, "files": []}', "'one' is not a 'Major.Minor'"),
        (b'{"name": "x", "files": {}}', "'files' is not a list"),
        (b'{"name": 3, "files": []}', "'name' is 3, not a string"),
        (b'{"name": "x", "files": [], "versions": [1]}', "'versions' is not a list of strings"),
        (b'{"name": "x", "files": ["x.whl"]}', r"files\[0\] is not an object"),
        (b'{"name": "x", "files": [{"url": "u"}]}', r"files\[0\].filename is None"),
        (b"\xff\xfe\x00", "invalid JSON page"),
        (b"[" * 100000 + b"]" * 100000, "invalid JSON page"),
    ],
)
def test_garbage_pages_are_refused_naming_the_bad_part(body: bytes, message: str) -> None:
    with pytest.raises(PageFormatError, match=message) as caught:
        parse_project_json(body, PAGE_URL)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"url": 5}, r"files\[0\] \('x-1.0.tar.gz'\).url is 5"),
        ({"hashes": ["sha256"]}, r"\.hashes is not an object"),
        ({"hashes": {"sha256": 1}}, r"\.hashes is not an object"),
        ({"requires-python": 3}, r"\.requires-python is 3"),
        ({"yanked": 1}, r"\.yanked is 1"),
        ({"core-metadata": "sha256=00"}, r"\.core-metadata is not an object"),
        ({"gpg-sig": "yes"}, r"\.gpg-sig is 'yes'"),
        ({"size": -1}, r"\.size is -1"),
        ({"size": True}, r"\.size is True"),
        ({"size": 1.5}, r"\.size is 1.5"),
        ({"upload-time": 0}, r"\.upload-time is 0"),
        ({"provenance": {}}, r"\.provenance is \{\}"),
    ],
)
def test_bad_file_values_are_refused_naming_file_and_key(
    keys: dict[str, Any], message: str
) -> None:
    with pytest.raises(PageFormatError, match=message):
        one_file(**keys)


# --- rendering ---------------------------------------------------------------------------


def test_rendering_writes_every_attribute() -> None:
    dist = DistFile(
        filename="x.whl",
        url="https://f.example/x.whl",
        hashes={"sha256": SHA},
        requires_python=">=3.8",
        yanked=True,
        core_metadata={"sha256": SHA},
        gpg_sig=True,
        size=10,
        upload_time="2024-01-02T03:04:05Z",
        provenance="https://p.example/x",
    )
    document = rendered(ProjectPage(name="x", files=(dist,), versions=("1.0",)))
    assert document == {
        "meta": {"api-version": "1.1"},
        "name": "x",
        "versions": ["1.0"],
        "files": [
            {
                "filename": "x.whl",
                "url": "https://f.example/x.whl",
                "hashes": {"sha256": SHA},
                "requires-python": ">=3.8",
                "yanked": True,
                "core-metadata": {"sha256": SHA},
                "gpg-sig": True,
                "size": 10,
                "upload-time": "2024-01-02T03:04:05Z",
                "provenance": "https://p.example/x",
            }
        ],
    }


def test_absent_values_are_left_out_but_hashes_is_always_there() -> None:
    document = rendered(
        ProjectPage(name="x", files=(DistFile("x.whl", "https://f.example/x.whl"),))
    )
    assert document["files"] == [
        {"filename": "x.whl", "url": "https://f.example/x.whl", "hashes": {}}
    ]
    assert "versions" not in document


def test_legacy_dist_info_metadata_key_only_on_request() -> None:
    page = ProjectPage(
        name="x", files=(DistFile("x.whl", "https://f.example/x.whl", core_metadata=True),)
    )
    assert "dist-info-metadata" not in rendered(page)["files"][0]
    both = rendered(page, legacy_metadata_key=True)["files"][0]
    assert both["core-metadata"] is True
    assert both["dist-info-metadata"] is True


@pytest.mark.parametrize(
    ("api_version", "dist", "versions", "expected"),
    [
        ("1.0", DistFile("x.whl", "u"), None, "1.0"),
        ("1.0", DistFile("x.whl", "u", size=1), None, "1.1"),
        ("1.0", DistFile("x.whl", "u", upload_time="2024-01-01T00:00:00Z"), None, "1.1"),
        ("1.0", DistFile("x.whl", "u"), ("1.0",), "1.1"),
        ("1.3", DistFile("x.whl", "u", size=1), None, "1.3"),
        ("1.1", DistFile("x.whl", "u"), None, "1.1"),
    ],
)
def test_announced_api_version(
    api_version: str, dist: DistFile, versions: tuple[str, ...] | None, expected: str
) -> None:
    page = ProjectPage(name="x", files=(dist,), versions=versions, api_version=api_version)
    assert rendered(page)["meta"]["api-version"] == expected


def test_unknown_keys_survive_a_json_round_trip() -> None:
    body = page_bytes(
        [{"filename": "x.whl", "url": "https://f.example/x.whl", "hashes": {}, "_private": [1]}],
        tracks=["https://other.example/"],
        meta={"api-version": "1.1", "_last-serial": 7},
    )
    page = parse_project_json(body, PAGE_URL)
    document = rendered(page)
    assert document["tracks"] == ["https://other.example/"]
    assert document["meta"] == {"api-version": "1.1", "_last-serial": 7}
    assert document["files"][0]["_private"] == [1]
    assert parse_project_json(render_project_json(page), PAGE_URL) == page


def test_extra_keys_never_override_the_model() -> None:
    dist = DistFile("x.whl", "https://f.example/x.whl", size=5, extra={"size": 999, "url": "evil"})
    page = ProjectPage(name="x", files=(dist,), extra={"name": "evil", "files": []})
    document = rendered(page)
    assert document["name"] == "x"
    assert document["files"][0]["size"] == 5
    assert document["files"][0]["url"] == "https://f.example/x.whl"


def test_non_ascii_and_lone_surrogates_render_as_valid_json() -> None:
    body = page_bytes(
        [
            {
                "filename": "x.whl",
                "url": "https://f.example/x.whl",
                "yanked": "d\u00e9faut \u2603 \ud800",
            }
        ]
    )
    page = parse_project_json(body, PAGE_URL)
    assert page.files[0].yanked == "d\u00e9faut \u2603 \ud800"
    rendered_body = render_project_json(page)
    assert rendered_body.isascii()
    assert parse_project_json(rendered_body, PAGE_URL) == page


# --- project list ------------------------------------------------------------------------


def test_index_names_as_given() -> None:
    body = (
        b'{"meta": {"api-version": "1.0"}, "projects": [{"name": "Frob"}, {"name": "spam_eggs"}]}'
    )
    assert parse_index_json(body) == ["Frob", "spam_eggs"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"meta": {"api-version": "2.1"}, "projects": []}', "unsupported major api-version 2"),
        (b'{"meta": {"api-version": "1.0"}}', "'projects' is not a list"),
        (b'{"projects": [{"name": "a"}, {"nom": "b"}]}', r"projects\[1\] has no string 'name'"),
        (b'{"projects": ["a"]}', r"projects\[0\] has no string 'name'"),
    ],
)
def test_bad_index_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(PageFormatError, match=message):
        parse_index_json(body)


def test_index_render_round_trip_with_awkward_names() -> None:
    names = ["Frob", 'quo"te', "back\\slash", "uni\u2603", "ctl\x01", "lone\ud800"]
    body = render_index_json(names, "1.1")
    assert json.loads(body) == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": n} for n in names],
    }
    assert parse_index_json(body) == names


# Values of every key a file entry may carry, the wrong types and spellings included.
_ENTRY_VALUES = {
    "filename": st.one_of(st.sampled_from(["a-1.0.tar.gz", "a-1.0-py3-none-any.whl"]), st.none()),
    "url": st.one_of(st.sampled_from(["a.whl", "../f/a.whl", "https://h.example/a"]), st.none()),
    "hashes": st.one_of(
        st.dictionaries(st.sampled_from(["sha256", "SHA256", "md5", "1"]), st.text(max_size=3)),
        st.sampled_from([None, [], "x", {"sha256": 1}]),
    ),
    "requires-python": st.sampled_from([None, "", ">=3.8", 3]),
    "yanked": st.sampled_from([None, False, True, "", "bad", 0, 1, [], {}]),
    "core-metadata": st.sampled_from([None, False, True, {}, {"sha256": "ab"}, {"SHA256": "a"}, 1]),
    "dist-info-metadata": st.sampled_from([False, True, {"sha256": "cd"}, "x"]),
    "gpg-sig": st.sampled_from([None, False, True, "yes"]),
    "size": st.sampled_from([None, 0, 10, -1, True, 1.5, 2**70]),
    "upload-time": st.sampled_from([None, "", "2024-01-01T00:00:00Z", 5]),
    "provenance": st.sampled_from([None, "https://h.example/p", 7]),
    "x-unknown": st.sampled_from([None, 1, {"a": [1]}]),
}


@given(st.fixed_dictionaries({}, optional=_ENTRY_VALUES))
def test_fast_entry_reading_equals_the_checked_one(entry: dict[str, Any]) -> None:
    """The fast path of a file entry gives the very record (or the very error) of the checks."""
    links = LinkResolver("https://index.example/simple/a/")
    try:
        expected: object = _checked_dist_file(entry, 3, links)
    except PageFormatError as error:
        expected = str(error)
    try:
        got: object = _dist_file(entry, 3, links)
    except PageFormatError as error:
        got = str(error)
    assert repr(got) == repr(expected)
