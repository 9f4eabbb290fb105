"""PEP 503 HTML project pages and project lists: reading awkward real-world pages, rendering."""

from __future__ import annotations

import pytest

from proxy.simple.api import PageFormatError
from proxy.simple.html_pages import (
    parse_index_html,
    parse_project_html,
    render_index_html,
    render_project_html,
)
from proxy.simple.model import DistFile, ProjectPage

PAGE_URL = "https://index.example/simple/holygrail/"
SHA = "ab" * 32


def files_of(html: str, page_url: str = PAGE_URL) -> tuple[DistFile, ...]:
    return parse_project_html(html, page_url).files


# --- reading -----------------------------------------------------------------------------


def test_relative_hrefs_resolve_against_the_page_url() -> None:
    (dist,) = files_of('<a href="../../files/holygrail-1.0.tar.gz">holygrail-1.0.tar.gz</a>')
    assert dist.url == "https://index.example/files/holygrail-1.0.tar.gz"


def test_base_href_applies_to_every_anchor_even_those_before_it() -> None:
    html = (
        '<a href="early-1.0.tar.gz">early-1.0.tar.gz</a>'
        '<base href="/mirror/files/"><base href="/ignored/">'
        '<a href="late-1.0.tar.gz">late-1.0.tar.gz</a>'
    )
    urls = [d.url for d in files_of(html)]
    assert urls == [
        "https://index.example/mirror/files/early-1.0.tar.gz",
        "https://index.example/mirror/files/late-1.0.tar.gz",
    ]


def test_absolute_base_href_on_another_host() -> None:
    html = '<base href="https://files.example/p/"><a href="x-1.0.tar.gz">x-1.0.tar.gz</a>'
    assert files_of(html)[0].url == "https://files.example/p/x-1.0.tar.gz"


def test_entities_in_query_strings_are_decoded() -> None:
    html = '<a href="/f/x-1.0.tar.gz?a=1&amp;b=2#sha256=' + SHA + '">x-1.0.tar.gz</a>'
    (dist,) = files_of(html)
    assert dist.url == "https://index.example/f/x-1.0.tar.gz?a=1&b=2"
    assert dist.hashes == {"sha256": SHA}


def test_requires_python_entities_are_decoded() -> None:
    html = '<a href="x.whl" data-requires-python="&gt;=3.8,&lt;4,!=3.9.*">x.whl</a>'
    assert files_of(html)[0].requires_python == ">=3.8,<4,!=3.9.*"


def test_empty_requires_python_means_no_constraint() -> None:
    assert files_of('<a href="x.whl" data-requires-python="">x.whl</a>')[0].requires_python is None


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha512", "blake2b", "SHA384"])
def test_hash_fragment_of_any_hashlib_name_becomes_a_hash(algorithm: str) -> None:
    (dist,) = files_of(f'<a href="/f/x.whl#{algorithm}=00ff">x.whl</a>')
    assert dist.hashes == {algorithm.lower(): "00ff"}
    assert dist.url == "https://index.example/f/x.whl"


@pytest.mark.parametrize(
    "fragment", ["egg=x", "notahash=00ff", "sha256=", "sha256", "shake_128=00"]
)
def test_other_fragments_stay_in_the_url(fragment: str) -> None:
    (dist,) = files_of(f'<a href="/f/x.whl#{fragment}">x.whl</a>')
    assert dist.hashes == {}
    assert dist.url == f"https://index.example/f/x.whl#{fragment}"


def test_no_hashes_no_attributes_gives_defaults() -> None:
    (dist,) = files_of('<a href="x-1.0.tar.gz">x-1.0.tar.gz</a>')
    assert dist == DistFile(
        filename="x-1.0.tar.gz", url="https://index.example/simple/holygrail/x-1.0.tar.gz"
    )


