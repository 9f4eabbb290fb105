"""Keeping an import's verified files in the file store, with or without a proxy serving it.

The store's cache-root lock belongs to the proxy serving the cache (it empties `tmp/` and
evicts); an import does neither, so it does not need the lock and works beside a proxy:

1. each staged file (already checked against the manifest's sha256 and size) is fsync-ed;
2. the files are recorded in the store's index in one commit (SQLite, WAL: the serving
   proxy's own writes wait on the same database lock, and its reader sees the rows once
   committed; its totals are re-read on its next write, `StoreIndex.add_many`);
3. each is renamed into the local-disk backend (`LocalDiskBackend.put`: rename, fsync of
   its folder).

This is the store's own order (record, then blob into place): a file is there whole or not
at all, and a record whose blob is missing (an import killed between 2 and 3) is a miss the
store drops. Without a proxy serving the cache, the store is then opened once, which evicts
down to its size limit; with one, the proxy evicts on its next stored file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from proxy.mirror.bundle import FileEntry
from proxy.store.errors import StoreLockedError
from proxy.store.file_store import FileStore
from proxy.store.index import AccessClock, IndexEntry, StoreIndex
from proxy.store.layout import StoreLayout
from proxy.store.local_disk import LocalDiskBackend


def _held(index: StoreIndex, backend: LocalDiskBackend, entry: FileEntry) -> bool:
    recorded = index.entry(entry.key)
    if recorded is None or recorded.size != entry.size:
        return False
    try:
        return backend.path_of(entry.key).stat().st_size == entry.size
    except OSError:
        return False


def _prepare_sync(
    index: StoreIndex, backend: LocalDiskBackend, entries: Sequence[FileEntry], staging: Path
) -> list[tuple[IndexEntry, Path]]:
    """The files not held yet, each with its own fsync-ed link to the staged member (two
    keys may share one member), recorded in the index in one commit."""
    clock = AccessClock(index.newest_access)
    wanted: list[tuple[IndexEntry, Path]] = []
    for entry in {entry.key: entry for entry in entries}.values():
        if _held(index, backend, entry):
            continue
        own = staging / f"keep-{entry.key}"
        os.link(staging / entry.member.replace("/", "-"), own)
        with own.open("rb") as staged:
            os.fsync(staged.fileno())
        wanted.append((IndexEntry(entry.key, entry.size, entry.sha256, clock.tick()), own))
    if wanted:
        index.add_many([record for record, _ in wanted], {})
    return wanted


async def keep_files(
    store_root: Path, entries: Sequence[FileEntry], staging: Path, max_bytes: int | None
) -> int:
    """Keep every file of `entries` the store does not hold yet; how many were added."""
    layout = StoreLayout(store_root)
    layout.root.mkdir(parents=True, exist_ok=True)
    backend = LocalDiskBackend(layout.root)
    await backend.prepare()
    index = await asyncio.to_thread(StoreIndex, layout.index_path)
    try:
        wanted = await asyncio.to_thread(_prepare_sync, index, backend, entries, staging)
    finally:
        index.close()
    for record, path in wanted:
        await backend.put(record.key, path, record.size)
    await _evict_unless_served(store_root, max_bytes)
    return len(wanted)


async def _evict_unless_served(store_root: Path, max_bytes: int | None) -> None:
    if max_bytes is None:
        return
    store = FileStore(store_root, max_bytes)
    try:
        await store.open()
    except StoreLockedError:
        return  # a proxy serves the cache: it evicts on its next stored file
    try:
        await store.startup_eviction()
    finally:
        await store.close()
