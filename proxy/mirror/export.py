"""`variant-proxy export BUNDLE`: the cache (or the pages and files of some projects, or
what was fetched since a date) written as a bundle (see `proxy.mirror.bundle`).

Reads the cache without taking it (a proxy may be serving it): pages through the page
cache, files through a read-only view of the store. A bundle is written under a temporary
name and renamed into place when complete, so a half-written bundle never exists.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from proxy import __version__
from proxy.mirror.bundle import MANIFEST, FileEntry, Manifest, PageEntry, manifest_document
from proxy.mirror.record import now_text, read_record
from proxy.pages.cache import PAGE_CACHE_DIR, CachedPage, PageCache, split_cache_key
from proxy.simple.api import PageFormatError, parse_project_page
from proxy.store.readonly import ReadOnlyStore
from proxy.upstreams.variant_metadata import variant_member_cache_key, variants_cache_key
from proxy.urls.links import file_id, metadata_id


@dataclass(frozen=True)
class ExportRequest:
    bundle: Path
    projects: frozenset[str] | None = None  # normalised names; None = everything
    since: float | None = None  # epoch seconds


@dataclass(frozen=True)
class _Selected:
    manifest: Manifest
    page_bodies: dict[str, bytes]  # member -> body
    file_paths: dict[str, Path]  # member -> stored file


def _page_entry(key: str, page: CachedPage) -> PageEntry | None:

    parts = split_cache_key(key)
    if parts is None or page.missing:
        return None
    return PageEntry(
        kind=parts[0],
        upstream=parts[1],
        name=parts[2],
        url=page.url,
        content_type=page.content_type,
        etag=page.etag,
        last_modified=page.last_modified,
        fetched_at=page.fetched_at,
        sha256=hashlib.sha256(page.body).hexdigest(),
        size=len(page.body),
    )


def _linked_keys(upstream: str, page: CachedPage) -> tuple[list[str], list[str]]:
    """(page-cache keys, store keys) a project page refers to."""
    try:
        parsed = parse_project_page(page.body, page.content_type, page.url)
    except PageFormatError:
        return [], []
    page_keys, store_keys = [], []
    for dist in parsed.files:
        if dist.filename.endswith("-variants.json"):
            page_keys.append(variants_cache_key(upstream, dist))
            continue
        page_keys.append(variant_member_cache_key(dist))
        store_keys.append(file_id(dist))
        if dist.core_metadata:
            store_keys.append(metadata_id(dist))
    return page_keys, store_keys


def _wanted(key: str, projects: frozenset[str] | None) -> bool:
    parts = split_cache_key(key)
    return parts is not None and (
        projects is None or (parts[:1] == ("project",) and parts[2] in projects)
    )


def select(
    pages: PageCache, store: ReadOnlyStore, request: ExportRequest, targets: dict[str, object]
) -> _Selected:
    page_keys = [key for key in pages.all_keys() if _wanted(key, request.projects)]
    store_keys: dict[str, None] = {}
    extra_pages: dict[str, None] = {}
    for key in page_keys:
        parts = split_cache_key(key)
        cached = pages.get(key)
        if parts is None or cached is None or parts[0] != "project" or cached.missing:
            continue
        linked_pages, linked_files = _linked_keys(parts[1], cached)
        extra_pages.update(dict.fromkeys(linked_pages))
        store_keys.update(dict.fromkeys(linked_files))
    page_entries: list[PageEntry] = []
    bodies: dict[str, bytes] = {}
    for key in dict.fromkeys([*page_keys, *extra_pages]):
        cached = pages.get(key)
        page = _page_entry(key, cached) if cached is not None else None
        if page is None or (request.since is not None and page.fetched_at < request.since):
            continue
        page_entries.append(page)
        bodies[page.member] = cached.body if cached is not None else b""
    file_entries: list[FileEntry] = []
    paths: dict[str, Path] = {}
    for key in store_keys:
        stored = store.lookup(key)
        if stored is None:
            continue
        if request.since is not None and os.stat(stored.path).st_mtime < request.since:
            continue
        held = FileEntry(key, stored.sha256, stored.size)
        file_entries.append(held)
        paths[held.member] = stored.path
    manifest = Manifest(tuple(page_entries), tuple(file_entries), targets, __version__)
    return _Selected(manifest, bodies, paths)


def _members(selected: _Selected) -> Iterator[tuple[str, bytes | Path]]:
    for member, body in selected.page_bodies.items():
        yield member, body
    for member, path in selected.file_paths.items():
        yield member, path


def _write_directory(target: Path, manifest_bytes: bytes, selected: _Selected) -> None:
    (target / "pages").mkdir(parents=True)
    (target / "files").mkdir()
    (target / MANIFEST).write_bytes(manifest_bytes)
    for member, content in _members(selected):
        destination = target / member
        if isinstance(content, bytes):
            destination.write_bytes(content)
            continue
        try:
            os.link(content, destination)  # the store's files never change: share them
        except OSError:
            shutil.copyfile(content, destination)


def _write_tar(target: Path, manifest_bytes: bytes, selected: _Selected) -> None:

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for member, content in [(MANIFEST, manifest_bytes), *_members(selected)]:
            info = tarfile.TarInfo(member)
            info.mode = 0o644
            if isinstance(content, bytes):
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:
                info.size = content.stat().st_size
                with open(content, "rb") as handle:
                    archive.addfile(info, handle)


def export_bundle(cache_dir: Path, request: ExportRequest) -> Manifest:
    """Write the bundle; returns what it holds."""
    if request.bundle.exists():
        raise FileExistsError(f"{request.bundle} exists; export writes a new bundle")
    pages = PageCache(cache_dir / PAGE_CACHE_DIR)
    store = ReadOnlyStore(cache_dir / "store")
    try:
        selected = select(pages, store, request, read_record(cache_dir))
    finally:
        store.close()
        pages.close()
    document = manifest_document(
        selected.manifest,
        created=now_text(),
        projects=sorted(request.projects) if request.projects is not None else None,
        since=str(request.since) if request.since is not None else None,
    )
    manifest_bytes = json.dumps(document, indent=1).encode()
    partial = request.bundle.with_name(request.bundle.name + ".partial")
    if partial.is_dir():
        shutil.rmtree(partial)
    else:
        partial.unlink(missing_ok=True)
    is_tar = request.bundle.suffix == ".tar"
    (_write_tar if is_tar else _write_directory)(partial, manifest_bytes, selected)
    os.replace(partial, request.bundle)
    return selected.manifest