def test_uppercase_tags_and_single_quoted_and_unquoted_attributes() -> None:
    html = (
        "<HTML><BODY><A HREF='/f/a-1.0.tar.gz' DATA-REQUIRES-PYTHON='&gt;=3'>a-1.0.tar.gz</A>"
        "<A href=/f/b-1.0.tar.gz data-gpg-sig=TRUE>b-1.0.tar.gz</A></BODY></HTML>"
    )
    a, b = files_of(html)
    assert (a.url, a.requires_python) == ("https://index.example/f/a-1.0.tar.gz", ">=3")
    assert (b.url, b.gpg_sig) == ("https://index.example/f/b-1.0.tar.gz", True)


def test_anchors_without_href_are_not_files() -> None:
    html = '<a name="top">top</a><a href="x.whl">x.whl</a><a id="y">y.whl</a>'
    assert [d.filename for d in files_of(html)] == ["x.whl"]


def test_anchor_text_is_stripped_and_entity_decoded() -> None:
    (dist,) = files_of('<a href="x.whl">\n   weird&amp;name-1.0.tar.gz  \n</a>')
    assert dist.filename == "weird&name-1.0.tar.gz"


def test_empty_anchor_text_falls_back_to_the_url_file_name() -> None:
    (dist,) = files_of('<a href="/f/x%2B1-1.0.tar.gz#sha256=00"></a>')
    assert dist.filename == "x+1-1.0.tar.gz"


def test_unclosed_anchors_end_at_the_next_anchor() -> None:
    html = '<a href="a.whl">a.whl<br><a href="b.whl">b.whl'
    assert [d.filename for d in files_of(html)] == ["a.whl", "b.whl"]


def test_first_of_duplicate_attributes_wins() -> None:
    (dist,) = files_of('<a href="a.whl" href="b.whl">a.whl</a>')
    assert dist.url.endswith("/a.whl")


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("", False),
        ("data-yanked", True),
        ('data-yanked=""', True),
        ('data-yanked="broken &amp; insecure"', "broken & insecure"),
    ],
)
def test_yanked_with_and_without_reason(attribute: str, expected: object) -> None:
    assert files_of(f'<a href="x.whl" {attribute}>x.whl</a>')[0].yanked == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('data-dist-info-metadata="true"', True),
        ("data-dist-info-metadata", True),
        (f'data-dist-info-metadata="sha256={SHA}"', {"sha256": SHA}),
        (f'data-core-metadata="sha256={SHA}"', {"sha256": SHA}),
        ('data-core-metadata="false"', False),
        ('data-core-metadata="gibberish"', True),
        # PEP 714: the new attribute wins when both are present.
        (f'data-core-metadata="sha256={SHA}" data-dist-info-metadata="true"', {"sha256": SHA}),
        ('data-dist-info-metadata="sha256=00" data-core-metadata="true"', True),
    ],
)
def test_core_metadata_attributes(attributes: str, expected: object) -> None:
    assert files_of(f'<a href="x.whl" {attributes}>x.whl</a>')[0].core_metadata == expected


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("maybe", None)])
def test_gpg_sig(value: str, expected: bool | None) -> None:
    assert files_of(f'<a href="x.whl" data-gpg-sig="{value}">x.whl</a>')[0].gpg_sig is expected


def test_pep740_provenance_is_passed_through_untouched() -> None:
    html = '<a href="x.whl" data-provenance="https://index.example/integrity/x/1.0/x.whl/provenance">x.whl</a>'
    dist = files_of(html)[0]
    assert dist.provenance == "https://index.example/integrity/x/1.0/x.whl/provenance"


def test_project_name_from_title_then_h1_then_url_and_always_normalised() -> None:
    title = "<title>Links for Holy_Grail</title><h1>Links for other</h1>"
    assert parse_project_html(title, PAGE_URL).name == "holy-grail"
    heading = "<title>Some index</title><h1>Links for Holy.Grail</h1>"
    assert parse_project_html(heading, PAGE_URL).name == "holy-grail"
    assert parse_project_html("<p>no title</p>", "https://h.example/s/Holy__Grail/").name == (
        "holy-grail"
    )


