"""PEP 503 HTML simple pages <-> the ProjectPage model, and the HTML project list.

Reads the anchors of a project page with their PEP 503/592/629/658/714/740 attributes
(hash URL fragments, `data-requires-python`, `data-yanked`, `data-core-metadata` and the
legacy `data-dist-info-metadata`, `data-gpg-sig`, `data-provenance`), resolving hrefs against
the page URL and its `<base href>`; renders the same attributes back. HTML has no place for
PEP 700 `size`, `upload-time` and `versions`, nor for unknown JSON keys: those are not rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape, unescape
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urljoin, urlsplit

from proxy.simple.common import (
    hash_name,
    name_from_url,
    parse_api_version,
    preferred_hash,
    rendered_api_version,
)
from proxy.simple.model import CoreMetadata, DistFile, ProjectPage, Yanked
from proxy.simple.names import normalize_name
from proxy.urls.join import LinkResolver

_REPOSITORY_VERSION_META = "pypi:repository-version"
_LINKS_FOR = re.compile(r"^\s*links\s+for\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)

Attributes = dict[str, str | None]


class _ProjectPageReader(HTMLParser):
    """Collects what a project page says: anchors, `<base>`, api-version meta, title, h1."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[Attributes, str]] = []
        self.base_href: str | None = None
        self.api_version: str | None = None
        self.title: str | None = None
        self.heading: str | None = None
        self._anchor: Attributes | None = None
        self._anchor_text: list[str] = []
        self._captured_tag: str | None = None
        self._captured_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._finish_anchor()
            self._anchor = _first_attribute_wins(attrs)
            self._anchor_text = []
        elif tag == "base":
            href = _first_attribute_wins(attrs).get("href")
            if self.base_href is None and href is not None:
                self.base_href = href
        elif tag == "meta":
            meta = _first_attribute_wins(attrs)
            name = meta.get("name")
            if name is not None and name.strip().lower() == _REPOSITORY_VERSION_META:
                self.api_version = meta.get("content") or ""
        elif tag in ("title", "h1") and self._captured_tag is None and not self._seen(tag):
            self._captured_tag = tag
            self._captured_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish_anchor()
        elif tag == self._captured_tag:
            text = "".join(self._captured_text)
            if tag == "title":
                self.title = text
            else:
                self.heading = text
            self._captured_tag = None

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor_text.append(data)
        if self._captured_tag is not None:
            self._captured_text.append(data)

    def _seen(self, tag: str) -> bool:
        return (self.title if tag == "title" else self.heading) is not None

    def close(self) -> None:
        super().close()
        self._finish_anchor()

    def _finish_anchor(self) -> None:
        if self._anchor is not None:
            self.anchors.append((self._anchor, "".join(self._anchor_text)))
            self._anchor = None


def _first_attribute_wins(attrs: list[tuple[str, str | None]]) -> Attributes:
    found: Attributes = {}
    for name, value in attrs:
        found.setdefault(name, value)
    return found


def parse_project_html(text: str, page_url: str) -> ProjectPage:
    """Read a PEP 503 project page; `page_url` is where it was fetched from."""
    reader = _ProjectPageReader()
    reader.feed(text)
    reader.close()
    api_version = "1.0"
    if reader.api_version is not None:
        api_version = reader.api_version.strip()
        parse_api_version(api_version, f"<meta name={_REPOSITORY_VERSION_META!r}> content")
    base = page_url if reader.base_href is None else urljoin(page_url, reader.base_href.strip())
    links = LinkResolver(base)
    files = tuple(
        _dist_file(attrs, anchor_text, links)
        for attrs, anchor_text in reader.anchors
        if attrs.get("href") is not None
    )
    name = _project_name(reader.title, reader.heading, page_url)
    return ProjectPage(name=name, files=files, api_version=api_version)


def _project_name(title: str | None, heading: str | None, page_url: str) -> str:
    for text in (title, heading):
        match = _LINKS_FOR.match(text or "")
        if match is not None:
            return normalize_name(match.group(1))
    return name_from_url(page_url)


def _dist_file(attrs: Attributes, anchor_text: str, links: LinkResolver) -> DistFile:
    url = links.resolve((attrs.get("href") or "").strip())
    url, hashes = _split_hash_fragment(url)
    filename = anchor_text.strip() or unquote(urlsplit(url).path.rpartition("/")[2])
    core_metadata_text = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    has_core_metadata = "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs
    return DistFile(
        filename=filename,
        url=url,
        hashes=hashes,
        requires_python=attrs.get("data-requires-python") or None,
        yanked=_yanked(attrs),
        core_metadata=_core_metadata(core_metadata_text) if has_core_metadata else False,
        gpg_sig=_gpg_sig(attrs.get("data-gpg-sig")),
        provenance=attrs.get("data-provenance") or None,
    )


def _split_hash_fragment(url: str) -> tuple[str, dict[str, str]]:
    """Move a `#<hashname>=<hexdigest>` fragment out of `url`; other fragments stay."""
    without_fragment, hash_mark, fragment = url.partition("#")
    if not hash_mark:
        return url, {}
    name_text, equals, digest = fragment.partition("=")
    name = hash_name(name_text)
    if not equals or name is None or not digest:
        return url, {}
    return without_fragment, {name: digest}


