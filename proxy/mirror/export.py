"""`variant-proxy export BUNDLE`: the cache (or the pages and files of some projects, or
what was fetched since a date) written as a bundle (see `proxy.mirror.bundle`).

Reads the cache without taking it (a proxy may be serving it): pages through the page
cache, files through a read-only view of the store, or from the `[cache.s3]` bucket through
its blob backend (`proxy.mirror.export_files`). A bundle is written under a temporary
name and renamed into place when complete, so a half-written bundle never exists.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proxy import __version__
from proxy.mirror.bundle import MANIFEST, FileEntry, Manifest, PageEntry, manifest_document
from proxy.mirror.export_files import ExportFiles, export_files
from proxy.mirror.record import now_text, read_record
from proxy.pages.cache import PAGE_CACHE_DIR, CachedPage, PageCache, split_cache_key
from proxy.simple.api import PageFormatError, parse_project_page
from proxy.upstreams.variant_metadata import variant_member_cache_key, variants_cache_key
from proxy.urls.links import file_id, metadata_id

if TYPE_CHECKING:
    from proxy.cluster.settings import S3Settings


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


@dataclass(frozen=True)
class _Pages:
    entries: list[PageEntry]
    bodies: dict[str, bytes]  # member -> body
    store_keys: list[str]  # the files the selected project pages link to


def _linked(pages: PageCache, page_keys: list[str]) -> tuple[list[str], list[str]]:
    """(page keys, store keys) the project pages among `page_keys` refer to."""
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
    return list(extra_pages), list(store_keys)


def select_pages(pages: PageCache, request: ExportRequest) -> _Pages:
    """The wanted pages (with what they link to) and the files they name."""
    page_keys = [key for key in pages.all_keys() if _wanted(key, request.projects)]
    extra_pages, store_keys = _linked(pages, page_keys)
    entries: list[PageEntry] = []
    bodies: dict[str, bytes] = {}
    for key in dict.fromkeys([*page_keys, *extra_pages]):
        cached = pages.get(key)
        page = _page_entry(key, cached) if cached is not None else None
        if cached is None or page is None:
            continue
        if request.since is not None and page.fetched_at < request.since:
            continue
        entries.append(page)
        bodies[page.member] = cached.body
    return _Pages(entries, bodies, store_keys)


async def select(
    pages: _Pages, files: ExportFiles, request: ExportRequest, targets: dict[str, object]
) -> _Selected:
    file_entries: list[FileEntry] = []
    paths: dict[str, Path] = {}
    for key in pages.store_keys:
        held = await files.find(key, request.since)
        if held is None:
            continue
        entry = FileEntry(key, held.sha256, held.size)
        file_entries.append(entry)
        paths[entry.member] = held.path
    manifest = Manifest(tuple(pages.entries), tuple(file_entries), targets, __version__)
    return _Selected(manifest, pages.bodies, paths)


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


async def export_bundle(
    cache_dir: Path, request: ExportRequest, s3: S3Settings | None = None
) -> Manifest:
    """Write the bundle; returns what it holds. Files come from the local store, else from
    the `[cache.s3]` bucket when `s3` is given."""
    if request.bundle.exists():
        raise FileExistsError(f"{request.bundle} exists; export writes a new bundle")
    pages = PageCache(cache_dir / PAGE_CACHE_DIR)
    try:
        wanted = select_pages(pages, request)
    finally:
        pages.close()
    scratch = request.bundle.with_name(f"{request.bundle.name}.fetching")
    try:
        async with export_files(cache_dir, s3, scratch) as files:
            selected = await select(wanted, files, request, read_record(cache_dir))
        await asyncio.to_thread(_write_bundle, request, selected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return selected.manifest


def _write_bundle(request: ExportRequest, selected: _Selected) -> None:
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
