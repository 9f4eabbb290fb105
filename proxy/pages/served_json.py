"""A big page's served JSON straight from its upstream's JSON page (pure; run in a worker).

For a project with one upstream JSON page and no file that can be a variant, the page the
proxy serves in JSON is the upstream's document with each file pointed at the proxy. When
every file entry is already written the way the renderer writes one (known keys, in its
order, values it keeps as they are), the served page is that document with only the URLs
changed: no `DistFile` per file and no re-rendering, the bytes of the general path
(`render_project_json` of the page with proxy links) for a fraction of the work. Anything
else (a variant name, an unusual entry, a malformed page) gives None: the general path.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import orjson

from proxy.simple.common import PageFormatError, announced_api_version
from proxy.simple.filenames import may_be_variant_file
from proxy.simple.json_decode import holds_float
from proxy.simple.json_pages import (
    CORE_METADATA_KEYS,
    FILE_KEYS,
    JSON_ENCODER,
    PAGE_KEYS,
    api_version_of,
    plain_hashes,
    split_files,
)
from proxy.upstreams.source import redact
from proxy.urls.join import LinkResolver
from proxy.urls.links import QUOTE_SAFE, SHA256_HEX, url_id


class _NotAsRendered(Exception):
    """The page is not in the renderer's form: the general path makes it."""


@dataclass(frozen=True)
class MadePage:
    """The served JSON, and the upstream page split for reading in steps
    (`proxy.simple.json_pages.split_files`)."""

    served: bytes
    head: bytes
    pieces: list[bytes]


def served_json_page(body: bytes, page_url: str, project: str, root: str) -> bytes | None:
    """The served JSON page of `project` (its one upstream page `body`, from `page_url`) with
    files at `root` + `files/...`, or None when the general path must make it."""
    made = made_page(body, page_url, project, root)
    return None if made is None else made.served


def made_page(body: bytes, page_url: str, project: str, root: str) -> MadePage | None:
    """`served_json_page`, with the upstream page split for reading."""
    document = decoded_page(body)
    return None if document is None else made_from(document, page_url, project, root)


def made_from(document: dict[str, Any], page_url: str, project: str, root: str) -> MadePage | None:
    """`made_page` of the decoded page (`decoded_page`; its file URLs are changed)."""
    try:
        return _made(document, page_url, project, root)
    except (PageFormatError, _NotAsRendered):
        return None


def decoded_page(body: bytes) -> dict[str, Any] | None:
    """The page's document, if orjson reads it as an object with a list of files."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or type(document.get("files")) is not list:
        return None
    return document


def _made(document: dict[str, Any], page_url: str, project: str, root: str) -> MadePage:
    api_version, other_meta = api_version_of(document)
    name = document.get("name")
    if name is not None and type(name) is not str:
        raise _NotAsRendered
    entries = _first_of_each_name([_rendered_entry(entry) for entry in document["files"]])
    versions = _versions(document.get("versions"))
    extra = {key: value for key, value in document.items() if key not in PAGE_KEYS}
    if holds_float(other_meta) or holds_float(extra):
        # orjson may have read an integer over 64 bits as one: the general path reads exactly
        raise _NotAsRendered
    # Split before the URLs change (entries written as rendered are the page's own): the
    # merged page holds the upstream's.
    head, pieces = split_files(document)
    _point_at_proxy(entries, page_url, f"{root}files/{project}/")
    meta = _meta(api_version, other_meta, has_versions=versions is not None, entries=entries)
    served: dict[str, Any] = {"meta": meta, "name": project, "files": entries}
    if versions is not None:
        served["versions"] = versions
    served.update((key, value) for key, value in extra.items() if key not in served)
    return MadePage(_encode(served), head, pieces)


def _meta(
    api_version: str, other_meta: dict[str, Any], *, has_versions: bool, entries: list[Any]
) -> dict[str, Any]:
    """The served `meta`: the api-version announced for what the page holds, then the rest."""
    has_pep700_data = has_versions or any(
        "size" in entry or "upload-time" in entry for entry in entries
    )
    meta = {"api-version": announced_api_version(api_version, has_pep700_data)}
    meta.update((key, value) for key, value in other_meta.items() if key not in meta)
    return meta


def _versions(value: Any) -> list[str] | None:
    if value is None:
        return None
    if type(value) is not list or not all(type(version) is str for version in value):
        raise _NotAsRendered
    return list(dict.fromkeys(value))  # merging keeps each version once


def _point_at_proxy(entries: list[dict[str, Any]], page_url: str, prefix: str) -> None:
    """Each entry's URL pointed at the proxy (`prefix` + file id + name)."""
    if not _relinked_by_sha256(entries, prefix):
        links = LinkResolver(page_url)
        for rendered in entries:
            rendered["url"] = _proxy_url(rendered, links, prefix)


