"""The file store's own places in a cache root, and the cache keys that name its files.

Layout of a cache root (format version 1):

    <root>/lock                          held (flock) by the one process using the store
    <root>/index.sqlite3                 the index of complete files (SQLite, WAL mode)
    <root>/tmp/<key>.<random>.part       downloads in progress; emptied at every open
    <root>/files/v1/...                  the local-disk blob backend's files
                                         (`proxy.store.local_disk`)

Keys are checked against `KEY_PATTERN` (no '/', no '.') before they reach any path.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from proxy.store.errors import InvalidKeyError

# Lowercase letters, digits and '-': no '/', '.', or anything a file system treats specially.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{7,200}")


def check_key(key: str) -> str:
    """Return `key` when it is a valid cache key, else raise `InvalidKeyError` naming it."""
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(
            f"invalid cache key {key!r}: expected 8-201 of [a-z0-9-], starting with [a-z0-9]"
        )
    return key


class StoreLayout:
    """The store's paths in one cache root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.index_path = root / "index.sqlite3"
        self.lock_path = root / "lock"

    def new_tmp_path(self, key: str) -> Path:
        """A fresh, unused name for a partial download of `key`."""
        return self.tmp_dir / f"{check_key(key)}.{secrets.token_hex(8)}.part"
