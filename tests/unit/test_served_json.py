"""The served JSON page made straight from an upstream JSON page is byte for byte the one
the general path makes (parse, merge, proxy links, render), or it is not made at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from proxy.pages.served_json import served_json_page
from proxy.pipeline import SubsetCache, with_proxy_links
from proxy.simple.api import PageFormatError, parse_project_page
from proxy.simple.json_pages import render_project_json
from proxy.simple.model import ProjectPage
from proxy.upstreams.variant_metadata import NO_VARIANTS

PAGE_URL = "https://user:pw@index.example/simple/Holy_Grail/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
SHA = "ab" * 32


def general_path(body: bytes, project: str, root: str) -> bytes | None:
    """What the proxy serves in JSON for a page of one upstream without variant files."""
    try:
        parsed = parse_project_page(body, JSON_TYPE, PAGE_URL)
    except PageFormatError:
        return None
    files: dict[str, Any] = {}
    for dist in parsed.files:
        files.setdefault(dist.filename, dist)
    versions = tuple(dict.fromkeys(parsed.versions)) if parsed.versions is not None else None
    merged = ProjectPage(project, tuple(files.values()), versions, parsed.api_version, parsed.extra)
    return render_project_json(with_proxy_links(merged, root, SubsetCache(), NO_VARIANTS, {}))


_FILENAMES = st.sampled_from(
    [
        "holy_grail-1.0.tar.gz",
        "holy_grail-1.0-py3-none-any.whl",
        "holy_grail-1.0-cp312-cp312-linux_x86_64.whl",
        "holy grail-2.0.zip",
        "h\u00e9-1.0.tar.gz",
        "holy_grail-1.0-cp312-cp312-linux_x86_64-x86v3.whl",
        "holy_grail-1.0-variants.json",
    ]
)
_OPTIONAL = {
    "requires-python": st.sampled_from([None, "", ">=3.8", "<4\x7f", 0]),
    "yanked": st.sampled_from([None, False, True, "", "broken", 0, 1]),
    "core-metadata": st.sampled_from([None, False, True, {}, {"sha256": "cd"}, {"SHA256": "c"}]),
    "dist-info-metadata": st.sampled_from([True, {"sha256": "ef"}]),
    "gpg-sig": st.sampled_from([None, False, True, 0]),
    "size": st.sampled_from([None, 0, 17, True, 2**70]),
    "upload-time": st.sampled_from([None, "", "2024-01-01T00:00:00Z", 0]),
    "provenance": st.sampled_from([None, "", "https://f.example/p", "https://u:p@f.example/p", 0]),
    "x-private": st.sampled_from([1, 1.5, "\u2603"]),
}


# Optional values the renderer writes back as they are.
_RENDERED = {
    "requires-python": st.sampled_from([">=3.8", "<4\x7f", "\u2603"]),
    "yanked": st.sampled_from([True, "broken"]),
    "core-metadata": st.sampled_from([True, {"sha256": "cd"}]),
    "gpg-sig": st.booleans(),
    "size": st.sampled_from([0, 17]),
    "upload-time": st.sampled_from(["", "2024-01-01T00:00:00Z"]),
    "provenance": st.sampled_from(["https://f.example/p"]),
}


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    filename = draw(_FILENAMES)
    entry: dict[str, Any] = {
        "filename": filename,
        "url": draw(st.sampled_from(["../../f/" + filename, "https://f.example/" + filename])),
        "hashes": draw(st.sampled_from([{}, {"sha256": SHA}, {"md5": "aa"}, {"sha256": "short"}])),
    }
    if draw(st.booleans()):  # half of the entries as the renderer writes them
        entry.update(draw(st.fixed_dictionaries({}, optional=_RENDERED)))
    else:
        entry.update(draw(st.fixed_dictionaries({}, optional=_OPTIONAL)))
    if draw(st.integers(0, 9)) == 0:  # now and then, keys out of the renderer's order
        entry = dict(reversed(entry.items()))
    return entry


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {
        "meta": draw(
            st.sampled_from(
                [
                    {"api-version": "1.0"},
                    {"api-version": "1.1"},
                    {"api-version": " 1.3 ", "_last-serial": 7},
                    {"_last-serial": 2.5},
                ]
            )
        ),
        "name": draw(st.sampled_from(["Holy_Grail", "holy-grail"])),
        "files": draw(st.lists(entries(), max_size=6)),
    }
    versions = draw(st.sampled_from([None, [], ["1.0", "1.0", "2.0"], ["1.0"]]))
    if versions is not None:
        document["versions"] = versions
    if draw(st.booleans()):
        document["tracks"] = ["https://other.example/"]
    return document


@settings(max_examples=400)
@given(documents(), st.sampled_from(["../../", "../../../../"]))
def test_the_straight_page_is_the_general_one_or_none(document: dict[str, Any], root: str) -> None:
    body = json.dumps(document).encode()
    straight = served_json_page(body, PAGE_URL, "holy-grail", root)
    if straight is not None:
        assert straight == general_path(body, "holy-grail", root)
    event("made straight" if straight is not None else "left to the general path")


def test_a_plain_big_page_is_made_straight() -> None:
    files = [
        {
            "filename": f"holy_grail-1.{n}.tar.gz",
            "url": f"../../f/holy_grail-1.{n}.tar.gz",
            "hashes": {"sha256": SHA} if n % 2 else {},
            "requires-python": ">=3.8",
            "size": n,
            "upload-time": "2024-01-01T00:00:00Z",
        }
        for n in range(500)
    ]
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "Holy_Grail", "files": files})
    straight = served_json_page(body.encode(), PAGE_URL, "holy-grail", "../../")
    assert straight is not None
    assert straight == general_path(body.encode(), "holy-grail", "../../")


@pytest.mark.parametrize(
    ("digest", "name"),
    [
        (SHA, "holy_grail-1.{n}.tar.gz"),  # every file linked by its sha256 at once
        (SHA.upper(), "holy_grail-1.{n}.tar.gz"),
        (SHA[:-1] + "g", "holy_grail-1.{n}.tar.gz"),  # not hex: one file at a time
        (SHA + ",", "holy_grail-1.{n}.tar.gz"),
        (SHA, "holy grail-1.{n}.tar.gz"),  # a name `quote` changes
        (SHA, "holy_grail-1.{n}\u00e9.tar.gz"),
    ],
)
def test_pages_whose_every_file_has_a_sha256(digest: str, name: str) -> None:
    files = [
        {"filename": name.format(n=n), "url": f"../../f/{n}", "hashes": {"sha256": digest}}
        for n in range(50)
    ]
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": files}).encode()
    straight = served_json_page(body, PAGE_URL, "holy-grail", "../../")
    assert straight is not None
    assert straight == general_path(body, "holy-grail", "../../")


def test_pages_it_cannot_make_are_left_to_the_general_path() -> None:
    variant = {"filename": "holy_grail-1.0-cp312-cp312-linux_x86_64-x86v3.whl", "url": "u"}
    for body in (
        b"not json",
        b"[]",
        b'{"files": {}}',
        b'{"meta": {"api-version": "2.0"}, "files": []}',
        json.dumps({"files": [dict(variant, hashes={})]}).encode(),
        json.dumps({"files": [{"url": "u", "filename": "a.tar.gz", "x-private": 1}]}).encode(),
    ):
        assert served_json_page(body, PAGE_URL, "holy-grail", "../../") is None


@pytest.mark.parametrize(
    "requires_python",
    [
        "<4\x7f",  # `json` escapes DEL, orjson does not
        "\u2603",  # `json` escapes non-ASCII
    ],
)
def test_values_the_two_encoders_write_differently(requires_python: str) -> None:
    entry = {
        "filename": "a-1.0.tar.gz",
        "url": "a",
        "hashes": {},
        "requires-python": requires_python,
    }
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": [entry]}).encode()
    straight = served_json_page(body, PAGE_URL, "holy-grail", "../../")
    assert straight is not None
    assert straight == general_path(body, "holy-grail", "../../")


@pytest.mark.parametrize("serial", [1e16, 2**64, -(2**63) - 1])
def test_page_level_numbers_orjson_may_change_go_to_the_general_path(serial: Any) -> None:
    """orjson reads an integer over 64 bits as a float; the general path reads it exactly."""
    entry = {"filename": "a-1.0.tar.gz", "url": "a", "hashes": {}}
    body = json.dumps({"meta": {"api-version": "1.1", "_serial": serial}, "files": [entry]})
    assert served_json_page(body.encode(), PAGE_URL, "holy-grail", "../../") is None
    served = json.loads(general_path(body.encode(), "holy-grail", "../../"))
    assert served["meta"]["_serial"] == serial
    assert type(served["meta"]["_serial"]) is type(serial)
