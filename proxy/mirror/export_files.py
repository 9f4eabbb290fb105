"""Where `export` finds each stored file: the local store first, then the blob backend of
`[cache.s3]` (a bucket shared by replicas holds files the local disk evicted or never had).

A local file is read in place (the bundle links it where it can). A file in the bucket is
read through the backend (`S3Blobs.open`, a `Blob`'s chunks) into a scratch folder next to
the bundle, hashed on the way: the manifest needs its sha256 before any member is written,
and a blob that does not match its key is left out with a warning, never written into a
bundle. The local store is read without its lock (a proxy may be serving it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.store.readonly import ReadOnlyStore

if TYPE_CHECKING:
    from proxy.cluster.settings import S3Settings
    from proxy.store.s3 import S3Blobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldFile:
    """A complete stored file as a local path the bundle can link or copy."""

    key: str
    sha256: str
    size: int
    path: Path


class ExportFiles:
    """The files of one cache directory, from its local store or its bucket."""

    def __init__(self, local: ReadOnlyStore, blobs: S3Blobs | None, scratch: Path) -> None:
        self._local = local
        self._blobs = blobs
        self._scratch = scratch

    async def find(self, key: str, since: float | None) -> HeldFile | None:
        """The file of `key` (fetched since `since`, when given), or None."""
        local = self._local.lookup(key)
        if local is not None:
            if since is not None and os.stat(local.path).st_mtime < since:
                return None
            return HeldFile(key, local.sha256, local.size, local.path)
        if self._blobs is None:
            return None
        return await self._from_bucket(self._blobs, key, since)

    async def _from_bucket(self, blobs: S3Blobs, key: str, since: float | None) -> HeldFile | None:
        from proxy.store.s3 import STORE_ERRORS

        try:
            blob = await blobs.open(key)
            if blob is None or (since is not None and await _modified(blobs, key) < since):
                return None
            self._scratch.mkdir(parents=True, exist_ok=True)
            path = self._scratch / key
            digest = hashlib.sha256()
            with path.open("wb") as out:
                async for chunk in blob.chunks():
                    digest.update(chunk)
                    out.write(chunk)
        except STORE_ERRORS as exc:
            raise OSError(f"object store: reading {key}: {exc}"[:300]) from None
        sha256 = digest.hexdigest()
        size = path.stat().st_size
        if (key.startswith("sha256-") and key[7:] != sha256) or size != blob.size:
            log.warning("export: %s in the object store does not match its key; left out", key)
            path.unlink()
            return None
        return HeldFile(key, sha256, size, path)


async def _modified(blobs: S3Blobs, key: str) -> float:
    """When the object of `key` was written (epoch seconds)."""
    head = await blobs.client.head_object(Bucket=blobs.settings.bucket, Key=blobs.object_key(key))
    return float(head["LastModified"].timestamp())


@asynccontextmanager
async def export_files(
    cache_dir: Path, s3: S3Settings | None, scratch: Path
) -> AsyncIterator[ExportFiles]:
    """The files of `cache_dir` (and of the `s3` bucket, when given), for one export."""
    from proxy.store.s3 import S3Blobs

    local = ReadOnlyStore(cache_dir / "store")
    blobs = S3Blobs(s3) if s3 is not None else None
    try:
        if blobs is not None:
            # Not sweeping: other replicas' unfinished uploads are none of export's business.
            await blobs.connect(sweep_orphans=False)
        yield ExportFiles(local, blobs, scratch)
    finally:
        if blobs is not None:
            await blobs.close()
        local.close()
