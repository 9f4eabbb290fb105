"""The simple-API facade: content types, HTML <-> JSON round trips, PEP 691 negotiation."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from proxy.simple.api import (
    UPSTREAM_ACCEPT,
    PageFormat,
    PageFormatError,
    UnknownFormat,
    choose_format,
    normalize_name,
    page_format_of,
    parse_project_index,
    parse_project_page,
    render_index,
    render_project_html,
    render_project_json,
    render_project_page,
)
from proxy.simple.model import DistFile, ProjectPage

PAGE_URL = "https://index.example/simple/holygrail/"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
SHA = "ef" * 32

AWKWARD_HTML = f"""<!DOCTYPE html>
<HTML><HEAD><TITLE>Links for HolyGrail</TITLE><BASE HREF="/files/"></HEAD><BODY>
<A HREF='holygrail-1.0.tar.gz?x=1&amp;y=2#sha256={SHA}' DATA-REQUIRES-PYTHON='&gt;=3.8'
   data-yanked>holygrail-1.0.tar.gz</A><BR>
<a href="holygrail-1.0-py3-none-any.whl#md5=0123" data-dist-info-metadata="true"
   data-yanked="Had a &lt;vulnerability&gt;" data-gpg-sig="true"
   data-provenance="https://index.example/integrity/holygrail/1.0/w/provenance"
   >holygrail-1.0-py3-none-any.whl</a>