def _yanked(attrs: Attributes) -> Yanked:
    # PEP 592: the attribute's presence means yanked; a non-empty value is the reason.
    if "data-yanked" not in attrs:
        return False
    return attrs["data-yanked"] or True


def _core_metadata(text: str | None) -> CoreMetadata:
    # PEP 658: present means available; the value is `true` or `<hashname>=<hexdigest>`.
    # An unreadable value still says the file exists, so it counts as "available, no hash".
    value = (text or "").strip()
    if value.lower() == "false":
        return False
    name_text, equals, digest = value.partition("=")
    name = hash_name(name_text)
    if equals and name is not None and digest:
        return {name: digest}
    return True


def _gpg_sig(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _attribute(name: str, value: str) -> str:
    return f' {name}="{escape(value)}"'


def _core_metadata_value(core_metadata: CoreMetadata) -> str | None:
    if core_metadata is False:
        return None
    if core_metadata is True:
        return "true"
    chosen = preferred_hash(core_metadata)
    return "true" if chosen is None else f"{chosen[0]}={chosen[1]}"


def _anchor(dist: DistFile) -> str:
    href = dist.url
    chosen = preferred_hash(dist.hashes)
    if chosen is not None:
        href = f"{href.partition('#')[0]}#{chosen[0]}={chosen[1]}"
    parts = [_attribute("href", href)]
    if dist.requires_python is not None:
        parts.append(_attribute("data-requires-python", dist.requires_python))
    if dist.yanked is not False:
        parts.append(_attribute("data-yanked", "" if dist.yanked is True else dist.yanked))
    core_metadata = _core_metadata_value(dist.core_metadata)
    if core_metadata is not None:
        # PEP 714: the new name is required; the old one is allowed in HTML for older clients.
        parts.append(_attribute("data-core-metadata", core_metadata))
        parts.append(_attribute("data-dist-info-metadata", core_metadata))
    if dist.gpg_sig is not None:
        parts.append(_attribute("data-gpg-sig", "true" if dist.gpg_sig else "false"))
    if dist.provenance is not None:
        parts.append(_attribute("data-provenance", dist.provenance))
    return f"    <a{''.join(parts)}>{escape(dist.filename)}</a><br />\n"


def _document(api_version: str, title: str, body: Iterable[str]) -> bytes:
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="{_REPOSITORY_VERSION_META}" content="{escape(api_version)}">\n'
        f"    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
    )
    document = "".join((head, *body, "  </body>\n</html>\n"))
    # A lone surrogate (possible in a parsed JSON page) becomes a character reference.
    return document.encode("utf-8", errors="xmlcharrefreplace")


def render_project_html(page: ProjectPage) -> bytes:
    """The PEP 503 HTML page for `page`, every HTML-expressible attribute included."""
    title = f"Links for {page.name}"
    heading = f"    <h1>{escape(title)}</h1>\n"
    return _document(rendered_api_version(page), title, [heading, *map(_anchor, page.files)])


# The project list can hold hundreds of thousands of anchors: a regular expression reads it
# an order of magnitude faster than HTMLParser. Anchors need an href; their text is the name.
_INDEX_ANCHOR = re.compile(
    r"<a\s(?:[^>]*?\s)?href\s*=[^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_INDEX_VERSION_META = re.compile(
    r"<meta\s[^>]*name\s*=\s*[\"']?pypi:repository-version[\"']?[^>]*>", re.IGNORECASE
)
_CONTENT_ATTRIBUTE = re.compile(r"content\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.I)
# Names valid per PEP 508 need no HTML escaping or URL quoting; most are already normalised.
_NORMALISED_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_VALID_NAME = re.compile(r"[A-Za-z0-9._-]+")


def parse_index_html(text: str) -> list[str]:
    """Project names of a PEP 503 project list, as the anchors' texts give them."""
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    meta = _INDEX_VERSION_META.search(text)
    if meta is not None:
        content = _CONTENT_ATTRIBUTE.search(meta.group(0))
        value = "" if content is None else next(v for v in content.groups() if v is not None)
        parse_api_version(unescape(value), f"<meta name={_REPOSITORY_VERSION_META!r}> content")
    names = []
    for raw in _INDEX_ANCHOR.findall(text):
        if "<" in raw:
            raw = _TAG.sub("", raw)
        if "&" in raw:
            raw = unescape(raw)
        name = raw.strip()
        if name:
            names.append(name)
    return names


def _index_anchor(name: str) -> str:
    if _NORMALISED_NAME.fullmatch(name):
        return f'    <a href="{name}/">{name}</a><br />\n'
    if _VALID_NAME.fullmatch(name):
        return f'    <a href="{normalize_name(name)}/">{name}</a><br />\n'
    href = quote(normalize_name(name), safe="")
    return f'    <a href="{escape(href)}/">{escape(name)}</a><br />\n'


def render_index_html(names: Iterable[str], api_version: str) -> bytes:
    """The PEP 503 project list; hrefs are relative (`{normalised}/`) to the list's URL."""
    return _document(api_version, "Simple index", map(_index_anchor, names))
