"""PEP 691 JSON simple pages <-> the ProjectPage model, and the JSON project list.

Reads and writes every file key of PEP 691, 592, 658/714, 700 and 740 (`hashes`,
`requires-python`, `yanked`, `core-metadata` / `dist-info-metadata`, `gpg-sig`, `size`,
`upload-time`, `provenance`) and the top-level `versions`. Keys the model does not name are
kept: a file's in `DistFile.extra`, the page's in `ProjectPage.extra`, where the extra `meta`
keys (those besides `api-version`, e.g. a private `_last-serial`) sit under `extra["meta"]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

import orjson

from proxy.simple.common import (
    PageFormatError,
    name_from_url,
    parse_api_version,
    rendered_api_version,
)
from proxy.simple.json_decode import InexactNumbers, decode, holds_float, load_object
from proxy.simple.model import CoreMetadata, DistFile, ProjectPage, Yanked
from proxy.simple.names import normalize_name
from proxy.urls.join import LinkResolver

# PEP 714 renamed `dist-info-metadata` to `core-metadata`; `data-dist-info-metadata` is the
# misspelling one index served in JSON for a while. Read in this order of preference.
CORE_METADATA_KEYS = ("core-metadata", "dist-info-metadata", "data-dist-info-metadata")
FILE_KEYS = frozenset(
    {
        "filename",
        "url",
        "hashes",
        "requires-python",
        "yanked",
        "gpg-sig",
        "size",
        "upload-time",
        "provenance",
        *CORE_METADATA_KEYS,
    }
)
PAGE_KEYS = frozenset({"meta", "name", "files", "versions"})

# ASCII output: a lone surrogate a parsed page may carry is written as an escape, not an error.
JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False)


def api_version_of(document: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The page's api-version (checked) and the other `meta` keys."""
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise PageFormatError("JSON page 'meta' is not an object")
    version = meta.get("api-version", "1.0")
    if not isinstance(version, str):
        raise PageFormatError(f"meta.api-version {version!r} is not a string")
    parse_api_version(version, "meta.api-version")
    return version.strip(), {k: v for k, v in meta.items() if k != "api-version"}


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PageFormatError(f"{where} is {value!r}, not a string")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _hashes(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(name, str) and isinstance(digest, str) for name, digest in value.items()
    ):
        raise PageFormatError(f"{where} is not an object of hash name to hex digest")
    return {name.lower(): digest for name, digest in value.items()}


def _yanked(value: Any, where: str) -> Yanked:
    # PEP 691: a truthy value means yanked; a non-empty string is the reason.
    if value is None or value is False or value == "":
        return False
    if value is True or isinstance(value, str):
        return value
    raise PageFormatError(f"{where} is {value!r}, not a boolean or a reason string")


def _core_metadata(entry: Mapping[str, Any], where: str) -> CoreMetadata:
    for key in CORE_METADATA_KEYS:
        if key in entry:
            value = entry[key]
            if value is None or isinstance(value, bool):
                return bool(value)
            hashes = _hashes(value, f"{where}.{key}")
            return hashes or False
    return False


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PageFormatError(f"{where} is {value!r}, not a byte count")
    return value