def test_page_without_a_name_anywhere_is_refused() -> None:
    with pytest.raises(PageFormatError, match="project name"):
        parse_project_html("<p></p>", "https://h.example/")


def test_repository_version_meta_is_read_and_defaults_to_1_0() -> None:
    meta = '<meta name="pypi:repository-version" content="1.3">'
    assert parse_project_html(meta, PAGE_URL).api_version == "1.3"
    assert parse_project_html("", PAGE_URL).api_version == "1.0"


@pytest.mark.parametrize("content", ["2.0", "abc", ""])
def test_unsupported_or_malformed_repository_version_is_refused(content: str) -> None:
    meta = f'<meta name="pypi:repository-version" content="{content}">'
    with pytest.raises(PageFormatError, match="repository-version"):
        parse_project_html(meta, PAGE_URL)


def test_realistic_page_with_everything() -> None:
    html = f"""<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for holygrail</title>
  </head>
  <body>
    <h1>Links for holygrail</h1>
    <a href="https://files.example/packages/holygrail-1.0.tar.gz#sha256={SHA}"
       data-requires-python="&gt;=3.7" data-yanked="Had a vulnerability"
       >holygrail-1.0.tar.gz</a><br />
    <a href="https://files.example/packages/holygrail-1.0-py3-none-any.whl#sha256={SHA}"
       data-requires-python="&gt;=3.7" data-core-metadata="sha256={SHA}"
       data-dist-info-metadata="sha256={SHA}" data-gpg-sig="false"
       data-provenance="https://index.example/integrity/holygrail/1.0/w/provenance"
       >holygrail-1.0-py3-none-any.whl</a><br />
  </body>
</html>
<!--SERIAL 123-->
"""
    page = parse_project_html(html, PAGE_URL)
    assert page == ProjectPage(
        name="holygrail",
        api_version="1.1",
        files=(
            DistFile(
                filename="holygrail-1.0.tar.gz",
                url="https://files.example/packages/holygrail-1.0.tar.gz",
                hashes={"sha256": SHA},
                requires_python=">=3.7",
                yanked="Had a vulnerability",
            ),
            DistFile(
                filename="holygrail-1.0-py3-none-any.whl",
                url="https://files.example/packages/holygrail-1.0-py3-none-any.whl",
                hashes={"sha256": SHA},
                requires_python=">=3.7",
                core_metadata={"sha256": SHA},
                gpg_sig=False,
                provenance="https://index.example/integrity/holygrail/1.0/w/provenance",
            ),
        ),
    )


# --- rendering ---------------------------------------------------------------------------


def test_rendering_escapes_every_attribute_and_the_text() -> None:
    dist = DistFile(
        filename="a<b>&\"c'.whl",
        url='https://files.example/x.whl?a=1&b="2"',
        requires_python=">=3.8,<4",
        yanked='bad "quotes" & <tags>',
        provenance="https://p.example/?a=1&b=2",
    )
    html = render_project_html(ProjectPage(name="x", files=(dist,))).decode()
    assert 'href="https://files.example/x.whl?a=1&amp;b=&quot;2&quot;"' in html
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert 'data-yanked="bad &quot;quotes&quot; &amp; &lt;tags&gt;"' in html
    assert 'data-provenance="https://p.example/?a=1&amp;b=2"' in html
    assert ">a&lt;b&gt;&amp;&quot;c&#x27;.whl</a>" in html
    assert parse_project_html(html, PAGE_URL).files == (dist,)


def test_yanked_without_reason_renders_an_empty_value_that_clients_read_as_yanked() -> None:
    html = render_project_html(
        ProjectPage(name="x", files=(DistFile("x.whl", "https://f.example/x.whl", yanked=True),))
    ).decode()
    assert 'data-yanked=""' in html


def test_core_metadata_renders_under_both_pep714_names() -> None:
    dist = DistFile("x.whl", "https://f.example/x.whl", core_metadata={"md5": "01", "sha256": SHA})
    html = render_project_html(ProjectPage(name="x", files=(dist,))).decode()
    assert f'data-core-metadata="sha256={SHA}" data-dist-info-metadata="sha256={SHA}"' in html
    bare = DistFile("x.whl", "https://f.example/x.whl", core_metadata=True)
    html = render_project_html(ProjectPage(name="x", files=(bare,))).decode()
    assert 'data-core-metadata="true" data-dist-info-metadata="true"' in html


