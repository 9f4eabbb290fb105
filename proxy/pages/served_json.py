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

import gc
from dataclasses import dataclass
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
    """What the worker sends back: the served JSON, and the upstream page split for reading
    in steps (`proxy.simple.json_pages.split_files`)."""

    served: bytes
    head: bytes
    pieces: list[bytes]


def served_json_page(body: bytes, page_url: str, project: str, root: str) -> bytes | None:
    """The served JSON page of `project` (its one upstream page `body`, from `page_url`) with
    files at `root` + `files/...`, or None when the general path must make it."""
    document = _decoded(body)
    return None if document is None else _served_or_none(document, page_url, project, root)


def served_json_job(body: bytes, page_url: str, project: str, root: str) -> MadePage | None:
    """`served_json_page` as a worker process job, with the page split for reading.

    Without the cyclic garbage collector, which the 100k short-lived objects of a big page
    would run a dozen times for nothing (they make no cycles; it runs again after the job)."""
    gc.disable()
    try:
        document = _decoded(body)
        if document is None:
            return None
        served = _served_or_none(document, page_url, project, root)
        if served is None:
            return None
        return MadePage(served, *split_files(document))
    finally:
        gc.enable()


def _decoded(body: bytes) -> dict[str, Any] | None:
    """The page's document, if orjson reads it as an object with a list of files."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or type(document.get("files")) is not list:
        return None
    return document


def _served_or_none(
    document: dict[str, Any], page_url: str, project: str, root: str
) -> bytes | None:
    try:
        return _served(document, page_url, project, root)
    except (PageFormatError, _NotAsRendered):
        return None


def _served(document: dict[str, Any], page_url: str, project: str, root: str) -> bytes:
    api_version, other_meta = api_version_of(document)
    name = document.get("name")
    if name is not None and type(name) is not str:
        raise _NotAsRendered
    entries, has_pep700_data = _relinked(document["files"], page_url, f"{root}files/{project}/")
    versions = _versions(document.get("versions"))
    meta = {
        "api-version": announced_api_version(api_version, has_pep700_data or versions is not None)
    }
    meta.update((key, value) for key, value in other_meta.items() if key not in meta)
    served: dict[str, Any] = {"meta": meta, "name": project, "files": entries}
    if versions is not None:
        served["versions"] = versions
    extra = {key: value for key, value in document.items() if key not in PAGE_KEYS}
    if holds_float(other_meta) or holds_float(extra):
        # orjson may have read an integer over 64 bits as one: the general path reads exactly
        raise _NotAsRendered
    served.update((key, value) for key, value in extra.items() if key not in served)
    return _encode(served)


def _versions(value: Any) -> list[str] | None:
    if value is None:
        return None
    if type(value) is not list or not all(type(version) is str for version in value):
        raise _NotAsRendered
    return list(dict.fromkeys(value))  # merging keeps each version once


def _relinked(files: list[Any], page_url: str, prefix: str) -> tuple[list[Any], bool]:
    """The file entries as the renderer writes them, pointed at the proxy (each name once,
    as merging keeps them), and whether any carries PEP 700 data."""
    links = LinkResolver(page_url)
    seen: set[str] = set()
    entries = []
    has_pep700_data = False
    for entry in files:
        rendered = _rendered_entry(entry)
        filename = rendered["filename"]
        if filename in seen:
            continue
        seen.add(filename)
        sha256 = rendered["hashes"].get("sha256", "").lower()
        if SHA256_HEX.fullmatch(sha256):
            ident = f"sha256-{sha256}"
        else:
            ident = url_id(links.resolve(rendered["url"]))
        shown = filename if QUOTE_SAFE.fullmatch(filename) else quote(filename)
        rendered["url"] = f"{prefix}{ident}/{shown}"
        has_pep700_data = has_pep700_data or "size" in rendered or "upload-time" in rendered
        entries.append(rendered)
    return entries, has_pep700_data


def _rendered_entry(entry: Any) -> dict[str, Any]:
    """A file entry as the renderer writes it (keys in its order, values it drops left out),
    when the general path reads it without a change; else _NotAsRendered."""
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