<a href="holygrail-2.0.tar.gz">holygrail-2.0.tar.gz</a>
<a name="no-href">not a file</a>
</BODY></HTML>
"""


# --- names and content types -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("HolyGrail", "holygrail"),
        ("Silly_Walk", "silly-walk"),
        ("zope.interface", "zope-interface"),
        ("a-_.-b", "a-b"),
        ("A__B..C--D", "a-b-c-d"),
    ],
)
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1))
def test_normalize_name_agrees_with_packaging(name: str) -> None:
    assert normalize_name(name) == canonicalize_name(name)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (JSON_V1, PageFormat.JSON),
        ("Application/Vnd.PyPI.Simple.V1+JSON; charset=utf-8", PageFormat.JSON),
        ("application/vnd.pypi.simple.latest+json", PageFormat.JSON),
        ("application/json", PageFormat.JSON),
        (HTML_V1, PageFormat.HTML_V1),
        ("text/html; charset=UTF-8", PageFormat.HTML_LEGACY),
    ],
)
def test_page_format_of_content_types(content_type: str, expected: PageFormat) -> None:
    assert page_format_of(content_type) is expected


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/vnd.pypi.simple.v2+json", "unsupported major api-version 2"),
        ("application/vnd.pypi.simple.v0+html", "unsupported major api-version 0"),
        ("application/octet-stream", "not a simple-API page"),
        ("", "not a simple-API page"),
    ],
)
def test_unsupported_content_types_are_refused(content_type: str, message: str) -> None:
    with pytest.raises(PageFormatError, match=message):
        parse_project_page(b"{}", content_type, PAGE_URL)


def test_page_format_content_types() -> None:
    assert PageFormat.JSON.content_type == JSON_V1
    assert PageFormat.HTML_V1.content_type == HTML_V1
    assert PageFormat.HTML_LEGACY.content_type == "text/html"


def test_html_is_decoded_with_the_declared_charset() -> None:
    body = '<a href="x.whl" data-yanked="caf\u00e9">x.whl</a>'.encode("latin-1")
    page = parse_project_page(body, "text/html; charset=ISO-8859-1", PAGE_URL)
    assert page.files[0].yanked == "caf\u00e9"
    with pytest.raises(PageFormatError, match="not valid utf-8 at byte"):
        parse_project_page(body, "text/html", PAGE_URL)
    with pytest.raises(PageFormatError, match="unknown charset 'klingon'"):
        parse_project_page(body, "text/html; charset=klingon", PAGE_URL)


def test_utf8_byte_order_mark_is_ignored() -> None:
    body = "\ufeff<title>Links for x</title>".encode()
    assert parse_project_page(body, "text/html", PAGE_URL).name == "x"


def test_api_version_2_json_page_is_refused_even_as_plain_json() -> None:
    body = b'{"meta": {"api-version": "2.0"}, "name": "x", "files": []}'
    with pytest.raises(PageFormatError, match="unsupported major api-version 2"):
        parse_project_page(body, "application/json", PAGE_URL)


def test_index_dispatch_by_content_type() -> None:
    json_body = b'{"meta": {"api-version": "1.0"}, "projects": [{"name": "A"}]}'
    assert parse_project_index(json_body, JSON_V1) == ["A"]
    assert parse_project_index(b'<a href="a/">A</a>', "text/html") == ["A"]
    assert parse_project_index(render_index(["A", "b_c"], PageFormat.JSON), JSON_V1) == ["A", "b_c"]
    assert parse_project_index(render_index(["A", "b_c"], PageFormat.HTML_V1), HTML_V1) == [
        "A",
        "b_c",
    ]


def test_render_project_page_dispatches_on_format() -> None:
    page = ProjectPage(name="x", files=(DistFile("x.whl", "https://f.example/x.whl"),))
    assert render_project_page(page, PageFormat.JSON) == render_project_json(page)
    assert render_project_page(page, PageFormat.HTML_V1) == render_project_html(page)
    assert render_project_page(page, PageFormat.HTML_LEGACY) == render_project_html(page)


# --- round trips -------------------------------------------------------------------------


def test_awkward_html_to_json_and_back_gives_the_same_model() -> None:
    from_html = parse_project_page(AWKWARD_HTML.encode(), "text/html", PAGE_URL)
    assert [d.filename for d in from_html.files] == [
        "holygrail-1.0.tar.gz",
        "holygrail-1.0-py3-none-any.whl",
        "holygrail-2.0.tar.gz",
    ]
    assert from_html.files[0].url == "https://index.example/files/holygrail-1.0.tar.gz?x=1&y=2"
    assert from_html.files[1].yanked == "Had a <vulnerability>"
    from_json = parse_project_page(
        render_project_json(from_html), JSON_V1, "https://other.example/"
    )
    assert from_json == from_html
    again = parse_project_page(
        render_project_html(from_json), "text/html", "https://other.example/"
    )
    assert again == from_html


def test_json_to_html_and_back_gives_the_same_model() -> None:
    body = (
        b'{"meta": {"api-version": "1.0"}, "name": "holygrail", "files": ['
        b'{"filename": "holygrail-1.0.tar.gz", "url": "../../files/holygrail-1.0.tar.gz",'
        b' "hashes": {"sha256": "' + SHA.encode() + b'"}, "requires-python": ">=3.7,<4",'
        b' "yanked": "Had a vulnerability", "core-metadata": {"sha256": "00"},'
        b' "gpg-sig": false, "provenance": "https://index.example/prov?a=1&b=2"},'
        b'{"filename": "holygrail-1.0-py3-none-any.whl", "url": "/f/w.whl", "hashes": {},'
        b' "yanked": true, "dist-info-metadata": true}]}'
    )
    from_json = parse_project_page(body, JSON_V1, PAGE_URL)
    assert from_json.files[0].url == "https://index.example/files/holygrail-1.0.tar.gz"
    from_html = parse_project_page(render_project_html(from_json), "text/html", PAGE_URL)
    assert from_html == from_json
    assert parse_project_page(render_project_json(from_html), JSON_V1, PAGE_URL) == from_json


# Text an HTML attribute or anchor can carry: no control characters or surrogates.
attribute_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
hex_digest = st.text("0123456789abcdef", min_size=2, max_size=64)
hashes = st.one_of(
    st.just({}),
    st.builds(lambda d: {"sha256": d}, hex_digest),
    st.builds(lambda d: {"md5": d}, hex_digest),
)
urls = st.builds(
    lambda path, query: f"https://files.example/p/{quote(path)}{query}",
    attribute_text,
    st.sampled_from(["", "?a=1&b=2", "?x=%3Cy%3E"]),
)
html_dist_files = st.builds(
    DistFile,
    filename=attribute_text.map(str.strip).filter(bool),
    url=urls,
    hashes=hashes,
    requires_python=st.none() | attribute_text,
    yanked=st.booleans() | attribute_text,
    core_metadata=st.booleans() | st.builds(lambda d: {"sha256": d}, hex_digest),
    gpg_sig=st.none() | st.booleans(),
    provenance=st.none() | attribute_text,
)
project_names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True)
html_pages = st.builds(
    ProjectPage,
    name=project_names,
    files=st.lists(html_dist_files, max_size=5).map(tuple),
    api_version=st.sampled_from(["1.0", "1.1", "1.3"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
unknown_keys = st.text(min_size=1, max_size=8).map(lambda k: "x-" + k)
json_dist_files = st.builds(
    replace,
    html_dist_files,
    hashes=st.dictionaries(st.sampled_from(["sha256", "md5", "blake2b"]), hex_digest),
    size=st.none() | st.integers(min_value=0, max_value=2**40),
    upload_time=st.none() | st.just("2024-05-06T07:08:09.123456Z"),
    extra=st.dictionaries(unknown_keys, json_values, max_size=2),
)
json_pages = st.builds(
    ProjectPage,
    name=project_names,
    files=st.lists(json_dist_files, max_size=5).map(tuple),
    versions=st.none() | st.lists(st.text(max_size=6), max_size=4).map(tuple),
    api_version=st.sampled_from(["1.1", "1.3"]),
    extra=st.dictionaries(unknown_keys, json_values, max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(html_pages)
def test_any_html_expressible_page_survives_html_and_json(page: ProjectPage) -> None:
    from_html = parse_project_page(render_project_html(page), "text/html", PAGE_URL)
    assert from_html == page
    from_json = parse_project_page(render_project_json(page), JSON_V1, PAGE_URL)
    assert from_json == page


@settings(max_examples=150, deadline=None)
@given(json_pages)
def test_any_page_survives_json(page: ProjectPage) -> None:
    assert parse_project_page(render_project_json(page), JSON_V1, PAGE_URL) == page


@pytest.mark.parametrize("number", [2**64, 2**64 + 1, -(2**63) - 1, 10**30])
def test_integers_over_64_bits_are_read_exactly(number: int) -> None:
    """orjson reads them as floats: such a page is read again with `json`."""
    entry = {"filename": "a-1.0.tar.gz", "url": "a", "x-serial": number}
    body = json.dumps({"files": [entry], "x-page": [number], "meta": {"_n": number}}).encode()
    page = parse_project_page(body, JSON_V1, PAGE_URL)
    assert page.files[0].extra == {"x-serial": number}
    assert page.extra == {"x-page": [number], "meta": {"_n": number}}


# --- content negotiation -----------------------------------------------------------------

JSON, HTML, LEGACY = PageFormat.JSON, PageFormat.HTML_V1, PageFormat.HTML_LEGACY
PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # No header, or an empty one: the legacy format.
        (None, LEGACY),
        ("", LEGACY),
        ("   ", LEGACY),
        # Exact types, including the `latest` meta version and odd case or spacing.
        ("text/html", LEGACY),
        (HTML_V1, HTML),
        (JSON_V1, JSON),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.latest+html", HTML),
        ("TEXT/HTML", LEGACY),
        (f"  {JSON_V1} ; Q=0.2 ,  text/html;q=0.3 ", LEGACY),
        # Real clients.
        (PIP_ACCEPT, JSON),
        (UPSTREAM_ACCEPT, JSON),
        (BROWSER_ACCEPT, LEGACY),
        # Wildcards: the plainest format they match, as the public index answers.
        ("*/*", LEGACY),
        ("application/*", HTML),
        ("text/*", LEGACY),
        # The most specific matching range gives a format its quality.
        ("*/*;q=0.5, application/*;q=0.4", LEGACY),
        # Equal quality: named explicitly beats a wildcard, then the most expressive.
        ("text/html, */*", LEGACY),
        (f"{HTML_V1}, */*", HTML),
        (f"text/html, {JSON_V1}", JSON),
        (f"{JSON_V1}, text/html", JSON),
        (f"text/html, {HTML_V1}", HTML),
        # Quality values decide first; order in the header means nothing.
        (f"text/html;q=1, {JSON_V1};q=0.5", LEGACY),
        (f"{JSON_V1};q=0.5, text/html", LEGACY),
        (f"{JSON_V1};q=0.001", JSON),
        (f"{JSON_V1};q=0.3, application/*;q=0.9", HTML),
        (f"{JSON_V1};q=0.1, application/vnd.pypi.simple.latest+json;q=0.9, text/html;q=0.5", JSON),
        # q=0 refuses, and the most specific range decides.
        (f"*/*, {JSON_V1};q=0", LEGACY),
        (f"*/*, {JSON_V1};q=0, {HTML_V1};q=0.000", LEGACY),
        ("text/html;q=0, */*", HTML),
        # Refusing everything, or naming nothing we serve: HTML, as the public index does.
        ("*/*;q=0", LEGACY),
        ("text/html;q=0", LEGACY),
        ("application/json", LEGACY),
        ("image/png, text/plain", LEGACY),
        ("application/vnd.pypi.simple.v2+json", LEGACY),
        # Media type parameters and accept-extensions are ignored.
        ("text/html;level=1", LEGACY),
        ("text/html;q=0.5;foo=bar", LEGACY),
        # Garbage entries are skipped; a header of nothing but garbage gets HTML.
        ("garbage", LEGACY),
        (",,,", LEGACY),
        (";q=1", LEGACY),
        ("*/html", LEGACY),
        ("text/html;q=abc", LEGACY),
        ("text/html;q=1.5", LEGACY),
        ("text/html;q=0.0001", LEGACY),
        ("text/html;q=-1", LEGACY),
        ("te xt/html", LEGACY),
        (f"garbage;;, {HTML_V1};q=0.4, text/html;q=0.5, /", LEGACY),
    ],
)
def test_content_negotiation(accept: str | None, expected: PageFormat) -> None:
    assert choose_format(accept, None) is expected


@pytest.mark.parametrize(
    ("accept", "format_param", "expected"),
    [
        ("text/html", JSON_V1, JSON),
        (JSON_V1, "text/html", LEGACY),
        (None, HTML_V1, HTML),
        (None, "application/vnd.pypi.simple.latest+json", JSON),
        ("text/html", " Application/Vnd.PyPI.Simple.V1+JSON ", JSON),
        # A `+` that form-style query decoding turned into a space.
        ("text/html", "application/vnd.pypi.simple.v1 json", JSON),
        # An empty parameter is as good as none.
        (JSON_V1, "", JSON),
        (None, "  ", LEGACY),
    ],
)
def test_format_parameter_overrides_accept(
    accept: str | None, format_param: str, expected: PageFormat
) -> None:
    assert choose_format(accept, format_param) is expected


@pytest.mark.parametrize("format_param", ["application/json", "*/*", f"{JSON_V1};q=1", "bogus"])
def test_unknown_format_parameter_is_an_error_naming_it(format_param: str) -> None:
    # Unknown or wildcard formats are refused, whatever Accept says.
    with pytest.raises(UnknownFormat, match=r"unknown \?format= value") as raised:
        choose_format(JSON_V1, format_param)
    assert repr(format_param) in str(raised.value)


def test_upstream_accept_asks_json_then_html_then_text_html() -> None:
    entries = [entry.strip() for entry in UPSTREAM_ACCEPT.split(",")]
    assert entries == [JSON_V1, f"{HTML_V1};q=0.2", "text/html;q=0.01"]
    assert choose_format(UPSTREAM_ACCEPT, None) is JSON
    without_json = UPSTREAM_ACCEPT.replace(JSON_V1, "application/x-none")
    assert choose_format(without_json, None) is HTML
