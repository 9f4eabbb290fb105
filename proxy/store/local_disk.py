"""The local-disk `BlobBackend`: one file per key under `<cache root>/files/v1/`.

    files/v1/<shard>/<key>      <shard> = first two hex digits of sha256(key)

Sharding spreads files evenly over 256 folders whatever the keys look like (`sha256-...`,
`url-...`). A path is built from the key alone (keys have no '/' or '.'), `files/v1/` must
resolve inside the cache root, and no symbolic link is followed below it, so no key and no
planted link can lead outside the cache directory (`PathEscapeError`).

`put` renames the verified temporary file into place (same file system: the store's `tmp/`
lies in the same root) and fsyncs the folder; `delete` unlinks and fsyncs. Both run in a
worker thread. `open` and `stat` are one `stat` call, done on the event loop like any hit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from proxy.store.errors import PathEscapeError
from proxy.store.layout import check_key

FILES_FORMAT = "v1"
READ_CHUNK_BYTES = 256 * 1024


def shard_of(key: str) -> str:
    """The folder under `files/v1/` that holds `key`."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:2]


@dataclass(frozen=True, slots=True)
class LocalFileBlob:
    """A blob that is one regular local file (a `Blob`)."""

    path: Path
    size: int

    @property
    def local_file(self) -> Path:
        return self.path

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        stop = self.size if end is None else min(end, self.size)
        with open(self.path, "rb", buffering=0) as file:
            position = start
            while position < stop:
                size = min(READ_CHUNK_BYTES, stop - position)
                data = await asyncio.to_thread(os.pread, file.fileno(), size, position)
                if not data:
                    raise OSError(f"{self.path} is shorter than {self.size} bytes")
                position += len(data)
                yield data


class LocalDiskBackend:
    """Blobs as files under `<root>/files/v1/` (a `BlobBackend`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_dir = root / "files" / FILES_FORMAT
        self._files_dir_text = str(self.files_dir)

    async def prepare(self) -> None:
        await asyncio.to_thread(self._prepare_sync)

    def _prepare_sync(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        if not self.files_dir.resolve().is_relative_to(self.root.resolve()):
            raise PathEscapeError(f"{self.files_dir} resolves outside {self.root}")

    def path_of(self, key: str) -> Path:
        """The path of the file for `key`.

        No symbolic link may stand at the shard or file level, so with `files/v1/` checked
        at `prepare`, the path cannot lead outside the root.
        """
        shard_dir = os.path.join(self._files_dir_text, shard_of(check_key(key)))
        path = os.path.join(shard_dir, key)
        for part in (shard_dir, path):
            if os.path.islink(part):
                raise PathEscapeError(f"cache key {key!r}: {part} is a symbolic link")
        return Path(path)

    def check(self, key: str) -> None:
        self.path_of(key)

    async def put(self, key: str, verified: Path, size: int) -> LocalFileBlob:
        # One thread hop for the path checks (two lstat calls) and the move: both off the loop.
        path = await asyncio.to_thread(self._move_into_place, key, verified)
        return LocalFileBlob(path, size)

    def _move_into_place(self, key: str, verified: Path) -> Path:
        path = self.path_of(key)
        try:
            os.replace(verified, path)
        except FileNotFoundError:  # the shard's first file: make its folder
            path.parent.mkdir(exist_ok=True)
            os.replace(verified, path)
        _fsync_directory(path.parent)
        return path

    async def open(self, key: str) -> LocalFileBlob | None:
        path = self.path_of(key)
        size = _regular_file_size(path)
        return None if size is None else LocalFileBlob(path, size)

    async def stat(self, key: str) -> int | None:
        return _regular_file_size(self.path_of(key))

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [self.path_of(key) for key in keys]
        await asyncio.to_thread(_delete_files, paths)


def _regular_file_size(path: Path) -> int | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _delete_files(paths: Sequence[Path]) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            path.unlink()
    for directory in {path.parent for path in paths}:
        with suppress(FileNotFoundError):
            _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
