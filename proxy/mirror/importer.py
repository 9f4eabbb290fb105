"""`variant-proxy import BUNDLE`: check every member of a bundle, then merge it into the cache.

Works with or without a proxy serving the cache (the contract), which sees the new files
and pages as they are committed.

1. The import lock (`<cache>/import.lock`: one import at a time; a serving proxy does not
   hold it) is taken, and what an earlier, interrupted import left in
   `<cache>/import-staging/` is removed.
2. Every member is copied into a staging folder inside the cache, hashed on the way and
   compared with the manifest (sha256 and size). A damaged, missing or unexpected member
   refuses the whole bundle, naming it, before anything is kept.
3. Files go into the store in its own order (fsync-ed, recorded, renamed: each file is
   there whole or not at all; `proxy.mirror.keep_files`); files already held are skipped.
   Pages go into the page cache in one transaction, keeping whichever of the cached and the
   imported entry was fetched later. The mirror record is merged last.

A tar bundle is read as a stream (`tar` order: the manifest first), so a bundle can also
come from a pipe.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from proxy.mirror.bundle import MANIFEST, BundleError, Manifest, parse_manifest
from proxy.mirror.keep_files import keep_files
from proxy.mirror.record import merge_record
from proxy.pages.cache import PAGE_CACHE_DIR, CachedPage, PageCache, cache_key

STAGING = "import-staging"
IMPORT_LOCK = "import.lock"
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImportSummary:
    files_added: int
    files_present: int
    pages_added: int
    pages_kept: int


def _members(bundle: Path) -> Iterator[tuple[str, IO[bytes] | None]]:
    """(name, readable) for each member in bundle order; None for a non-regular member."""
    if bundle.is_dir():
        yield MANIFEST, (bundle / MANIFEST).open("rb")
        for folder in ("pages", "files"):
            directory = bundle / folder
            if directory.is_dir():
                for path in sorted(directory.iterdir()):
                    name = f"{folder}/{path.name}"
                    yield (
                        name,
                        path.open("rb") if path.is_file() and not path.is_symlink() else None,
                    )
        return
    try:
        with tarfile.open(bundle, "r|*") as archive:
            for info in archive:
                yield info.name, archive.extractfile(info) if info.isfile() else None
    except tarfile.TarError as exc:
        raise BundleError(f"{bundle.name}: not a readable tar bundle: {exc}") from None


def _read_manifest(name: str, handle: IO[bytes]) -> Manifest:
    if name != MANIFEST:
        raise BundleError(f"the bundle's first member is {name[:80]!r}, not {MANIFEST}")
    body = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(body) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{MANIFEST} is too large")
    try:
        return parse_manifest(json.loads(body))
    except ValueError as exc:
        raise BundleError(f"{MANIFEST} is damaged: {exc}") from None


def _stage_member(name: str, handle: IO[bytes], expected_size: int, target: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := handle.read(COPY_CHUNK):
            size += len(chunk)
            if size > expected_size:
                raise BundleError(f"bundle member {name} is damaged: larger than the manifest says")
            digest.update(chunk)
            out.write(chunk)
    expected = name.split("/", 1)[1]
    if size != expected_size or digest.hexdigest() != expected:
        raise BundleError(
            f"bundle member {name} is damaged: sha256 {digest.hexdigest()}, {size} bytes; "
            f"the manifest says {expected}, {expected_size} bytes"
        )


def stage_bundle(bundle: Path, staging: Path) -> Manifest:
    """Copy and check every member into `staging`; the manifest, or a `BundleError`."""
    members = _members(bundle)
    try:
        first_name, first = next(members)
    except StopIteration:
        raise BundleError(f"{bundle.name}: empty bundle") from None
    except FileNotFoundError:
        raise BundleError(f"{bundle.name}: no {MANIFEST}") from None
    if first is None:
        raise BundleError(f"{MANIFEST} is not a regular file")
    with first:
        manifest = _read_manifest(first_name, first)
    expected = manifest.members()
    staged: set[str] = set()
    for name, handle in members:
        if name not in expected or name in staged:
            raise BundleError(f"unexpected bundle member {name[:120]!r}")
        if handle is None:
            raise BundleError(f"bundle member {name} is not a regular file")
        with handle:
            _stage_member(name, handle, expected[name], staging / name.replace("/", "-"))
        staged.add(name)
    missing = sorted(set(expected) - staged)
    if missing:
        raise BundleError(f"bundle member {missing[0]} is missing")
    return manifest


def _commit_pages(pages: PageCache, manifest: Manifest, staging: Path) -> tuple[int, int]:
    entries: list[tuple[str, CachedPage]] = []
    for entry in manifest.pages:
        key = cache_key(entry.kind, entry.upstream, entry.name)
        cached = pages.get(key)
        if cached is not None and not cached.missing and cached.fetched_at >= entry.fetched_at:
            continue
        body = (staging / entry.member.replace("/", "-")).read_bytes()
        page = CachedPage.of(
            body,
            entry.content_type,
            entry.url,
            entry.fetched_at,
            entry.etag,
            entry.last_modified,
        )
        entries.append((key, page))
    pages.put_many(entries)
    return len(entries), len(manifest.pages) - len(entries)


class ImportBusyError(OSError):
    """Another import into the same cache is running."""


def _take_import_lock(cache_dir: Path) -> int:
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache_dir / IMPORT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ImportBusyError(f"another import into {cache_dir} is running") from None
    return fd


async def import_bundle(bundle: Path, cache_dir: Path, max_bytes: int | None) -> ImportSummary:
    lock = _take_import_lock(cache_dir)
    staging_root = cache_dir / STAGING
    try:
        if staging_root.exists():
            shutil.rmtree(staging_root)  # left by an import that was killed
        staging = staging_root / secrets.token_hex(8)
        staging.mkdir(parents=True)
        manifest = await asyncio.to_thread(stage_bundle, bundle, staging)
        files_added = await keep_files(cache_dir / "store", manifest.files, staging, max_bytes)
        pages = PageCache(cache_dir / PAGE_CACHE_DIR)
        try:
            pages_added, pages_kept = await asyncio.to_thread(
                _commit_pages, pages, manifest, staging
            )
        finally:
            pages.close()
        merge_record(cache_dir, manifest.targets)
    finally:
        with suppress(OSError):
            shutil.rmtree(staging_root)
        os.close(lock)
    files_present = len({entry.key for entry in manifest.files}) - files_added
    return ImportSummary(files_added, files_present, pages_added, pages_kept)