def _first_of_each_name(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(map(itemgetter("filename"), entries))
    if len(set(names)) == len(names):
        return entries
    firsts = {name: index for index, name in reversed(list(enumerate(names)))}
    return [entries[index] for index in sorted(firsts.values())]


def _relinked_by_sha256(entries: list[dict[str, Any]], prefix: str) -> bool:
    """Point every entry at its proxy URL when all of them have a sha256 and a name `quote`
    leaves alone (a big page's usual case: each test made once over the whole page, in C,
    not once a file); False, with nothing changed, otherwise."""
    names = [entry["filename"] for entry in entries]
    if "/".join(names).encode().translate(None, _QUOTE_SAFE_BYTES):
        return False  # a name holds a byte `quote` changes ("/" is one it leaves alone)
    joined = ",".join([entry["hashes"].get("sha256", "") for entry in entries])
    if not joined.isascii():
        return False  # ASCII: lower() keeps the digests and the commas where they are
    digests = joined.lower().split(",")
    if len(digests) != len(names) or set(map(len, digests)) != {64}:
        return False
    if joined.encode().lower().translate(None, _HEX_BYTES):
        return False  # a digest holds a character that is not a hex digit
    for entry, digest, name in zip(entries, digests, names, strict=True):
        entry["url"] = f"{prefix}sha256-{digest}/{name}"
    return True


def _proxy_url(rendered: dict[str, Any], links: LinkResolver, prefix: str) -> str:
    sha256 = rendered["hashes"].get("sha256", "").lower()
    if SHA256_HEX.fullmatch(sha256):
        ident = f"sha256-{sha256}"
    else:
        ident = url_id(links.resolve(rendered["url"]))
    filename = rendered["filename"]
    shown = filename if QUOTE_SAFE.fullmatch(filename) else quote(filename)
    return f"{prefix}{ident}/{shown}"


def _rendered_entry(entry: Any) -> dict[str, Any]:
    """A file entry as the renderer writes it (keys in its order, values it drops left out),
    when the general path reads it without a change; else _NotAsRendered."""
    if type(entry) is dict and _written_as_rendered(entry):
        return entry  # the page's own (its URL changes once the page is split)
    if type(entry) is not dict or not FILE_KEYS.issuperset(entry):
        raise _NotAsRendered
    filename = entry.get("filename")
    hashes = entry.get("hashes", {})
    if type(filename) is not str or type(entry.get("url")) is not str or not plain_hashes(hashes):
        raise _NotAsRendered
    if may_be_variant_file(filename):
        raise _NotAsRendered  # may be a variant file: the variant machinery decides
    rendered = {"filename": filename, "url": entry["url"], "hashes": hashes}
    _add_pep592_and_metadata(entry, rendered)
    _add_pep700_and_provenance(entry, rendered)
    return rendered


def _written_as_rendered(entry: dict[str, Any]) -> bool:
    """Whether the renderer writes `entry` back exactly (its keys in the renderer's order,
    each value one it keeps as it is): most entries of a big page, checked in a fraction of
    the time that rebuilding them takes."""
    if not _in_rendered_order(tuple(entry)):
        return False
    for key, value in entry.items():
        if not _KEPT_AS_IS[key](value):
            return False
    return not may_be_variant_file(entry["filename"])


def _in_rendered_order(keys: tuple[str, ...]) -> bool:
    known = _KEY_ORDERS.get(keys)
    if known is None:
        positions = [_RENDERED_ORDER.get(key, -1) for key in keys]
        known = keys[:3] == ("filename", "url", "hashes") and positions == sorted(set(positions))
        if len(_KEY_ORDERS) < MAX_KEY_ORDERS:
            _KEY_ORDERS[keys] = known
    return known


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_text(value: Any) -> bool:
    return type(value) is str and value != ""


def _is_kept_yanked(value: Any) -> bool:
    return value is True or _is_text(value)


def _is_kept_core_metadata(value: Any) -> bool:
    return value is True or (plain_hashes(value) and value != {})


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 0


# File keys the renderer writes values of back as they are, in its order, and which values.
_KEPT_AS_IS: dict[str, Callable[[Any], bool]] = {
    "filename": _is_str,
    "url": _is_str,
    "hashes": plain_hashes,
    "requires-python": _is_text,
    "yanked": _is_kept_yanked,
    "core-metadata": _is_kept_core_metadata,
    "gpg-sig": _is_bool,
    "size": _is_size,
    "upload-time": _is_str,
}
_RENDERED_ORDER = {key: position for position, key in enumerate(_KEPT_AS_IS)}
# Key orders seen (an entry's keys as a tuple: written in the renderer's order or not); a
# page's entries share a few, and the memo stays small whatever a page holds.
_KEY_ORDERS: dict[tuple[str, ...], bool] = {}
MAX_KEY_ORDERS = 64
_HEX_BYTES = b"0123456789abcdef,"  # and the commas between digests
_QUOTE_SAFE_BYTES = string.ascii_letters.encode() + b"0123456789_.~/-"  # QUOTE_SAFE


def _add_pep592_and_metadata(entry: dict[str, Any], rendered: dict[str, Any]) -> None:
    """`requires-python`, `yanked`, `core-metadata` and `gpg-sig` as the renderer writes them
    (in its order; what the general path reads as nothing left out)."""
    requires_python = entry.get("requires-python")
    if requires_python is not None:
        if type(requires_python) is not str:
            raise _NotAsRendered
        if requires_python:
            rendered["requires-python"] = requires_python
    yanked = _yanked(entry.get("yanked"))
    if yanked is not None:
        rendered["yanked"] = yanked
    core_metadata = _core_metadata(entry)
    if core_metadata is not None:
        rendered["core-metadata"] = core_metadata
    _copy_given(entry, rendered, "gpg-sig", bool)


def _add_pep700_and_provenance(entry: dict[str, Any], rendered: dict[str, Any]) -> None:
    """`size`, `upload-time` and `provenance` (less any credentials) as rendered."""
    size = entry.get("size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise _NotAsRendered
        rendered["size"] = size
    _copy_given(entry, rendered, "upload-time", str)
    provenance = entry.get("provenance")
    if provenance is not None:
        if type(provenance) is not str:
            raise _NotAsRendered
        rendered["provenance"] = redact(provenance) if provenance else provenance


def _copy_given(entry: dict[str, Any], rendered: dict[str, Any], key: str, kind: type) -> None:
    """The entry's value of `key` unless it is null (left out), when of exactly `kind`."""
    value = entry.get(key)
    if value is not None:
        if type(value) is not kind:
            raise _NotAsRendered
        rendered[key] = value


def _yanked(value: Any) -> Any:
    """PEP 592 as rendered: not yanked is left out (None)."""
    if value is None or value is False or value == "":
        return None
    if value is not True and type(value) is not str:
        raise _NotAsRendered
    return value


def _core_metadata(entry: dict[str, Any]) -> Any:
    """The first metadata key's value as rendered (`core-metadata`); absent: None."""
    for key in CORE_METADATA_KEYS:
        if key in entry:
            value = entry[key]
            if value is None or value is False or value == {}:
                return None
            if value is True or plain_hashes(value):
                return value
            raise _NotAsRendered
    return None


def _encode(served: dict[str, Any]) -> bytes:
    """The bytes the renderer's encoder writes: orjson's when they are the same (ASCII,
    no DEL, which `json` escapes; the served page holds no float)."""
    try:
        encoded = orjson.dumps(served)
    except TypeError:  # an integer over 64 bits
        encoded = b""
    if encoded and encoded.isascii() and b"\x7f" not in encoded:
        return encoded
    return JSON_ENCODER.encode(served).encode("ascii")
