"""The simple repository API as pure functions: bytes <-> ProjectPage, and format negotiation.

The one entry point for simple pages: picks the HTML (`simple_html`, PEP 503) or JSON
(`simple_json`, PEP 691) codec from a response's content type, renders a page in the format a
client negotiated, and says what the proxy asks its upstream for.

Content negotiation (`choose_format`) follows PEP 691's recommended server behaviour:
- Each offered format takes the quality of the most specific media range matching it
  (`type/subtype` over `type/*` over `*/*`; `...latest+json` / `...latest+html` count as
  naming v1). Entries are unordered; q=0 refuses a format; malformed entries are skipped.
- The winner has the highest quality; at equal quality the format the client named most
  specifically wins; among formats it named exactly, the most expressive (JSON, then v1
  HTML, `text/html` last); among formats only a wildcard matched, the plainest (`text/html`
  first), as the public index answers: `*/*` gets `text/html`, `text/html, */*` too.
- No (or an empty) Accept header gets `text/html`, as a legacy client expects.
- An Accept header that names no format we serve (`application/json`, `image/png`, or only
  refusals) gets `text/html` too, as the public index answers; never a 406.
- The `?format=` parameter, when given, overrides Accept; it must name one content type
  exactly (no wildcards or q); an unknown one raises `UnknownFormat` (answer 400).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from enum import Enum

from proxy.simple import html_pages as simple_html
from proxy.simple import json_pages as simple_json
from proxy.simple.common import PageFormatError
from proxy.simple.html_pages import parse_index_html, parse_project_html, render_project_html
from proxy.simple.json_pages import parse_index_json, parse_project_json, render_project_json
from proxy.simple.model import ProjectPage
from proxy.simple.names import normalize_name

__all__ = [
    "INDEX_API_VERSION",
    "UPSTREAM_ACCEPT",
    "PageFormat",
    "PageFormatError",
    "UnknownFormat",
    "choose_format",
    "normalize_name",
    "page_format_of",
    "parse_project_index",
    "parse_project_page",
    "render_index",
    "render_index_html",
    "render_index_json",
    "render_project_html",
    "render_project_json",
    "render_project_page",
]

_JSON_V1 = "application/vnd.pypi.simple.v1+json"
_HTML_V1 = "application/vnd.pypi.simple.v1+html"
_JSON_LATEST = "application/vnd.pypi.simple.latest+json"
_HTML_LATEST = "application/vnd.pypi.simple.latest+html"
_TEXT_HTML = "text/html"


class UnknownFormat(ValueError):
    """A `?format=` value that names no format the proxy serves; the message names it."""


class PageFormat(Enum):
    """A serialisation of a simple page; the value is its response content type."""

    JSON = _JSON_V1
    HTML_V1 = _HTML_V1
    HTML_LEGACY = _TEXT_HTML

    @property
    def content_type(self) -> str:
        return self.value

    @property
    def is_json(self) -> bool:
        return self is PageFormat.JSON


# What the proxy asks upstream for: JSON v1 first, then HTML v1, plain text/html as a last
# resort (the Accept header PEP 691 suggests to clients).
UPSTREAM_ACCEPT = f"{_JSON_V1}, {_HTML_V1};q=0.2, {_TEXT_HTML};q=0.01"

# The api-version the proxy's own project lists announce.
INDEX_API_VERSION = "1.1"

_FORMAT_OF_MEDIA_TYPE = {
    _JSON_V1: PageFormat.JSON,
    _JSON_LATEST: PageFormat.JSON,
    _HTML_V1: PageFormat.HTML_V1,
    _HTML_LATEST: PageFormat.HTML_V1,
    _TEXT_HTML: PageFormat.HTML_LEGACY,
}
# Upstream responses may also use the unversioned JSON type (PEP 691 does not define it, but
# static hosts cannot send anything else).
_PARSEABLE_MEDIA_TYPES = {**_FORMAT_OF_MEDIA_TYPE, "application/json": PageFormat.JSON}
_OTHER_MAJOR = re.compile(r"^application/vnd\.pypi\.simple\.v(\d+)\+(?:json|html)$")


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def page_format_of(content_type: str) -> PageFormat:
    """The format of a response with this Content-Type; PageFormatError if not a simple page."""
    media_type = _media_type(content_type)
    page_format = _PARSEABLE_MEDIA_TYPES.get(media_type)
    if page_format is not None:
        return page_format
    other_major = _OTHER_MAJOR.match(media_type)
    if other_major is not None:
        raise PageFormatError(
            f"content type {content_type!r} has unsupported major api-version"
            f" {other_major.group(1)}"
        )
    raise PageFormatError(f"content type {content_type!r} is not a simple-API page")


def _decode_html(body: bytes, content_type: str) -> str:
    charset = "utf-8"
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or charset
    try:
        codec = codecs.lookup(charset)
    except LookupError:
        raise PageFormatError(f"unknown charset {charset!r} in {content_type!r}") from None
    try:
        return body.decode("utf-8-sig" if codec.name == "utf-8" else codec.name)
    except UnicodeDecodeError as error:
        raise PageFormatError(
            f"HTML page is not valid {codec.name} at byte {error.start}"
        ) from None


def parse_project_page(body: bytes, content_type: str, page_url: str) -> ProjectPage:
    """Read a project page (PEP 503 HTML or PEP 691 JSON) fetched from `page_url`."""
    if page_format_of(content_type).is_json:
        return parse_project_json(body, page_url)
    return parse_project_html(_decode_html(body, content_type), page_url)


def parse_project_index(body: bytes, content_type: str) -> list[str]:
    """The project names of a project list (`/simple/`), as the upstream spells them."""
    if page_format_of(content_type).is_json:
        return parse_index_json(body)
    return parse_index_html(_decode_html(body, content_type))


def render_index_html(names: Iterable[str], *, api_version: str = INDEX_API_VERSION) -> bytes:
    """The PEP 503 project list; each href is the normalised name relative to the list."""
    return simple_html.render_index_html(names, api_version)


def render_index_json(names: Iterable[str], *, api_version: str = INDEX_API_VERSION) -> bytes:
    """The PEP 691 project list."""
    return simple_json.render_index_json(names, api_version)


def render_project_page(page: ProjectPage, page_format: PageFormat) -> bytes:
    """`page` in the negotiated format."""
    if page_format.is_json:
        return render_project_json(page)
    return render_project_html(page)


def render_index(names: Iterable[str], page_format: PageFormat) -> bytes:
    """The project list in the negotiated format."""
    if page_format.is_json:
        return render_index_json(names)
    return render_index_html(names)


# --- content negotiation ---------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
# Per format: its media type, the subtypes naming it, and how expressive it is.
_OFFERS = (
    (
        PageFormat.JSON,
        "application",
        frozenset({"vnd.pypi.simple.v1+json", "vnd.pypi.simple.latest+json"}),
        2,
    ),
    (
        PageFormat.HTML_V1,
        "application",
        frozenset({"vnd.pypi.simple.v1+html", "vnd.pypi.simple.latest+html"}),
        1,
    ),
    (PageFormat.HTML_LEGACY, "text", frozenset({"html"}), 0),
)
_EXACT, _TYPE_WILDCARD, _ANY = 2, 1, 0


def _media_ranges(accept: str) -> Iterator[tuple[str, str, float]]:
    """(type, subtype, q) of each well-formed Accept entry; others are skipped."""
    for entry in accept.split(","):
        media_range, *parameters = entry.split(";")
        range_type, slash, subtype = media_range.strip().lower().partition("/")
        if not (slash and _TOKEN.fullmatch(range_type) and _TOKEN.fullmatch(subtype)):
            continue
        if range_type == "*" and subtype != "*":
            continue
        quality: float | None = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else None
                break  # what follows q are accept-extensions, not media type parameters
        if quality is not None:
            yield range_type, subtype, quality


def _match(
    ranges: list[tuple[str, str, float]], offer_type: str, offer_subtypes: frozenset[str]
) -> tuple[float, int] | None:
    """(quality, specificity) the most specific matching range gives an offer."""
    best: tuple[int, float] | None = None
    for range_type, subtype, quality in ranges:
        if range_type == offer_type and subtype in offer_subtypes:
            specificity = _EXACT
        elif range_type == offer_type and subtype == "*":
            specificity = _TYPE_WILDCARD
        elif range_type == "*":
            specificity = _ANY
        else:
            continue
        if best is None or (specificity, quality) > best:
            best = (specificity, quality)
    return None if best is None else (best[1], best[0])


def choose_format(accept: str | None, format_param: str | None) -> PageFormat:
    """The format to answer in (see the module docstring for the rules).

    `format_param` is the `?format=` query value; a `+` decoded to a space by form-style
    query parsing is read back as `+`. Raises `UnknownFormat` for a value naming no format.
    """
    if format_param is not None and format_param.strip():
        wanted = format_param.strip().lower().replace(" ", "+")
        chosen = _FORMAT_OF_MEDIA_TYPE.get(wanted)
        if chosen is None:
            raise UnknownFormat(
                f"unknown ?format= value {format_param.strip()[:200]!r}; use one of "
                + ", ".join(sorted(_FORMAT_OF_MEDIA_TYPE))
            )
        return chosen
    if accept is None or not accept.strip():
        return PageFormat.HTML_LEGACY
    ranges = list(_media_ranges(accept))
    best: tuple[tuple[float, int, int], PageFormat] | None = None
    for page_format, offer_type, offer_subtypes, expressiveness in _OFFERS:
        matched = _match(ranges, offer_type, offer_subtypes)
        if matched is None or matched[0] <= 0:
            continue
        # Named exactly: the most expressive wins a tie; matched by a wildcard: the plainest.
        tie_break = expressiveness if matched[1] == _EXACT else -expressiveness
        rank = (matched[0], matched[1], tie_break)
        if best is None or rank > best[0]:
            best = (rank, page_format)
    return PageFormat.HTML_LEGACY if best is None else best[1]