def test_hash_fragment_prefers_sha256_else_the_first_and_replaces_a_fragment() -> None:
    both = DistFile("x.whl", "https://f.example/x.whl#old", hashes={"md5": "01", "sha256": "02"})
    only_md5 = DistFile("y.whl", "https://f.example/y.whl", hashes={"md5": "01", "sha1": "03"})
    html = render_project_html(ProjectPage(name="x", files=(both, only_md5))).decode()
    assert 'href="https://f.example/x.whl#sha256=02"' in html
    assert 'href="https://f.example/y.whl#md5=01"' in html


def test_page_without_hashes_renders_bare_urls() -> None:
    html = render_project_html(
        ProjectPage(name="x", files=(DistFile("x.whl", "https://f.example/x.whl#egg=x"),))
    ).decode()
    assert 'href="https://f.example/x.whl#egg=x"' in html


def test_rendered_page_announces_its_version_name_and_one_anchor_per_file() -> None:
    page = ProjectPage(
        name="holy-grail",
        api_version="1.0",
        files=(
            DistFile("a.whl", "https://f.example/a.whl"),
            DistFile("b.whl", "https://f.example/b.whl"),
        ),
    )
    html = render_project_html(page).decode()
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.0">' in html
    assert "<title>Links for holy-grail</title>" in html
    assert html.count("<a ") == 2


def test_pep700_data_raises_the_announced_version_to_1_1() -> None:
    page = ProjectPage(
        name="x", api_version="1.0", files=(DistFile("a.whl", "https://f.example/a.whl", size=3),)
    )
    assert 'content="1.1"' in render_project_html(page).decode()


# --- project list ------------------------------------------------------------------------


def test_index_names_are_the_anchor_texts_as_given() -> None:
    html = """<!DOCTYPE html><html><body>
    <a href="/simple/frob/">Frob</a>
    <A HREF='/simple/spam-eggs/'>Spam_Eggs</A>
    <a data-x="1" href="/simple/a-b/"> A&amp;B </a>
    <a href="/simple/bold/"><b>bold</b></a>
    <a name="not-a-project">nope</a>
    <!-- <a href="/simple/commented/">commented</a> -->
    <abbr>abbr</abbr>
    </body></html>"""
    assert parse_index_html(html) == ["Frob", "Spam_Eggs", "A&B", "bold"]


def test_index_refuses_unsupported_repository_version() -> None:
    with pytest.raises(PageFormatError, match="unsupported major api-version 2"):
        parse_index_html('<meta name="pypi:repository-version" content="2.0"><a href="x/">x</a>')
    assert parse_index_html("<meta name='pypi:repository-version' content='1.4'>") == []


def test_index_render_links_each_normalised_name_relative_to_the_list() -> None:
    html = render_index_html(["Frob", "spam", "Zope.Interface", "a<b"], "1.1").decode()
    assert '<a href="frob/">Frob</a>' in html
    assert '<a href="spam/">spam</a>' in html
    assert '<a href="zope-interface/">Zope.Interface</a>' in html
    assert '<a href="a%3Cb/">a&lt;b</a>' in html
    assert '<meta name="pypi:repository-version" content="1.1">' in html


def test_index_round_trip_keeps_names_as_given() -> None:
    names = ["Frob", "spam_eggs", "a&b", "Zope.Interface", "x"]
    assert parse_index_html(render_index_html(names, "1.0").decode()) == names


def test_lone_surrogate_from_a_json_page_renders_as_a_character_reference() -> None:
    page = ProjectPage(name="x", files=(DistFile("x\ud800.whl", "https://f.example/x.whl"),))
    html = render_project_html(page).decode()
    assert ">x&#55296;.whl</a>" in html
