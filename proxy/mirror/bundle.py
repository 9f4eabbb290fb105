"""The bundle format (version 1) that `export` writes and `import` reads (pure).

A bundle is a directory or a tar file holding, in this order:

    manifest.json          what follows, with every member's sha256 and size
    pages/<sha256>         the body of one page-cache entry (project page, project list,
                           variants.json, a wheel's variant.json)
    files/<sha256>         one stored file (a wheel, an sdist, a PEP 658 metadata file)

The manifest:

    {"format": "variant-proxy-bundle", "bundle_version": 1,
     "proxy_version": "0.1.0", "cache_format": {"pages": "v2", "files": "v1"},
     "created": "<ISO 8601>", "projects": [...] | null, "since": "<ISO 8601>" | null,
     "targets": {<the mirror record: what was mirrored for which targets>},
     "pages": [{"kind", "upstream", "name", "url", "content_type", "etag",
                "last_modified", "fetched_at", "member", "sha256", "size"}],
     "files": [{"key", "member", "sha256", "size"}]}

`kind`/`upstream`/`name` are the page-cache key; `key` is the file store key (the file id).
`cache_format` names the formats of the cache it came from; members are the upstream's
bodies and the files as they are, so any cache format can import them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from proxy.pages.format import PAGE_FORMAT
from proxy.store.errors import InvalidKeyError
from proxy.store.layout import check_key
from proxy.store.local_disk import FILES_FORMAT

BUNDLE_FORMAT = "variant-proxy-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
MEMBER_RE = re.compile(r"^(pages|files)/[0-9a-f]{64}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PAGE_KINDS = frozenset({"project", "index", "variants", "variant-member"})


class BundleError(Exception):
    """A bundle that cannot be imported; the message names the bad member or field."""


class _NamedByContent:
    """A bundle member: named by its bytes' sha256 in its folder (`MEMBER_RE`)."""

    folder: ClassVar[str]
    sha256: str

    @property
    def member(self) -> str:
        return f"{self.folder}/{self.sha256}"


@dataclass(frozen=True)
class PageEntry(_NamedByContent):
    kind: str
    upstream: str
    name: str
    url: str
    content_type: str
    etag: str | None
    last_modified: str | None
    fetched_at: float
    sha256: str
    size: int
    folder: ClassVar[str] = "pages"


@dataclass(frozen=True)
class FileEntry(_NamedByContent):
    key: str
    sha256: str
    size: int
    folder: ClassVar[str] = "files"


@dataclass(frozen=True)
class Manifest:
    pages: tuple[PageEntry, ...]
    files: tuple[FileEntry, ...]
    targets: Mapping[str, Any]
    proxy_version: str

    def members(self) -> dict[str, int]:
        """member name -> size, each named once (bundles share equal contents)."""
        sizes = {page.member: page.size for page in self.pages}
        sizes.update((file.member, file.size) for file in self.files)
        return sizes

    def sha256_of(self, member: str) -> str:
        return member.split("/", 1)[1]


def manifest_document(
    manifest: Manifest, *, created: str, projects: list[str] | None, since: str | None
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "proxy_version": manifest.proxy_version,
        "cache_format": {"pages": f"v{PAGE_FORMAT}", "files": FILES_FORMAT},
        "created": created,
        "projects": projects,
        "since": since,
        "targets": dict(manifest.targets),
        "pages": [
            {
                "kind": p.kind,
                "upstream": p.upstream,
                "name": p.name,
                "url": p.url,
                "content_type": p.content_type,
                "etag": p.etag,
                "last_modified": p.last_modified,
                "fetched_at": p.fetched_at,
                "member": p.member,
                "sha256": p.sha256,
                "size": p.size,
            }
            for p in manifest.pages
        ],
        "files": [
            {"key": f.key, "member": f.member, "sha256": f.sha256, "size": f.size}
            for f in manifest.files
        ],
    }


def _field(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BundleError(f"{MANIFEST}: {where}: bad or missing {name!r}")
    return value


def _optional_text(entry: Mapping[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise BundleError(f"{MANIFEST}: {where}: bad {name!r}")
    return value


def _checked_digest(entry: Mapping[str, Any], where: str) -> tuple[str, int]:
    sha256 = _field(entry, "sha256", str, where)
    size = _field(entry, "size", int, where)
    if not SHA256_RE.match(sha256) or size < 0:
        raise BundleError(f"{MANIFEST}: {where}: bad sha256 or size")
    member = entry.get("member")
    if member is not None and member not in (f"pages/{sha256}", f"files/{sha256}"):
        raise BundleError(f"{MANIFEST}: {where}: member {str(member)[:80]!r} does not match")
    return sha256, size


def _page_entry(entry: Any, position: int) -> PageEntry:
    where = f"pages[{position}]"
    if not isinstance(entry, Mapping):
        raise BundleError(f"{MANIFEST}: {where} is not an object")
    kind = _field(entry, "kind", str, where)
    if kind not in PAGE_KINDS:
        raise BundleError(f"{MANIFEST}: {where}: unknown kind {kind[:40]!r}")
    sha256, size = _checked_digest(entry, where)
    fetched_at = entry.get("fetched_at")
    if not isinstance(fetched_at, int | float) or isinstance(fetched_at, bool):
        raise BundleError(f"{MANIFEST}: {where}: bad 'fetched_at'")
    return PageEntry(
        kind=kind,
        upstream=_field(entry, "upstream", str, where),
        name=_field(entry, "name", str, where),
        url=_field(entry, "url", str, where),
        content_type=_field(entry, "content_type", str, where),
        etag=_optional_text(entry, "etag", where),
        last_modified=_optional_text(entry, "last_modified", where),
        fetched_at=float(fetched_at),
        sha256=sha256,
        size=size,
    )


def _file_entry(entry: Any, position: int) -> FileEntry:
    where = f"files[{position}]"
    if not isinstance(entry, Mapping):
        raise BundleError(f"{MANIFEST}: {where} is not an object")
    key = _field(entry, "key", str, where)
    try:
        check_key(key)
    except InvalidKeyError:
        raise BundleError(f"{MANIFEST}: {where}: bad key {key[:80]!r}") from None
    sha256, size = _checked_digest(entry, where)
    return FileEntry(key, sha256, size)


def parse_manifest(document: Any) -> Manifest:
    """The manifest, checked field by field; a `BundleError` names the first bad part."""
    if not isinstance(document, Mapping) or document.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST}: not a variant-proxy bundle manifest")
    if document.get("bundle_version") != BUNDLE_VERSION:
        version = str(document.get("bundle_version"))[:20]
        raise BundleError(f"{MANIFEST}: bundle version {version}; this proxy reads 1")
    pages = document.get("pages")
    files = document.get("files")
    if not isinstance(pages, list) or not isinstance(files, list):
        raise BundleError(f"{MANIFEST}: 'pages' and 'files' must be lists")
    targets = document.get("targets") or {}
    if not isinstance(targets, Mapping):
        raise BundleError(f"{MANIFEST}: 'targets' must be an object")
    return Manifest(
        pages=tuple(_page_entry(e, i) for i, e in enumerate(pages)),
        files=tuple(_file_entry(e, i) for i, e in enumerate(files)),
        targets=targets,
        proxy_version=str(document.get("proxy_version", "")),
    )