def _gpg_sig(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise PageFormatError(f"{where} is {value!r}, not a boolean")


def plain_hashes(value: Any) -> bool:
    """Whether `value` is an object of lowercase hash names to strings (kept as it is)."""
    if type(value) is not dict:
        return False
    for name, digest in value.items():  # a loop: `all()` of a generator costs twice as much
        if type(name) is not str or type(digest) is not str or name.lower() != name:
            return False
    return True


_NOT_PLAIN = object()


def _plain_core_metadata(entry: dict[str, Any]) -> Any:
    """`_core_metadata` of an entry whose value needs no check, else `_NOT_PLAIN`."""
    for key in CORE_METADATA_KEYS:
        if key in entry:
            value = entry[key]
            if value is None or type(value) is bool:
                return bool(value)
            return (value or False) if plain_hashes(value) else _NOT_PLAIN
    return False


def _plain_yanked(value: Any) -> Any:
    if value is None or value is False or value == "":
        return False
    return value if value is True or type(value) is str else _NOT_PLAIN


def _dist_file(entry: Any, index: int, links: LinkResolver, exact: bool = True) -> DistFile:
    """One file entry. The common entry (known keys, values of the right types) is read
    without building any error text: a 20k-file page is read on every cold request. Anything
    else takes the checks that name the bad part."""
    if type(entry) is not dict or not FILE_KEYS.issuperset(entry):
        return _checked_dist_file(entry, index, links, exact)
    filename = entry.get("filename")
    url = entry.get("url")
    size = entry.get("size")
    yanked = _plain_yanked(entry.get("yanked"))
    core_metadata = _plain_core_metadata(entry)
    if (
        type(filename) is not str
        or type(url) is not str
        or not (size is None or (type(size) is int and size >= 0))
        or yanked is _NOT_PLAIN
        or core_metadata is _NOT_PLAIN
        or not _plain_other_values(entry)
    ):
        return _checked_dist_file(entry, index, links, exact)
    return DistFile(
        filename,
        links.resolve(url),
        entry.get("hashes", {}),
        entry.get("requires-python") or None,
        yanked,
        core_metadata,
        entry.get("gpg-sig"),
        size,
        entry.get("upload-time"),
        entry.get("provenance"),
    )


def _plain_other_values(entry: dict[str, Any]) -> bool:
    """Whether the entry's hashes, strings and signature flag need no check."""
    return (
        plain_hashes(entry.get("hashes", {}))
        and type(entry.get("requires-python", "")) is str
        and type(entry.get("upload-time", "")) is str
        and type(entry.get("provenance", "")) is str
        and type(entry.get("gpg-sig", False)) is bool
    )


def _checked_dist_file(entry: Any, index: int, links: LinkResolver, exact: bool = True) -> DistFile:
    where = f"files[{index}]"
    if not isinstance(entry, dict):
        raise PageFormatError(f"{where} is not an object")
    if not exact and holds_float(entry):
        raise InexactNumbers
    filename = _string(entry.get("filename"), f"{where}.filename")
    where = f"{where} ({filename!r})"
    return DistFile(
        filename=filename,
        url=links.resolve(_string(entry.get("url"), f"{where}.url")),
        hashes=_hashes(entry.get("hashes", {}), f"{where}.hashes"),
        requires_python=_optional_string(entry.get("requires-python"), f"{where}.requires-python")
        or None,
        yanked=_yanked(entry.get("yanked"), f"{where}.yanked"),
        core_metadata=_core_metadata(entry, where),
        gpg_sig=_gpg_sig(entry.get("gpg-sig"), f"{where}.gpg-sig"),
        size=_size(entry.get("size"), f"{where}.size"),
        upload_time=_optional_string(entry.get("upload-time"), f"{where}.upload-time"),
        provenance=_optional_string(entry.get("provenance"), f"{where}.provenance"),
        extra={key: value for key, value in entry.items() if key not in FILE_KEYS},
    )


def _versions(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PageFormatError("JSON page 'versions' is not a list of strings")
    return tuple(value)


def parse_project_json(body: bytes, page_url: str) -> ProjectPage:
    """Read a PEP 691 project page; relative file URLs are resolved against `page_url`."""
    try:
        return _project_page(load_object(body), page_url, exact=False)
    except InexactNumbers:
        return _project_page(load_object(body, exact=True), page_url, exact=True)


def _project_page(document: dict[str, Any], page_url: str, exact: bool) -> ProjectPage:
    api_version, other_meta = api_version_of(document)
    name = document.get("name")
    if name is None:
        name = name_from_url(page_url)
    files = document.get("files")
    if not isinstance(files, list):
        raise PageFormatError("JSON page 'files' is not a list")
    extra = {key: value for key, value in document.items() if key not in PAGE_KEYS}
    if other_meta:
        extra["meta"] = other_meta
    if not exact and holds_float(extra):
        raise InexactNumbers
    links = LinkResolver(page_url)
    return ProjectPage(
        name=normalize_name(_string(name, "JSON page 'name'")),
        files=tuple(_dist_file(entry, i, links, exact) for i, entry in enumerate(files)),
        versions=_versions(document.get("versions")),
        api_version=api_version,
        extra=extra,
    )


# Entries per piece of a page split for reading in steps (`split_files`): about 1 ms each.
ENTRIES_PER_PIECE = 100


def split_files(document: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """A decoded page (known to be well-formed) as its head (everything but `files`) and its
    file entries in pieces, each encoded: what a process that did not decode it reads in
    steps, none holding the GIL for long, where decoding the whole takes tens of ms."""
    files = document["files"]
    head = orjson.dumps({key: value for key, value in document.items() if key != "files"})
    step = ENTRIES_PER_PIECE
    return head, [orjson.dumps(files[start : start + step]) for start in range(0, len(files), step)]


def read_head(head: bytes, page_url: str) -> ProjectPage:
    """The page of a `split_files` head, without files."""
    document = load_object(head)
    api_version, other_meta = api_version_of(document)
    name = document.get("name")
    extra = {key: value for key, value in document.items() if key not in PAGE_KEYS}
    if other_meta:
        extra["meta"] = other_meta
    return ProjectPage(
        name=normalize_name(
            name_from_url(page_url) if name is None else _string(name, "JSON page 'name'")
        ),
        files=(),
        versions=_versions(document.get("versions")),
        api_version=api_version,
        extra=extra,
    )


def read_piece(piece: bytes, first_index: int, links: LinkResolver) -> list[DistFile]:
    """The files of one `split_files` piece, whose first entry is the page's `first_index`."""
    entries = decode(piece)
    return [_dist_file(entry, first_index + i, links) for i, entry in enumerate(entries)]


def _as_dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return mapping if isinstance(mapping, dict) else dict(mapping)


def _file_object(dist: DistFile, legacy_metadata_key: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": dist.filename,
        "url": dist.url,
        "hashes": _as_dict(dist.hashes),
    }
    if dist.requires_python is not None:
        entry["requires-python"] = dist.requires_python
    if dist.yanked is not False:
        entry["yanked"] = dist.yanked or True
    if dist.core_metadata is not False:
        core = True if dist.core_metadata is True else _as_dict(dist.core_metadata) or True
        entry["core-metadata"] = core
        if legacy_metadata_key:
            entry["dist-info-metadata"] = core
    if dist.gpg_sig is not None:
        entry["gpg-sig"] = dist.gpg_sig
    if dist.size is not None:
        entry["size"] = dist.size
    if dist.upload_time is not None:
        entry["upload-time"] = dist.upload_time
    if dist.provenance is not None:
        entry["provenance"] = dist.provenance
    for key, value in dist.extra.items():
        entry.setdefault(key, value)
    return entry


def render_project_json(page: ProjectPage, *, legacy_metadata_key: bool = False) -> bytes:
    """The PEP 691 JSON page for `page`, every attribute and kept unknown key included.

    `legacy_metadata_key` also writes the pre-PEP 714 `dist-info-metadata` key. PEP 714 advises
    against it: pip 22.3 to 23.1 read JSON pages and fail hard on that key's JSON values.
    """
    meta: dict[str, Any] = {"api-version": rendered_api_version(page)}
    other_meta = page.extra.get("meta")
    if isinstance(other_meta, Mapping):
        for key, value in other_meta.items():
            meta.setdefault(key, value)
    document: dict[str, Any] = {
        "meta": meta,
        "name": page.name,
        "files": [_file_object(dist, legacy_metadata_key) for dist in page.files],
    }
    if page.versions is not None:
        document["versions"] = list(page.versions)
    for key, value in page.extra.items():
        document.setdefault(key, value)
    return JSON_ENCODER.encode(document).encode("ascii")


def parse_index_json(body: bytes) -> list[str]:
    """Project names of a PEP 691 project list (`projects[].name`), as given."""
    document = load_object(body)
    api_version_of(document)
    projects = document.get("projects")
    if not isinstance(projects, list):
        raise PageFormatError("JSON project list 'projects' is not a list")
    names = []
    for index, project in enumerate(projects):
        name = project.get("name") if isinstance(project, dict) else None
        if not isinstance(name, str):
            raise PageFormatError(f"projects[{index}] has no string 'name'")
        names.append(name)
    return names


def render_index_json(names: Iterable[str], api_version: str) -> bytes:
    """The PEP 691 project list."""
    # Written as text: three times faster than encoding a list of 700k one-key objects.
    projects = ",".join([f'{{"name":{encode_basestring_ascii(name)}}}' for name in names])
    meta = f'{{"api-version":{encode_basestring_ascii(api_version)}}}'
    return f'{{"meta":{meta},"projects":[{projects}]}}'.encode("ascii")
