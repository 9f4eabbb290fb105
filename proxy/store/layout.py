"""Where the file store keeps things on disk, and the cache keys that name its files.

Layout of a cache root (format version 1):

    <root>/lock                          held (flock) by the one process using the store
    <root>/index.sqlite3                 the index of complete files (SQLite, WAL mode)
    <root>/files/v1/<shard>/<key>        complete, verified files
    <root>/tmp/<key>.<random>.part       downloads in progress; emptied at every open

`<shard>` is the first two hex digits of sha256(key), so files spread evenly over 256
folders whatever the keys look like (`sha256-...`, `url-...`). A path is built from the
key alone; keys are checked against `KEY_PATTERN` (no '/', no '.'), `files/v1/` must
resolve inside the root, and no symbolic link is followed below it, so no key and no
planted link can lead outside the cache directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from proxy.store.errors import InvalidKeyError, PathEscapeError

# Lowercase letters, digits and '-': no '/', '.', or anything a file system treats specially.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{7,200}")
FILES_FORMAT = "v1"


def check_key(key: str) -> str:
    """Return `key` when it is a valid cache key, else raise `InvalidKeyError` naming it."""
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(
            f"invalid cache key {key!r}: expected 8-201 of [a-z0-9-], starting with [a-z0-9]"
        )
    return key


def shard_of(key: str) -> str:
    """The folder under `files/v1/` that holds `key`."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:2]


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A complete, verified file in the store: where it is, its size and its sha256."""

    path: Path
    size: int
    sha256: str


class StoreLayout:
    """The paths of one cache root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_dir = root / "files" / FILES_FORMAT
        self.tmp_dir = root / "tmp"
        self.index_path = root / "index.sqlite3"
        self.lock_path = root / "lock"
        self._files_dir_text = str(self.files_dir)

    def check_files_dir(self) -> None:
        """Raise `PathEscapeError` unless `files/v1/` really lies inside the root."""
        if not self.files_dir.resolve().is_relative_to(self.root.resolve()):
            raise PathEscapeError(f"{self.files_dir} resolves outside {self.root}")

    def file_path(self, key: str) -> Path:
        """The path of the complete file for `key`.

        No symbolic link may stand at the shard or file level, so with `files/v1/`
        checked at open (`check_files_dir`), the path cannot lead outside the root.
        """
        shard_dir = os.path.join(self._files_dir_text, shard_of(check_key(key)))
        path = os.path.join(shard_dir, key)
        for part in (shard_dir, path):
            if os.path.islink(part):
                raise PathEscapeError(f"cache key {key!r}: {part} is a symbolic link")
        return Path(path)

    def new_tmp_path(self, key: str) -> Path:
        """A fresh, unused name for a partial download of `key`."""
        return self.tmp_dir / f"{check_key(key)}.{secrets.token_hex(8)}.part"
